"""Background monitor: many radio feeds, one model, a JSONL log of genre segments, Prometheus metrics.

Each feed has its own :class:`~streamgenre.radio.RadioSource` (reader + watchdog threads) and its
own :class:`~streamgenre.engine.Engine` stages (mel front end, windower, smoother); the model is
shared. The monitor's single worker loop (one *tick* at a time) takes the queued blocks of every
feed up to each feed's next due window, concatenates the windows of ALL feeds that are due on the
batch axis, runs ONE model call, splits the results back and publishes them per feed::

    feeds --blocks--> engine.process_block (per feed) --windows--> one model.predict --> engine.publish
          --events--> titles, (re)connects                                          --> segments, metrics

A *segment* is a run of one displayed (smoothed) genre on one feed. It ends when the genre
changes, at silence, when the feed disconnects or ends, and at shutdown; its line is written to
the log at once (flushed and fsynced), so a crash loses at most the open segments.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from streamgenre.classify import WindowScorer
from streamgenre.engine import BLOCK_SECONDS, Engine, startup_objects_frozen
from streamgenre.errors import ConfigError, StreamgenreError
from streamgenre.features import warmup
from streamgenre.model import GenreModel
from streamgenre.radio import (
    AudioBlock,
    Backoff,
    FeedHealth,
    RadioSource,
    StreamEvent,
    display_url,
    safe_text,
)
from streamgenre.smoother import SmootherConfig
from streamgenre.state import Snapshot
from streamgenre.windows import WindowBatch

__all__ = [
    "FeedSpec",
    "FeedStatus",
    "Monitor",
    "MonitorMetrics",
    "SegmentLog",
    "cmd_monitor",
    "json_line",
    "parse_feeds",
    "read_feed_file",
    "status_table",
    "with_defaults",
]

log = logging.getLogger(__name__)

DEFAULT_HOP_S = 1.5
DEFAULT_SMOOTHING_S = 2.0
DEFAULT_MIN_SEGMENT_S = 4.0
MIN_TICK_S = 0.05  # a tick gathers at least this much audio from the feeds (fewer, larger model calls)
MAX_BATCH = 64  # windows per model call at most
PULL_BLOCKS = 10  # blocks moved from a source's queue per pull (its queue stays the overflow point)
MAX_TITLES = 100  # titles kept per segment
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_NAME_RE = re.compile(r"^([\w.\-]{1,64})=(https?://.+)$", re.IGNORECASE)
_JSON_UNSAFE_RE = re.compile("[\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


# ---------------------------------------------------------------------------------------------- feeds
@dataclass(frozen=True)
class FeedSpec:
    """A feed to monitor: its name (the ``feed`` field of the log) and URL."""

    name: str
    url: str


def parse_feeds(args: Sequence[str]) -> list[FeedSpec]:
    """``URL`` or ``NAME=URL`` arguments -> unique feeds (a repeated name gets ``#2``, ``#3`` …).

    Raises
    ------
    ConfigError
        No feeds, or an argument that is not an http(s) URL.
    """
    feeds: list[FeedSpec] = []
    seen: set[str] = set()
    for raw in args:
        text = raw.strip()
        match = _NAME_RE.match(text)
        name, url = (match.group(1), match.group(2)) if match else (None, text)
        if not url.lower().startswith(("http://", "https://")):
            raise ConfigError(f"not an http(s) stream URL: {safe_text(raw)!r} (use URL or NAME=URL)")
        if name is None:
            name = display_url(url).split("://", 1)[1].rstrip("/")
        unique, n = name, 1
        while unique in seen:
            n += 1
            unique = f"{name}#{n}"
        seen.add(unique)
        feeds.append(FeedSpec(unique, url))
    if not feeds:
        raise ConfigError("no feeds given: pass stream URLs (or NAME=URL) or --feeds FILE")
    return feeds


def read_feed_file(path: str | os.PathLike[str]) -> list[str]:
    """Feed arguments from a file: ``URL`` or ``NAME=URL`` per line; blanks and ``#`` comments skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the feeds file {path}: {exc}") from None
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


# ---------------------------------------------------------------------------------------------- log
def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="milliseconds")


def json_line(record: dict[str, Any]) -> str:
    """One JSON line, terminal-safe: control, C1 and bidi characters are written as ``\\uXXXX`` escapes.

    ``json.loads`` gives back exactly the original strings; ``cat``-ing the file never lets a
    stream title drive the terminal.
    """
    text = json.dumps(record, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return _JSON_UNSAFE_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class SegmentLog:
    """Append-only JSONL file with rotation by size and by (local) day, keeping the newest ``keep`` files.

    A rotated file is renamed ``<stem>.<YYYYmmdd-HHMMSS><suffix>`` (the time of its last record),
    so the names sort chronologically. Every line is flushed and fsynced when written.

    Parameters
    ----------
    path
        The live log file (created with its folder; appended to when it exists).
    max_bytes
        Rotate before a line would take the file past this size (None: no size limit).
    daily
        Rotate when the local date changes.
    keep
        Rotated files kept (the oldest beyond it are deleted); None keeps all.
    clock
        ``time.time`` replacement (tests).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        max_bytes: int | None = 100 * 2**20,
        daily: bool = True,
        keep: int | None = 30,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_bytes is not None and (
            isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1
        ):
            raise ConfigError(f"log size limit must be a positive number of bytes, got {max_bytes!r}")
        if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 0):
            raise ConfigError(f"--log-keep must be a non-negative integer, got {keep!r}")
        self.path = Path(path)
        if self.path.is_dir():
            raise ConfigError(f"--log {self.path}: is a directory")
        self.max_bytes, self.daily, self.keep, self._clock = max_bytes, daily, keep, clock
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot open the log {self.path}: {exc.strerror or exc}") from None
        self._size = self._file.tell()
        self._last = self.path.stat().st_mtime if self._size else clock()
        self.lines = 0

    def _day(self, ts: float) -> tuple[int, int, int]:
        return time.localtime(ts)[:3]

    def rotated_files(self) -> list[Path]:
        """Rotated files of this log, oldest first."""
        pattern = re.compile(
            re.escape(self.path.stem) + r"\.\d{8}-\d{6}(?:-\d+)?" + re.escape(self.path.suffix) + "$"
        )
        return sorted(p for p in self.path.parent.iterdir() if pattern.match(p.name))

    def _rotate(self) -> None:
        self._file.close()
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self._last))
        target = self.path.with_name(f"{self.path.stem}.{stamp}{self.path.suffix}")
        n = 0
        while target.exists():
            n += 1
            target = self.path.with_name(f"{self.path.stem}.{stamp}-{n}{self.path.suffix}")
        os.replace(self.path, target)
        self._file = open(self.path, "a", encoding="utf-8")
        self._size = 0
        if self.keep is not None:
            old = self.rotated_files()
            for stale in old[: max(0, len(old) - self.keep)]:
                try:
                    stale.unlink()
                except OSError as exc:
                    log.warning("cannot delete old log %s: %s", stale, exc.strerror or exc)

    def write(self, record: dict[str, Any]) -> None:
        """Append one record as a JSON line (rotating first when due), flushed and fsynced."""
        data = (json_line(record) + "\n").encode("utf-8")
        now = self._clock()
        with self._lock:
            if self._file.closed:
                raise ValueError("SegmentLog is closed")
            due_size = (
                self.max_bytes is not None and self._size > 0 and self._size + len(data) > self.max_bytes
            )
            due_day = self.daily and self._size > 0 and self._day(now) != self._day(self._last)
            if due_size or due_day:
                self._rotate()
            self._file.write(data.decode("utf-8"))
            self._file.flush()
            try:
                os.fsync(self._file.fileno())
            except OSError:
                pass  # e.g. a pipe or /dev/stdout: flushing is all there is
            self._size += len(data)
            self._last = now
            self.lines += 1

    def close(self) -> None:
        """Close the file (idempotent)."""
        with self._lock:
            if not self._file.closed:
                self._file.close()


# ---------------------------------------------------------------------------------------------- per feed
@dataclass
class _Segment:
    genre: str
    start: float
    estimates: int = 0
    confidence_sum: float = 0.0
    tag_sums: dict[str, float] = field(default_factory=dict)
    titles: list[str] = field(default_factory=list)

    def add(self, snap: Snapshot) -> None:
        self.estimates += 1
        self.confidence_sum += snap.confidence
        for tag, score in snap.top_tags:
            self.tag_sums[tag] = self.tag_sums.get(tag, 0.0) + score

    def add_title(self, title: str | None) -> None:
        if title and title not in self.titles and len(self.titles) < MAX_TITLES:
            self.titles.append(title)


@dataclass(frozen=True)
class FeedStatus:
    """What a status line or a metrics scrape shows about one feed."""

    name: str
    url: str
    genre: str | None
    confidence: float
    state: str
    title: str | None
    estimates: int
    segments: int
    seconds_per_genre: dict[str, float]
    health: FeedHealth


class _Feed:
    def __init__(self, spec: FeedSpec, source: RadioSource, engine: Engine) -> None:
        self.spec = spec
        self.source = source
        self.engine = engine
        self.records = engine.subscribe(maxsize=256)
        self.backlog: deque[AudioBlock | StreamEvent] = deque()
        self.segment: _Segment | None = None
        self.title: str | None = None
        self.shown: str | None = None
        self.last_t: float | None = None
        self.last_audio_wall: float | None = None
        self.snapshot: Snapshot | None = None
        self.seconds = {label: 0.0 for label in engine.model.labels}
        self.segments = 0
        self.estimates = 0
        self.fresh = True  # the engine has seen no audio since the last reset


# ---------------------------------------------------------------------------------------------- monitor
class Monitor:
    """Classify many radio feeds with one shared model; log genre segments.

    Parameters
    ----------
    model
        The shared model.
    feeds
        Feeds (:class:`FeedSpec`, or ``URL``/``NAME=URL`` strings).
    hop_seconds
        Seconds between estimates per feed (default 1.5: half a window, a light load for many feeds).
    smoother
        Smoother settings (default: ``time_constant_s`` 2 s, ``min_dwell_s`` 4 s — steadier segments
        than the live display's).
    log
        Where segment and event lines go (None: nowhere).
    connect_timeout, stall_seconds, backoff, max_buffer_seconds
        Passed to each :class:`~streamgenre.radio.RadioSource`.
    source_factory
        Builds the source of a feed (tests); default :class:`~streamgenre.radio.RadioSource`.
    """

    def __init__(
        self,
        model: GenreModel,
        feeds: Sequence[FeedSpec | str],
        *,
        hop_seconds: float = DEFAULT_HOP_S,
        smoother: SmootherConfig | None = None,
        log: SegmentLog | None = None,
        connect_timeout: float = 5.0,
        stall_seconds: float = 10.0,
        backoff: Backoff | None = None,
        max_buffer_seconds: float = 30.0,
        source_factory: Callable[..., RadioSource] | None = None,
    ) -> None:
        specs = [f for f in feeds if isinstance(f, FeedSpec)]
        specs += (
            parse_feeds([f for f in feeds if not isinstance(f, FeedSpec)]) if len(specs) < len(feeds) else []
        )
        if not specs:
            raise ConfigError("no feeds given")
        if len({s.name for s in specs}) != len(specs):
            raise ConfigError("feed names must be unique")
        self.model = model
        self.log = log
        self.metrics: MonitorMetrics | None = None
        self.smoother = smoother or SmootherConfig(
            time_constant_s=DEFAULT_SMOOTHING_S, min_dwell_s=DEFAULT_MIN_SEGMENT_S
        )
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._scorer = WindowScorer(model)
        rate = model.mel_config.sample_rate
        factory = source_factory or RadioSource
        self.feeds: list[_Feed] = []
        for spec in specs:
            source = factory(
                spec.url,
                rate,
                name=spec.name,
                block_seconds=BLOCK_SECONDS,
                connect_timeout=connect_timeout,
                stall_seconds=stall_seconds,
                backoff=backoff,
                max_buffer_seconds=max_buffer_seconds,
                on_data=self._ready.set,
            )
            engine = Engine(
                model,
                None,
                hop_seconds=hop_seconds,
                block_seconds=BLOCK_SECONDS,
                smoother=self.smoother,
                source_info=source.source_info(),
                history_seconds=4 * hop_seconds,
                prepare_between_windows=False,  # one features call per feed and window, not per block
            )
            self.feeds.append(_Feed(spec, source, engine))
        self.hop_seconds = self.feeds[0].engine.hop_seconds
        self.ticks = 0
        self.model_calls = 0
        self.windows_scored = 0
        self.model_seconds = 0.0
        self.started = False
        self.closed = False

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Compile/load the kernels and start every feed's reader."""
        if self.started:
            raise RuntimeError("Monitor already started")
        warmup()
        self.started = True
        for feed in self.feeds:
            feed.source.start()

    def stop(self) -> None:
        """Ask :meth:`run` to finish (safe from signal handlers and other threads)."""
        self._stop.set()
        self._ready.set()

    @property
    def stopping(self) -> bool:
        """:meth:`stop` was called."""
        return self._stop.is_set()

    def run(self, duration: float | None = None, on_tick: Callable[[], None] | None = None) -> str:
        """Tick until stopped, ``duration`` wall seconds passed, or every feed ended; then :meth:`close`.

        Returns
        -------
        str
            Why it ended: ``"shutdown"``, ``"duration"`` or ``"ended"``.
        """
        if duration is not None and not (isinstance(duration, (int, float)) and 0 < duration < math.inf):
            raise ConfigError(f"--duration must be a positive number of seconds, got {duration!r}")
        if not self.started:
            self.start()
        deadline = None if duration is None else time.monotonic() + duration
        reason = "shutdown"
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    reason = "duration"
                    break
                if all(f.source.exhausted and not f.backlog for f in self.feeds):
                    reason = "ended"
                    break
                self.tick(0.1 if deadline is None else max(0.0, min(0.1, deadline - now)))
                if on_tick is not None:
                    on_tick()
        finally:
            self.close(reason)
        return reason

    def close(self, reason: str = "shutdown", timeout: float = 1.0) -> None:
        """Stop the feeds (in parallel, bounded by ``timeout``), write the open segments, close the log."""
        if self.closed:
            return
        self.closed = True
        for feed in self.feeds:
            feed.source.close(timeout=0.0)  # signal all first: sockets shut down at once
        deadline = time.monotonic() + timeout
        for feed in self.feeds:
            feed.source.close(timeout=max(0.0, deadline - time.monotonic()))
        now = time.time()
        for feed in self.feeds:
            self._close_segment(feed, feed.last_audio_wall or now, reason)
        if self.log is not None:
            self.log.close()

    # ------------------------------------------------------------------ the loop
    def tick(self, timeout: float = 0.1) -> int:
        """Wait up to ``timeout`` s for audio, then process every feed's due windows with one model call.

        Returns
        -------
        int
            Windows scored in this tick.
        """
        if not any(f.backlog or f.source.pending for f in self.feeds):
            self._ready.wait(timeout)
        self._ready.clear()
        self.ticks += 1
        work: list[tuple[_Feed, WindowBatch]] = []
        for feed in self.feeds:
            batch = self._pull(feed)
            if batch is not None:
                work.append((feed, batch))
        if work:
            self._score(work)
        if any(f.backlog for f in self.feeds):
            self._ready.set()  # more audio is queued: the next tick need not wait
        elif not work and not self._stop.is_set():
            self._stop.wait(MIN_TICK_S)  # let audio gather: fewer, larger batches
        return sum(len(b) for _, b in work)

    def _pull(self, feed: _Feed) -> WindowBatch | None:
        """Feed queued blocks to the engine up to the first due window (events are handled in order)."""
        for _ in range(2 * PULL_BLOCKS + 2):
            if not feed.backlog:
                feed.backlog.extend(feed.source.read_items(PULL_BLOCKS))
                if not feed.backlog:
                    return None
            item = feed.backlog.popleft()
            if isinstance(item, StreamEvent):
                self._on_event(feed, item)
                continue
            feed.last_audio_wall = item.wall_time
            feed.fresh = False
            try:
                batch = feed.engine.process_block(item.samples, item.capture_time)
            except (ValueError, TypeError) as exc:  # one bad block must not stop the other feeds
                log.error(
                    "%s: block dropped (%s); restarting the feed's analysis", safe_text(feed.spec.name), exc
                )
                feed.engine.reset()
                continue
            if len(batch):
                return batch
        return None

    def _score(self, work: list[tuple[_Feed, WindowBatch]]) -> None:
        windows = np.concatenate([b.windows for _, b in work])
        ends = np.concatenate([b.end_frames for _, b in work])
        provisional = np.concatenate([b.provisional for _, b in work])
        # Each feed's own model cache: overlapping windows reuse the previous window's work.
        caches = [feed.engine.stream_cache for feed, batch in work for _ in range(len(batch))]
        if any(cache is None for cache in caches):
            caches = None
        results = []
        for i in range(0, len(windows), MAX_BATCH):
            t0 = time.perf_counter()
            results += self._scorer.score(
                windows[i : i + MAX_BATCH], ends[i : i + MAX_BATCH], provisional[i : i + MAX_BATCH],
                None if caches is None else caches[i : i + MAX_BATCH],
            )
            seconds = time.perf_counter() - t0
            self.model_calls += 1
            self.model_seconds += seconds
            if self.metrics is not None:
                self.metrics.model_call(seconds, min(MAX_BATCH, len(windows) - i))
        self.windows_scored += len(windows)
        offset = 0
        for feed, batch in work:
            mine = results[offset : offset + len(batch)]
            offset += len(batch)
            feed.engine.publish(mine)
            while not feed.records.empty():
                self._on_estimate(feed, feed.records.get_nowait())

    # ------------------------------------------------------------------ per-feed state
    def _on_event(self, feed: _Feed, event: StreamEvent) -> None:
        record: dict[str, Any] = {
            "type": "event",
            "feed": feed.spec.name,
            "time": _iso(event.wall_time),
            "ts": round(event.wall_time, 3),
            "event": event.kind,
        }
        if event.kind == "connected":
            if not feed.fresh:  # a new connection is a new stream: restart the stages
                feed.engine.reset()
                feed.fresh = True
            feed.last_t = None
            record["detail"] = event.detail
        elif event.kind in ("disconnected", "ended"):
            end = feed.last_audio_wall or event.wall_time
            self._close_segment(feed, end, "disconnect" if event.kind == "disconnected" else "ended")
            if event.detail:
                record["detail"] = event.detail
        elif event.kind == "title":
            feed.title = event.detail
            if feed.segment is not None:
                feed.segment.add_title(event.detail)
            record["title"] = event.detail
        self._write(record)

    def _on_estimate(self, feed: _Feed, snap: Snapshot) -> None:
        wall = feed.last_audio_wall or snap.wall_time  # when the block completing the window arrived
        feed.snapshot = snap
        feed.estimates += 1
        if feed.last_t is not None and feed.shown is not None and snap.t > feed.last_t:
            feed.seconds[feed.shown] += snap.t - feed.last_t
        feed.last_t, feed.shown = snap.t, snap.genre
        if self.metrics is not None:
            e2e = snap.timings.get("end_to_end")
            if e2e is not None and e2e.count:
                self.metrics.latency(feed.spec.name, e2e.last_ms / 1e3)
        segment = feed.segment
        if segment is not None and snap.genre != segment.genre:
            self._close_segment(feed, wall, "switch" if snap.genre is not None else "silence")
        if snap.genre is not None:
            if feed.segment is None:
                feed.segment = _Segment(snap.genre, wall)
                feed.segment.add_title(feed.title)
            feed.segment.add(snap)

    def _close_segment(self, feed: _Feed, end: float, reason: str) -> None:
        segment = feed.segment
        if segment is None:
            return
        feed.segment = None
        end = max(end, segment.start)
        n = max(1, segment.estimates)
        tags = sorted(segment.tag_sums.items(), key=lambda kv: -kv[1])[:5]
        record = {
            "type": "segment",
            "feed": feed.spec.name,
            "url": display_url(feed.spec.url),
            "start": _iso(segment.start),
            "end": _iso(end),
            "start_ts": round(segment.start, 3),
            "end_ts": round(end, 3),
            "duration": round(end - segment.start, 3),
            "genre": segment.genre,
            "confidence": round(segment.confidence_sum / n, 4),
            "top_tags": [{"label": tag, "score": round(total / n, 4)} for tag, total in tags],
            "titles": list(segment.titles),
            "estimates": segment.estimates,
            "end_reason": reason,
        }
        feed.segments += 1
        self._write(record)
        log.info(
            "%s: %s %.2f for %.1f s (%s)%s",
            safe_text(feed.spec.name),
            segment.genre,
            record["confidence"],
            record["duration"],
            reason,
            f" · {safe_text(segment.titles[-1], 120)}" if segment.titles else "",
        )

    def _write(self, record: dict[str, Any]) -> None:
        if self.log is None:
            return
        try:
            self.log.write(record)
        except (OSError, ValueError) as exc:
            log.error("cannot write the log %s: %s", self.log.path, exc)

    # ------------------------------------------------------------------ status
    def status(self) -> list[FeedStatus]:
        """One :class:`FeedStatus` per feed (safe to call from any thread)."""
        out = []
        for feed in self.feeds:
            snap = feed.snapshot
            health = feed.source.health()
            out.append(
                FeedStatus(
                    name=feed.spec.name,
                    url=display_url(feed.spec.url),
                    genre=None if snap is None or health.state != "streaming" else snap.genre,
                    confidence=0.0 if snap is None or health.state != "streaming" else snap.confidence,
                    state=health.state,
                    title=health.title,
                    estimates=feed.estimates,
                    segments=feed.segments,
                    seconds_per_genre=dict(feed.seconds),
                    health=health,
                )
            )
        return out


# ---------------------------------------------------------------------------------------------- metrics
class _FeedCollector:
    """Prometheus collector reading the monitor's live state at scrape time (no double bookkeeping)."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        labels = list(self.monitor.model.labels)
        genre = GaugeMetricFamily(
            "streamgenre_feed_genre", "1 for the genre shown now on the feed", labels=["feed", "genre"]
        )
        conf = GaugeMetricFamily(
            "streamgenre_feed_confidence", "Smoothed confidence of the shown genre", labels=["feed"]
        )
        up = GaugeMetricFamily("streamgenre_feed_up", "1 while audio is streaming", labels=["feed"])
        age = GaugeMetricFamily(
            "streamgenre_feed_seconds_since_audio",
            "Seconds since audio was last decoded (watchdog)",
            labels=["feed"],
        )
        buffered = GaugeMetricFamily(
            "streamgenre_feed_buffered_seconds", "Audio queued for analysis", labels=["feed"]
        )
        seconds = CounterMetricFamily(
            "streamgenre_feed_genre_seconds", "Seconds of audio per shown genre", labels=["feed", "genre"]
        )
        counters = {
            "reconnects": CounterMetricFamily(
                "streamgenre_feed_reconnects", "Reconnection attempts", labels=["feed"]
            ),
            "decode_errors": CounterMetricFamily(
                "streamgenre_feed_decode_errors", "Undecodable packets skipped", labels=["feed"]
            ),
            "stalls": CounterMetricFamily(
                "streamgenre_feed_stalls", "Stalls (no audio for the stall timeout)", labels=["feed"]
            ),
            "overflows": CounterMetricFamily(
                "streamgenre_feed_overflows", "0.1 s blocks dropped (analysis behind)", labels=["feed"]
            ),
            "bytes_in": CounterMetricFamily(
                "streamgenre_feed_received_bytes", "Bytes received", labels=["feed"]
            ),
        }
        estimates = CounterMetricFamily("streamgenre_feed_estimates", "Estimates published", labels=["feed"])
        segments = CounterMetricFamily("streamgenre_feed_segments", "Segments written", labels=["feed"])
        for st in self.monitor.status():
            for label in labels:
                genre.add_metric([st.name, label], 1.0 if st.genre == label else 0.0)
                seconds.add_metric([st.name, label], st.seconds_per_genre.get(label, 0.0))
            conf.add_metric([st.name], st.confidence)
            up.add_metric([st.name], 1.0 if st.state == "streaming" else 0.0)
            since = st.health.seconds_since_audio
            age.add_metric([st.name], math.inf if since is None else since)
            buffered.add_metric([st.name], st.health.buffered_seconds)
            for key, family in counters.items():
                family.add_metric([st.name], float(getattr(st.health, key)))
            estimates.add_metric([st.name], float(st.estimates))
            segments.add_metric([st.name], float(st.segments))
        yield from (genre, conf, up, age, buffered, seconds, *counters.values(), estimates, segments)


class MonitorMetrics:
    """Prometheus metrics of a :class:`Monitor` in a private registry, optionally served over HTTP.

    Per feed: ``streamgenre_feed_genre{feed,genre}`` (1 = shown now), ``_confidence``, ``_up``,
    ``_seconds_since_audio``, ``_buffered_seconds``, ``_genre_seconds_total{feed,genre}``,
    ``_reconnects_total``, ``_decode_errors_total``, ``_stalls_total``, ``_overflows_total``,
    ``_received_bytes_total``, ``_estimates_total``, ``_segments_total`` and the histogram
    ``streamgenre_estimate_latency_seconds{feed}`` (block decoded -> estimate published); for
    the shared model ``streamgenre_model_call_seconds`` and ``streamgenre_model_batch_windows``.
    """

    def __init__(self, monitor: Monitor) -> None:
        from prometheus_client import CollectorRegistry, Histogram

        self.registry = CollectorRegistry()
        self.registry.register(_FeedCollector(monitor))
        self._latency = Histogram(
            "streamgenre_estimate_latency_seconds",
            "Block decoded -> estimate published",
            ["feed"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._model = Histogram(
            "streamgenre_model_call_seconds",
            "Duration of one batched model call",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._batch = Histogram(
            "streamgenre_model_batch_windows",
            "Windows per model call",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=self.registry,
        )
        self._server: Any = None
        self._thread: threading.Thread | None = None
        monitor.metrics = self

    def latency(self, feed: str, seconds: float) -> None:
        """Record one estimate's latency."""
        self._latency.labels(feed).observe(seconds)

    def model_call(self, seconds: float, windows: int) -> None:
        """Record one model call."""
        self._model.observe(seconds)
        self._batch.observe(windows)

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format (what ``/metrics`` serves)."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Serve ``/metrics`` on ``host:port`` (port 0: any free port); returns the port.

        Raises
        ------
        ConfigError
            The port cannot be bound.
        """
        from prometheus_client import start_http_server

        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ConfigError(f"--metrics-port must be 0..65535, got {port!r}")
        try:
            self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise ConfigError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from None
        return int(self._server.server_port)

    def close(self) -> None:
        """Stop the HTTP server (idempotent)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def status_table(statuses: Sequence[FeedStatus]) -> Any:
    """A rich table with one compact line per feed (titles and names escaped, never markup-parsed)."""
    from rich.table import Table
    from rich.text import Text

    from streamgenre.dashboard import genre_color

    table = Table(box=None, pad_edge=False, expand=False, show_edge=False, header_style="bold")
    for column, justify in (
        ("feed", "left"),
        ("state", "left"),
        ("genre", "left"),
        ("conf", "right"),
        ("title", "left"),
        ("reconn", "right"),
        ("stalls", "right"),
        ("errors", "right"),
        ("drops", "right"),
    ):
        table.add_column(
            column,
            justify=justify,
            no_wrap=True,
            overflow="ellipsis",
            max_width=40 if column == "title" else (24 if column == "feed" else None),
        )
    for st in statuses:
        h = st.health
        state = st.state
        if state == "waiting" and h.retry_in is not None:
            state = f"retry {h.retry_in:.0f}s"
        style = {"streaming": "green", "ended": "grey50"}.get(st.state, "yellow")
        table.add_row(
            Text(safe_text(st.name, 24)),
            Text(state, style=style),
            Text(st.genre or "—", style=f"bold {genre_color(st.genre)}"),
            f"{st.confidence:.2f}" if st.genre else "",
            Text(safe_text(st.title or "", 60), style="grey70"),
            str(h.reconnects),
            str(h.stalls),
            str(h.decode_errors),
            str(h.overflows),
        )
    return table


def with_defaults(smoothing: float | None, min_segment: float | None) -> SmootherConfig:
    """The monitor's smoother settings, with ``--smoothing``/``--min-segment`` applied (one-line errors)."""
    try:
        return dataclasses.replace(
            SmootherConfig(time_constant_s=DEFAULT_SMOOTHING_S, min_dwell_s=DEFAULT_MIN_SEGMENT_S),
            **({} if smoothing is None else {"time_constant_s": smoothing}),
            **({} if min_segment is None else {"min_dwell_s": min_segment}),
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"bad smoothing settings: {exc}") from None


# ---------------------------------------------------------------------------------------------- command
def _positive_seconds(value: float | None, option: str) -> None:
    if value is not None and not (isinstance(value, (int, float)) and 0 < value < math.inf):
        raise ConfigError(f"{option} must be a positive number of seconds, got {value}")


def _summary_lines(monitor: Monitor, reason: str) -> list[str]:
    lines = []
    for st in monitor.status():
        total = sum(st.seconds_per_genre.values())
        shares = sorted(
            ((g, s / total) for g, s in st.seconds_per_genre.items() if s > 0), key=lambda kv: -kv[1]
        )
        genres = ", ".join(f"{g} {100 * s:.0f}%" for g, s in shares[:4]) or "no genre"
        h = st.health
        lines.append(
            f"streamgenre: {safe_text(st.name, 60)}: {h.audio_seconds:.0f} s of audio · {genres} · "
            f"{st.segments} segments · {h.reconnects} reconnects, {h.stalls} stalls, "
            f"{h.decode_errors} decode errors, {h.overflows} dropped blocks"
        )
    lines.append(
        f"streamgenre: monitor stopped ({reason}): {monitor.model_calls} model calls, "
        f"{monitor.windows_scored} windows, {monitor.model_seconds:.1f} s in the model"
    )
    return lines


def cmd_monitor(args: Any) -> int:
    """``streamgenre monitor URL…``: run until SIGTERM/SIGINT, ``--duration`` or the end of every feed."""
    import signal
    import sys

    from streamgenre.live import check_options
    from streamgenre.model import load_model

    check_options(args)
    for option in ("stall_timeout", "connect_timeout", "max_backoff"):
        _positive_seconds(getattr(args, option), "--" + option.replace("_", "-"))
    if args.log_max_mb is not None and not args.log_max_mb > 0:
        raise ConfigError(f"--log-max-mb must be positive, got {args.log_max_mb}")
    specs = parse_feeds(list(args.urls) + (read_feed_file(args.feeds) if args.feeds else []))
    smoother = with_defaults(args.smoothing, args.min_segment)
    backoff = Backoff(initial=min(0.5, args.max_backoff), maximum=args.max_backoff)
    segment_log = None
    if args.log:
        max_bytes = None if args.log_max_mb is None else max(1, int(args.log_max_mb * 2**20))
        segment_log = SegmentLog(
            args.log, max_bytes=max_bytes, daily=not args.no_daily_rotation, keep=args.log_keep
        )
    metrics = None
    try:
        model = load_model(args.model, provider=args.provider, threads=args.threads)
        monitor = Monitor(
            model,
            specs,
            hop_seconds=args.hop,
            smoother=smoother,
            log=segment_log,
            connect_timeout=args.connect_timeout,
            stall_seconds=args.stall_timeout,
            backoff=backoff,
        )
        if args.metrics_port is not None:
            metrics = MonitorMetrics(monitor)
            port = metrics.serve(args.metrics_port, args.metrics_host)
            log.warning("metrics on http://%s:%d/metrics", args.metrics_host, port)
    except BaseException:
        if segment_log is not None:
            segment_log.close()
        raise
    previous = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            previous[sig] = signal.signal(sig, lambda *_: monitor.stop())
        except ValueError:  # not the main thread (embedded use): the caller stops the monitor
            pass
    streamgenre_log = logging.getLogger("streamgenre")
    old_level, old_propagate = streamgenre_log.level, streamgenre_log.propagate
    if not args.verbose:
        streamgenre_log.setLevel(logging.INFO)
    try:
        monitor.start()
        with startup_objects_frozen():  # no full garbage collection stalls the feeds mid-stream
            if sys.stdout.isatty() and not args.no_ui:
                reason = _run_with_status(monitor, args.duration, streamgenre_log)
            else:
                reason = monitor.run(args.duration)
    except StreamgenreError:
        raise
    except Exception as exc:  # the open segments were written by run(); report one line, not a traceback
        log.debug("monitor failed", exc_info=exc)
        detail = " ".join(str(exc).split())[:300]
        raise StreamgenreError(f"the monitor stopped: {type(exc).__name__}: {detail}") from None
    finally:
        streamgenre_log.setLevel(old_level)
        streamgenre_log.propagate = old_propagate
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if metrics is not None:
            metrics.close()
        monitor.close()
    for line in _summary_lines(monitor, reason):
        print(line, file=sys.stderr, flush=True)
    return 0


def _run_with_status(monitor: Monitor, duration: float | None, logger: logging.Logger) -> str:
    """Run with a live rich table of the feeds; log lines print above it (markup off, titles escaped)."""
    from rich.console import Console
    from rich.live import Live
    from rich.logging import RichHandler

    console = Console()
    handler = RichHandler(console=console, markup=False, show_path=False, rich_tracebacks=False)
    logger.addHandler(handler)
    logger.propagate = False
    next_draw = 0.0
    try:
        with Live(
            status_table(monitor.status()), console=console, auto_refresh=False, transient=False
        ) as live:

            def redraw() -> None:
                nonlocal next_draw
                now = time.monotonic()
                if now >= next_draw:
                    next_draw = now + 0.5
                    live.update(status_table(monitor.status()), refresh=True)

            return monitor.run(duration, on_tick=redraw)
    finally:
        logger.removeHandler(handler)
