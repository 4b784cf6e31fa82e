"""The immutable state snapshot the engine publishes and every front end (dashboard, JSON) reads.

The engine replaces its snapshot reference atomically after each estimate; readers just take the
latest reference. No reader ever blocks the pipeline and no writer ever waits for a reader.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class StageTiming:
    """Recent timings of one pipeline stage, in milliseconds."""

    last_ms: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    count: int = 0


@dataclass(frozen=True)
class SourceInfo:
    """What the audio comes from."""

    kind: str  # "device", "file", "url"
    name: str
    sample_rate: int
    channels: int


@dataclass(frozen=True)
class Snapshot:
    """One published estimate and the pipeline's health at that moment.

    Attributes
    ----------
    t
        Stream time (seconds of audio processed) at the end of the window behind this estimate.
    wall_time
        ``time.time()`` when published.
    state
        ``"warming"`` (no estimate yet), ``"genre"``, ``"uncertain"`` or ``"silence"``.
    genre
        Displayed (smoothed) genre, None in silence or while warming.
    confidence
        Smoothed score of the displayed genre.
    provisional
        The window behind the estimate was not yet full (first seconds of a stream).
    labels, smoothed, raw
        Genre labels with their smoothed and raw (this window's) scores.
    top_tags
        ``(tag, score)`` of the tag output when the model has one.
    level_dbfs, peak_dbfs, clipping
        Input level of the most recent block (RMS and peak, dBFS) and whether it clipped.
    timings
        Stage name -> :class:`StageTiming` (``resample``, ``mel``, ``prepare``, ``model``, ``smoother``,
        ``end_to_end``: block captured -> estimate published). The percentiles of ``model`` and
        ``end_to_end`` cover the full windows; a stream's first, provisional estimates (each window
        computed whole) count in them only until the first full window.
    overflows
        Frames dropped because the ring buffer was full (the worker fell behind).
    input_overflows
        Callbacks in which the audio driver reported an input overflow.
    estimates
        Estimates published so far.
    flips, flips_per_minute, last_switch_latency_s
        Displayed-genre changes and how fast the last one followed the music.
    history
        ``(t, genre or None)`` of recent estimates (about the last minute) for the timeline.
    source, model, provider
        What is being listened to and with which model/provider.
    """

    t: float = 0.0
    wall_time: float = 0.0
    state: str = "warming"
    genre: str | None = None
    confidence: float = 0.0
    provisional: bool = True
    labels: tuple[str, ...] = ()
    smoothed: tuple[float, ...] = ()
    raw: tuple[float, ...] = ()
    top_tags: tuple[tuple[str, float], ...] = ()
    level_dbfs: float = float("-inf")
    peak_dbfs: float = float("-inf")
    clipping: bool = False
    timings: dict[str, StageTiming] = field(default_factory=dict)
    overflows: int = 0
    input_overflows: int = 0
    estimates: int = 0
    flips: int = 0
    flips_per_minute: float = 0.0
    last_switch_latency_s: float | None = None
    history: tuple[tuple[float, str | None], ...] = ()
    source: SourceInfo | None = None
    title: str | None = None
    model: str = ""
    provider: str = ""

    def to_json_dict(self) -> dict[str, Any]:
        """The ``--json`` record of this estimate (JSON-safe: no inf, rounded numbers)."""

        def finite(value: float) -> float | None:
            return None if value != value or value in (float("inf"), float("-inf")) else round(value, 2)

        end_to_end = self.timings.get("end_to_end")
        return {
            "t": round(self.t, 3), "genre": self.genre, "state": self.state,
            "confidence": round(self.confidence, 4), "provisional": self.provisional,
            "scores": {label: round(score, 4) for label, score in zip(self.labels, self.smoothed, strict=False)},
            "raw": {label: round(score, 4) for label, score in zip(self.labels, self.raw, strict=False)},
            "top_tags": [{"label": tag, "score": round(score, 4)} for tag, score in self.top_tags],
            "level_dbfs": finite(self.level_dbfs), "clipping": self.clipping,
            "overflows": self.overflows, "input_overflows": self.input_overflows,
            "latency_ms": None if end_to_end is None else round(end_to_end.last_ms, 3),
            "timings_ms": {name: asdict(timing) for name, timing in self.timings.items()},
            "flips": self.flips, "flips_per_minute": round(self.flips_per_minute, 3),
            "switch_latency_s": None if self.last_switch_latency_s is None else round(self.last_switch_latency_s, 3),
            "model": self.model, "provider": self.provider,
            "source": None if self.source is None else asdict(self.source),
            "title": self.title,
        }
