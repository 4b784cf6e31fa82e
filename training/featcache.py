"""Log-mel features of whole clips, computed once with the live front end and cached on disk.

Each clip is decoded with :func:`streamgenre.sources.decode_file` (the samples the file source
streams) and turned into frames with :func:`streamgenre.features.compute_mel` (the kernels
:class:`~streamgenre.features.StreamingMel` runs live), so training sees exactly what the runtime sees.

Cache layout: ``<cache>/mel/<config hash>/<file key>.npz`` where the file key hashes the absolute
path, modification time and size, and the config hash is that of the full :class:`MelConfig`. Every
entry also stores its config; an entry whose stored config differs from the requested one is an
error (:class:`TrainingError`), never silently used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from streamgenre.errors import AudioDecodeError
from streamgenre.features import MelConfig, compute_mel
from streamgenre.sources import decode_file
from training.data import Clip, Dataset
from training.errors import TrainingError

__all__ = [
    "DEFAULT_CACHE",
    "SILENCE_DBFS",
    "FeatureCache",
    "FeatureSet",
    "config_hash",
    "describe_difference",
    "load_features",
]

log = logging.getLogger(__name__)

DEFAULT_CACHE = Path(os.environ.get("STREAMGENRE_CACHE", "~/.cache/streamgenre")).expanduser() / "features"
SILENCE_DBFS = -70.0  # clips whose RMS level is below this are silent
CACHE_VERSION = 1


def config_hash(cfg: MelConfig) -> str:
    """Stable 16-hex-digit hash of every field of ``cfg``."""
    return hashlib.sha1(json.dumps(cfg.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def describe_difference(have: MelConfig, want: MelConfig) -> str:
    """``"n_mels 96 != 128, log 'log10p' != 'db'"``: the fields in which two configs differ."""
    a, b = have.to_dict(), want.to_dict()
    return ", ".join(f"{k} {a[k]!r} != {b[k]!r}" for k in a if a[k] != b[k]) or "none"


@dataclass(frozen=True)
class ClipAudio:
    """Features of one clip and the level of its audio."""

    mel: np.ndarray
    samples: int
    rms_dbfs: float


class FeatureCache:
    """Disk cache of whole-clip log-mel spectrograms for one :class:`MelConfig`.

    Parameters
    ----------
    directory
        Cache root (default :data:`DEFAULT_CACHE`).
    cfg
        The front-end configuration of every entry this object reads or writes.
    """

    def __init__(self, directory: str | os.PathLike[str] | None, cfg: MelConfig) -> None:
        self.root = Path(directory).expanduser() if directory is not None else DEFAULT_CACHE
        self.cfg = cfg
        self.folder = self.root / "mel" / config_hash(cfg)
        self._cfg_json = json.dumps(cfg.to_dict(), sort_keys=True)

    def key(self, path: Path) -> str:
        """Hash of the file's absolute path, modification time and size."""
        resolved = path.resolve()
        stat = resolved.stat()
        return hashlib.sha1(f"{resolved}|{stat.st_mtime_ns}|{stat.st_size}".encode()).hexdigest()[:24]

    def entry(self, path: Path) -> Path:
        """The cache file of ``path``."""
        return self.folder / f"{self.key(path)}.npz"

    def load(self, path: Path) -> ClipAudio:
        """Features of ``path`` (computed and stored on a cache miss).

        Raises
        ------
        AudioDecodeError
            The file cannot be decoded.
        TrainingError
            A cache entry for this file holds features of a different MelConfig.
        """
        if not path.is_file():
            raise AudioDecodeError(f"cannot decode {path}: no such file")
        entry = self.entry(path)
        if entry.is_file():
            try:
                with np.load(entry, allow_pickle=False) as data:
                    stored = str(data["config"])
                    if stored != self._cfg_json:
                        have = MelConfig.from_dict(json.loads(stored))
                        raise TrainingError(
                            f"cached features {entry} were computed with a different MelConfig "
                            f"({describe_difference(have, self.cfg)}); delete {self.folder}"
                        )
                    return ClipAudio(data["mel"], int(data["samples"]), float(data["rms_dbfs"]))
            except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError) as exc:
                log.warning("%s: unreadable cache entry (%s); recomputing", entry, exc)
        samples = decode_file(path, self.cfg.sample_rate)
        mel = compute_mel(samples, self.cfg)
        rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if len(samples) else 0.0
        clip = ClipAudio(mel, len(samples), 20.0 * np.log10(max(rms, 1e-12)))
        self._store(entry, path, clip)
        return clip

    def _store(self, entry: Path, path: Path, clip: ClipAudio) -> None:
        entry.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=entry.parent, suffix=".tmp.npz")
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(
                    handle,
                    mel=clip.mel,
                    samples=clip.samples,
                    rms_dbfs=clip.rms_dbfs,
                    config=self._cfg_json,
                    source=str(path.resolve()),
                    version=CACHE_VERSION,
                )
            os.replace(tmp, entry)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


@dataclass
class FeatureSet:
    """Usable clips of a data set with their features.

    Attributes
    ----------
    dataset
        The usable clips only (unusable ones are listed in :attr:`skipped`).
    cfg
        The MelConfig all :attr:`mels` were computed with.
    mels
        One ``(frames, n_mels)`` float32 array per clip of :attr:`dataset`.
    skipped
        ``(path, reason)`` of every clip that was left out.
    """

    dataset: Dataset
    cfg: MelConfig
    mels: list[np.ndarray]
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def require_config(self, cfg: MelConfig, what: str = "the model") -> None:
        """Raise :class:`TrainingError` unless the features were computed with ``cfg``."""
        if cfg != self.cfg:
            raise TrainingError(
                f"features were computed with a different MelConfig than {what} expects "
                f"({describe_difference(self.cfg, cfg)}); they cannot be reused"
            )


def _check(clip: Clip, audio: ClipAudio, cfg: MelConfig, min_frames: int) -> str | None:
    if audio.rms_dbfs < SILENCE_DBFS:
        return f"silent (RMS {audio.rms_dbfs:.0f} dBFS < {SILENCE_DBFS:.0f} dBFS)"
    if audio.mel.shape[0] < min_frames:
        need = ((min_frames - 1) * cfg.hop_length + cfg.n_fft) / cfg.sample_rate
        return f"too short ({audio.samples / cfg.sample_rate:.2f} s < one {need:.2f} s window)"
    return None


def load_features(
    dataset: Dataset,
    cfg: MelConfig,
    min_frames: int,
    cache: str | os.PathLike[str] | None = None,
    progress: Callable[[int, Clip], None] | None = None,
) -> FeatureSet:
    """Features of every usable clip; corrupt, silent and too-short clips are skipped and listed.

    Parameters
    ----------
    dataset
        The clips.
    cfg
        Front-end configuration of the model to train or evaluate.
    min_frames
        Frames of one model window: shorter clips are skipped.
    cache
        Cache root (default :data:`DEFAULT_CACHE`).
    progress
        Called with ``(index, clip)`` after each clip.

    Raises
    ------
    TrainingError
        A class is left without usable clips, or a cache entry has a different MelConfig.
    """
    store = FeatureCache(cache, cfg)
    keep: list[int] = []
    mels: list[np.ndarray] = []
    skipped: list[tuple[str, str]] = []
    for index, clip in enumerate(dataset.clips):
        try:
            audio = store.load(clip.path)
        except AudioDecodeError as exc:
            reason: str | None = f"unreadable: {exc}"
        else:
            reason = _check(clip, audio, cfg, min_frames)
        if reason is None:
            keep.append(index)
            mels.append(audio.mel)
        else:
            log.debug("skipping %s: %s", clip.path, reason)
            skipped.append((str(clip.path), reason))
        if progress is not None:
            progress(index, clip)
    usable = dataset.subset(keep)
    empty = [label for label, n in usable.counts().items() if n == 0]
    if empty:
        reasons = {path: reason for path, reason in skipped}
        example = next(reasons[str(c.path)] for c in dataset.clips if c.label == empty[0])
        raise TrainingError(f"class {empty[0]!r} has no usable clips (all skipped; e.g. {example})")
    return FeatureSet(usable, cfg, mels, skipped)
