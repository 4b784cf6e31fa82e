"""Data sets for training: find labelled clips in the folder layouts people have.

Layouts (``--data DIR``):

* ``DIR/genres/<genre>/<genre>.000NN.au`` (or ``.wav``): GTZAN as distributed;
* ``DIR/Data/genres_original/<genre>/<genre>.000NN.wav`` (or ``DIR/genres_original/``): GTZAN from Kaggle;
* ``DIR/<label>/<files>``: any labelled folder (GTZAN re-encoded, or the user's own labels). Files are
  found recursively below each label folder; every audio format :func:`streamgenre.sources.decode_file`
  reads is accepted.

Clips named like GTZAN's ``<genre>.000NN`` get a numeric id (the fault-filtered split and the
artist-safe grouped folds use it); other clips are identified by their path below the label folder.
Folders that hold files but no audio (``splits/``, notes) are ignored and reported; an empty label
folder, a single class or no class at all is an error. Unreadable, too short or silent clips are
found when their features are computed (:mod:`training.featcache`) and skipped there.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from streamgenre.classify import AUDIO_EXTENSIONS
from training.errors import TrainingError

__all__ = ["Clip", "Dataset", "discover_dataset", "parse_gtzan_id"]

_GTZAN_NAME = re.compile(r"^(?P<genre>[A-Za-z][A-Za-z_-]*)\.(?P<number>\d{5})$")


def parse_gtzan_id(name: str) -> tuple[str, int] | None:
    """``("blues", 12)`` for a GTZAN file name or stem like ``blues.00012.wav``, else None."""
    stem = Path(name).name
    suffix = Path(stem).suffix
    if suffix.lower() in AUDIO_EXTENSIONS:
        stem = stem[: -len(suffix)]
    match = _GTZAN_NAME.match(stem)
    return (match["genre"].lower(), int(match["number"])) if match else None


@dataclass(frozen=True)
class Clip:
    """One labelled audio file.

    Attributes
    ----------
    path
        The audio file.
    label
        Its class (the name of its label folder).
    clip_id
        ``"<genre>.000NN"`` for GTZAN names, else ``"<label>/<relative path without extension>"``.
    number
        The GTZAN clip number (``NN``), or None for other names.
    """

    path: Path
    label: str
    clip_id: str
    number: int | None = None


@dataclass(frozen=True)
class Dataset:
    """The labelled clips found in a data folder.

    Attributes
    ----------
    root
        The folder given by the user.
    layout
        ``"gtzan-original"``, ``"gtzan-kaggle"`` or ``"folders"``.
    labels
        Sorted class names.
    clips
        Clips sorted by label, then GTZAN number (or path).
    ignored
        One line per folder or file that was not used, with the reason.
    """

    root: Path
    layout: str
    labels: tuple[str, ...]
    clips: tuple[Clip, ...]
    ignored: tuple[str, ...] = field(default=())

    def __len__(self) -> int:
        return len(self.clips)

    def counts(self) -> dict[str, int]:
        """Clips per label (every label listed, also with 0 clips)."""
        counter = Counter(c.label for c in self.clips)
        return {label: counter.get(label, 0) for label in self.labels}

    def label_indices(self) -> list[int]:
        """Each clip's label as an index into :attr:`labels`."""
        index = {label: i for i, label in enumerate(self.labels)}
        return [index[c.label] for c in self.clips]

    def subset(self, indices: Sequence[int], ignored: Sequence[str] = ()) -> Dataset:
        """The same data set restricted to ``indices`` (labels unchanged)."""
        return Dataset(
            self.root, self.layout, self.labels, tuple(self.clips[i] for i in indices), self.ignored + tuple(ignored)
        )


def _locate(root: Path) -> tuple[Path, str]:
    for base, layout in (
        (root / "genres", "gtzan-original"),
        (root / "Data" / "genres_original", "gtzan-kaggle"),
        (root / "genres_original", "gtzan-kaggle"),
    ):
        if base.is_dir():
            return base, layout
    if root.name == "genres":
        return root, "gtzan-original"
    if root.name == "genres_original":
        return root, "gtzan-kaggle"
    return root, "folders"


def _files_below(folder: Path) -> tuple[list[Path], int]:
    """Audio files below ``folder`` (recursive, sorted, hidden entries skipped) and the count of all files."""
    audio: list[Path] = []
    total = 0
    for current, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            total += 1
            if Path(name).suffix.lower() in AUDIO_EXTENSIONS:
                audio.append(Path(current) / name)
    return audio, total


def _clip(path: Path, label: str, folder: Path) -> Clip:
    parsed = parse_gtzan_id(path.name)
    if parsed is not None:
        genre, number = parsed
        return Clip(path, label, f"{genre}.{number:05d}", number)
    relative = path.relative_to(folder).with_suffix("")
    return Clip(path, label, f"{label}/{relative.as_posix()}")


def discover_dataset(root: str | os.PathLike[str], max_clips_per_class: int | None = None) -> Dataset:
    """Find the labelled clips below ``root``.

    Parameters
    ----------
    root
        A data folder in one of the layouts of the module docstring.
    max_clips_per_class
        Keep only the first N clips of each label (in clip-number or path order): for quick runs.

    Raises
    ------
    TrainingError
        The folder is missing or not a folder, a label folder is empty, fewer than two labels
        hold audio, or two files are the same GTZAN clip.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise TrainingError(f"data folder {root} does not exist")
    if not root.is_dir():
        raise TrainingError(f"data folder {root} is not a folder")
    if max_clips_per_class is not None and (isinstance(max_clips_per_class, bool) or max_clips_per_class < 1):
        raise TrainingError(f"--max-clips-per-class must be a positive integer, got {max_clips_per_class}")
    base, layout = _locate(root)
    ignored: list[str] = []
    clips: list[Clip] = []
    labels: list[str] = []
    for entry in sorted(base.iterdir()):
        if entry.name.startswith(".") or not entry.is_dir():
            if entry.is_file() and entry.suffix.lower() in AUDIO_EXTENSIONS:
                ignored.append(f"{entry}: audio file outside a label folder")
            continue
        audio, total = _files_below(entry)
        if total == 0:
            raise TrainingError(f"class folder {entry} is empty (remove it or add audio files)")
        if not audio:
            ignored.append(f"{entry}: no audio files (not a class)")
            continue
        label = entry.name
        found = [_clip(path, label, entry) for path in audio]
        seen: dict[str, Path] = {}
        for clip in found:
            if clip.clip_id in seen:
                raise TrainingError(
                    f"two files are clip {clip.clip_id}: {seen[clip.clip_id]} and {clip.path} (keep one)"
                )
            seen[clip.clip_id] = clip.path
        found.sort(key=lambda c: (c.number is None, c.number or 0, str(c.path)))
        if max_clips_per_class is not None:
            found = found[:max_clips_per_class]
        labels.append(label)
        clips.extend(found)
    if not labels:
        raise TrainingError(f"no class folders with audio in {base} (expected <label>/<audio files>)")
    if len(labels) == 1:
        raise TrainingError(f"only one class ({labels[0]!r}) in {base}: training needs at least two labels")
    return Dataset(root, layout, tuple(labels), tuple(clips), tuple(ignored))
