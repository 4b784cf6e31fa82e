"""Offline classification: the streaming pipeline run over a file as fast as it decodes.

file source (100 ms blocks) -> StreamingMel -> MelWindower -> model (batched) -> per-window
scores -> clip scores (mean over windows). Nothing here differs from the live path except that
windows are batched for throughput; a test proves that replaying a file block by block through
the stages gives the same result.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from streamgenre.errors import AudioDecodeError
from streamgenre.features import StreamingMel
from streamgenre.model import GenreModel, StreamCache
from streamgenre.sources import FileSource
from streamgenre.windows import MelWindower

AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".au", ".snd", ".aif", ".aiff",
                              ".m4a", ".aac", ".wma", ".webm", ".mka", ".mp4"})


@dataclass(frozen=True)
class WindowResult:
    """The model's verdict on one window."""

    start: float
    end: float
    genre: str
    confidence: float
    provisional: bool
    scores: np.ndarray = field(repr=False)
    tags: np.ndarray | None = field(default=None, repr=False)


@dataclass(frozen=True)
class FileResult:
    """Clip-level result of one file: window scores averaged."""

    path: str
    duration: float
    genre: str
    confidence: float
    genres: list[tuple[str, float]]
    tags: list[tuple[str, float]]
    windows: list[WindowResult]

    def to_dict(self, timeline: bool = False, top: int = 5) -> dict[str, Any]:
        """JSON-safe form (``--json`` output)."""
        out: dict[str, Any] = {
            "path": self.path, "genre": self.genre, "confidence": round(self.confidence, 4),
            "duration": round(self.duration, 3), "windows": len(self.windows),
            "top_genres": [{"label": g, "score": round(s, 4)} for g, s in self.genres[:top]],
            "top_tags": [{"label": g, "score": round(s, 4)} for g, s in self.tags[:top]],
        }
        if timeline:
            out["timeline"] = [{"start": round(w.start, 3), "end": round(w.end, 3), "genre": w.genre,
                                "confidence": round(w.confidence, 4), "provisional": w.provisional}
                               for w in self.windows]
        return out


def iter_audio_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """Expand folders recursively (audio extensions only, sorted); files are yielded as given."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    if Path(name).suffix.lower() in AUDIO_EXTENSIONS:
                        yield Path(root) / name
        else:
            yield path  # missing or unreadable files are reported by the decoder


class WindowScorer:
    """Turns one stream's model windows into :class:`WindowResult` rows (offline and live paths).

    With overlapping windows (``hop_frames`` below the window length) and a model that can reuse
    work between them (its contract's streaming section), the scorer keeps the stream's cache and
    computes each frame's features once; otherwise each batch is one model call. Results are the
    same either way.
    """

    def __init__(self, model: GenreModel, hop_frames: int | None = None) -> None:
        self.model = model
        reusable = model.streaming is not None and hop_frames is not None and hop_frames < model.window_frames
        self._cache = StreamCache() if reusable else None
        self._frame_seconds = model.mel_config.hop_length / model.mel_config.sample_rate
        contract = model.contract
        self._outputs = [contract.genre_output]
        if contract.tag_output and contract.tag_output != contract.genre_output:
            self._outputs.append(contract.tag_output)

    @property
    def cache(self) -> StreamCache | None:
        """This stream's model cache (None when its windows cannot share work)."""
        return self._cache

    def score(self, windows: np.ndarray, end_frames: np.ndarray, provisional: np.ndarray,
              caches: list[StreamCache] | None = None) -> list[WindowResult]:
        """Run the model on a batch of windows and label each one.

        ``caches`` (one per window) lets windows of several streams, each with its own cache,
        share one call (the monitor's batched inference); by default the scorer's own stream.
        """
        if len(windows) == 0:
            return []
        if caches is not None and self.model.streaming is not None:
            out = self.model.predict_stream(windows, end_frames, caches, ~provisional, self._outputs)
        else:
            out = self._predict(windows, end_frames, provisional)
        contract = self.model.contract
        genre_scores = out[contract.genre_output][:, list(contract.genre_indices)]
        tags = out.get(contract.tag_output) if contract.tag_output else None
        cfg = self.model.mel_config
        results = []
        for i, end in enumerate(end_frames):
            best = int(np.argmax(genre_scores[i]))
            frames = min(int(end), self.model.window_frames)
            end_s = ((int(end) - 1) * cfg.hop_length + cfg.n_fft) / cfg.sample_rate
            start_s = max(0.0, end_s - ((frames - 1) * cfg.hop_length + cfg.n_fft) / cfg.sample_rate)
            results.append(WindowResult(start_s, end_s, self.model.labels[best], float(genre_scores[i, best]),
                                        bool(provisional[i]), genre_scores[i].copy(),
                                        None if tags is None else tags[i].copy()))
        return results


    def reset(self) -> None:
        """Start a new stream (forget the previous window)."""
        if self._cache is not None:
            self._cache.reset()

    def _predict(self, windows: np.ndarray, end_frames: np.ndarray, provisional: np.ndarray) -> dict[str, np.ndarray]:
        if self._cache is None:
            return self.model.predict(windows, self._outputs)
        return self.model.predict_stream(windows, end_frames, [self._cache] * len(windows), ~provisional, self._outputs)


def summarize(path: str, duration: float, model: GenreModel, windows: list[WindowResult]) -> FileResult:
    """Clip-level result: mean of the window scores (provisional windows only when nothing else exists)."""
    if not windows:
        raise AudioDecodeError(f"cannot classify {path}: {duration:.3f} s of audio is shorter than one analysis frame")
    chosen = [w for w in windows if not w.provisional] or windows
    mean_scores = np.mean([w.scores for w in chosen], axis=0)
    order = np.argsort(-mean_scores)
    genres = [(model.labels[i], float(mean_scores[i])) for i in order]
    tags: list[tuple[str, float]] = []
    tag_output = model.contract.tag_output
    if tag_output and chosen[0].tags is not None:
        mean_tags = np.mean([w.tags for w in chosen], axis=0)
        tag_labels = model.contract.outputs[tag_output].labels
        tags = [(tag_labels[i], float(mean_tags[i])) for i in np.argsort(-mean_tags)]
    return FileResult(path, duration, genres[0][0], genres[0][1], genres, tags, windows)


def classify_file(path: str | os.PathLike[str], model: GenreModel, hop_seconds: float | None = None,
                  batch_size: int = 16) -> FileResult:
    """Classify one file through the streaming stages.

    Parameters
    ----------
    path
        Any file soundfile or PyAV decodes.
    model
        The loaded model (its contract sets the front end).
    hop_seconds
        Time between window starts; default: the window length (non-overlapping, as musicnn).
    batch_size
        Windows per model call.

    Raises
    ------
    AudioDecodeError
        The file cannot be decoded.
    """
    cfg = model.mel_config
    hop_frames = model.window_frames if hop_seconds is None else max(
        1, round(hop_seconds * cfg.sample_rate / cfg.hop_length))
    mel = StreamingMel(cfg)
    windower = MelWindower(model.window_frames, cfg.n_mels, hop_frames)
    scorer = WindowScorer(model, hop_frames)
    results: list[WindowResult] = []
    pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    pending_count = 0
    samples = 0

    def drain() -> None:
        nonlocal pending_count
        if pending:
            results.extend(scorer.score(*(np.concatenate(parts) for parts in zip(*pending, strict=True))))
            pending.clear()
            pending_count = 0

    with FileSource(path, cfg.sample_rate, block_seconds=0.1, realtime=False) as source:
        for block in source:
            samples += len(block)
            batch = windower.process(mel.process(block))
            if len(batch):
                pending.append((batch.windows, batch.end_frames, batch.provisional))
                pending_count += len(batch)
                if pending_count >= batch_size:
                    drain()
    tail = windower.flush_partial()
    if len(tail):
        pending.append((tail.windows, tail.end_frames, tail.provisional))
    drain()
    return summarize(str(path), samples / cfg.sample_rate, model, results)
