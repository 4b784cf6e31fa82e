"""Streaming engine: blocks of audio in, immutable :class:`~streamgenre.state.Snapshot` objects out.

One :class:`Engine` per stream holds every per-stream stage (resampler, mel front end, windower,
smoother, statistics); the :class:`~streamgenre.model.GenreModel` is shared and stateless. The
work of one block is split so that a scheduler can batch the windows of many streams into one
model call (step 5)::

    batch = engine.process_block(block, capture_time)   # resample -> mel -> due windows
    results = scorer.score(...)                          # one model call for many engines
    engine.publish(results_of_this_engine)               # smoother -> Snapshot

:meth:`Engine.step` does the three for a single stream, and :meth:`Engine.start` runs it on a
worker thread that reads a :class:`BlockSource` (a live :class:`~streamgenre.capture.Capture` or a
:class:`FileBlockSource`). Readers call :meth:`Engine.snapshot`, which returns the latest published
reference and never blocks; the worker never waits for a reader (except an opt-in lossless
subscription, used for files decoded faster than real time).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import logging
import math
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import numpy as np

from streamgenre.classify import WindowResult, WindowScorer
from streamgenre.errors import ConfigError, StreamgenreError
from streamgenre.features import StreamingMel, warmup
from streamgenre.model import MAX_FRESH_FRAMES, GenreModel, StreamCache
from streamgenre.resample import Resampler
from streamgenre.smoother import SmoothedEstimate, Smoother, SmootherConfig
from streamgenre.sources import FileSource
from streamgenre.state import Snapshot, SourceInfo, StageTiming
from streamgenre.windows import MelWindower, WindowBatch

__all__ = ["BlockSource", "Engine", "FileBlockSource", "hop_frames_for", "startup_objects_frozen"]

log = logging.getLogger(__name__)

BLOCK_SECONDS = 0.1
STAGES = ("resample", "mel", "prepare", "model", "smoother", "end_to_end")
CLIP_LEVEL = 0.999  # |sample| at or above this counts as clipping (float capture saturates at 1.0)
_MAX_HOP_S = 60.0
FIRST_DURATIONS = 64  # provisional estimates' durations kept (a stream has a handful)
BURST_GAP = 0.5  # a block captured within this many block periods of the previous one came in a burst
BURST_MEMORY_BLOCKS = 100  # ... and windows are prepared one block earlier for this many blocks after a burst


class BlockSource(Protocol):
    """What the engine's worker reads: blocks of native-rate audio with their capture times."""

    exhausted: bool

    def start(self) -> None:
        """Begin delivering blocks (open the device)."""

    def read_block(self, timeout: float) -> tuple[np.ndarray, float] | None:
        """``(block, capture_time)`` or None when nothing came within ``timeout`` (or at the end)."""

    def source_info(self) -> SourceInfo:
        """Name, rate and channels of the blocks."""

    def close(self) -> None:
        """Release the device or file."""


class FileBlockSource:
    """A :class:`~streamgenre.sources.FileSource` as an engine source (mono, at the model rate).

    Parameters
    ----------
    path
        Audio file.
    sample_rate
        Rate to decode to (the model's rate: the engine's resampler is then a pass-through).
    block_seconds
        Block length.
    realtime
        Pace blocks at wall-clock speed (as if captured live).
    """

    overflows = 0
    input_overflows = 0

    def __init__(
        self,
        path: str | os.PathLike[str],
        sample_rate: int,
        block_seconds: float = BLOCK_SECONDS,
        realtime: bool = False,
    ) -> None:
        self._source = FileSource(path, sample_rate, block_seconds=block_seconds, realtime=realtime)
        self.exhausted = False

    def start(self) -> None:
        """Nothing to open: decoding starts with the first block."""

    def read_block(self, timeout: float) -> tuple[np.ndarray, float] | None:
        """The next block (None at the end of the file); ``timeout`` is not needed."""
        if self.exhausted:
            return None
        try:
            block = next(self._source)
        except StopIteration:
            self.exhausted = True
            return None
        return block, time.monotonic()

    def source_info(self) -> SourceInfo:
        """``SourceInfo("file", path, rate, 1)``."""
        return SourceInfo("file", str(self._source.path), self._source.sample_rate, 1)

    def close(self) -> None:
        """Stop decoding."""
        self._source.close()


@contextlib.contextmanager
def startup_objects_frozen() -> Iterator[None]:
    """Keep every object made so far out of the cyclic garbage collector's full scans while running.

    Enter it when start-up is over (modules imported, model loaded, engines warmed up), before audio
    flows. Python's full (generation 2) collection runs on whichever thread allocates at the time,
    holding the GIL; over the ~110 000 objects of a started ``streamgenre live`` it took ~100 ms here,
    so an estimate due meanwhile waited that long, every 20 s or so. :func:`gc.freeze` moves those
    objects to a generation that is never scanned, and later full collections scan only what the
    stream itself made since; on leaving, they return to the collector (so that exit frees them).
    No collection runs first: one would cost ~100 ms of start-up, and whatever garbage start-up left
    only waits until exit. An application-wide setting: the command-line entry points use it, the
    library never does.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def hop_frames_for(hop_seconds: float, model: GenreModel, block_seconds: float = BLOCK_SECONDS) -> int:
    """Mel frames between windows for ``--hop`` seconds; ConfigError unless ``block ≤ hop ≤ 60 s``."""
    if isinstance(hop_seconds, bool) or not isinstance(hop_seconds, (int, float)) or not math.isfinite(hop_seconds):
        raise ConfigError(f"--hop must be a number of seconds, got {hop_seconds!r}")
    if hop_seconds < block_seconds - 1e-9:
        raise ConfigError(f"--hop must be at least one block ({block_seconds:g} s), got {hop_seconds:g}")
    if hop_seconds > _MAX_HOP_S:
        raise ConfigError(f"--hop must be at most {_MAX_HOP_S:g} s, got {hop_seconds:g}")
    cfg = model.mel_config
    return max(1, round(hop_seconds * cfg.sample_rate / cfg.hop_length))


class _StageTimer:
    """Last/p50/p99/max of the most recent ``size`` durations (milliseconds), preallocated.

    Durations added with ``steady=False`` (a stream's first, provisional estimates: each window
    computed whole, ~50 ms) become the last value but stay out of the percentiles, which describe the
    steady state; they stand in only until the first steady duration comes.
    """

    def __init__(self, size: int) -> None:
        self._values = np.zeros(size, np.float64)
        self._first = np.zeros(FIRST_DURATIONS, np.float64)
        self._firsts = 0
        self.count = 0
        self.last = 0.0

    def add(self, ms: float, steady: bool = True) -> None:
        if steady:
            self._values[self.count % len(self._values)] = ms
            self.count += 1
        elif self._firsts < len(self._first):
            self._first[self._firsts] = ms
            self._firsts += 1
        self.last = ms

    def timing(self) -> StageTiming:
        values, count = self._values, self.count
        if count == 0:
            values, count = self._first, self._firsts
        if count == 0:
            return StageTiming()
        ordered = np.sort(values[: min(count, len(values))])
        p50, p99 = _quantile(ordered, 0.50), _quantile(ordered, 0.99)
        return StageTiming(self.last, p50, p99, float(ordered[-1]), count)


def _quantile(ordered: np.ndarray, q: float) -> float:
    """``np.percentile``'s default (linear) quantile of sorted values, without its overhead."""
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (position - low))


def _dbfs(power: float) -> float:
    return 10.0 * math.log10(power) if power > 0 else -math.inf


class Engine:
    """The per-stream pipeline: resampler → StreamingMel → MelWindower → model → Smoother → Snapshot.

    Parameters
    ----------
    model
        The shared model (its contract sets rate, front end and window length).
    source
        Where :meth:`start` reads blocks from; may be None when the caller drives
        :meth:`process_block`/:meth:`publish` itself (then pass ``source_info``).
    hop_seconds
        Seconds between estimates (≥ one block).
    block_seconds
        Length of the blocks the source delivers.
    first_estimate_seconds
        The first (provisional, repeat-padded) window is due once this much audio has arrived.
    smoother
        Smoother settings (defaults when None).
    max_seconds
        Stop after this many seconds of audio (None: until stopped or the source ends).
    source_info
        Used when ``source`` is None.
    history_seconds, top_tags, timing_window
        Timeline length, tags per snapshot, and how many recent durations the p50/p99 cover.
    prepare_between_windows
        Do a window's model work in the block before it is due, as far as the audio so far allows
        (the default: the window's own call then only adds the newest block, for low latency; one
        such wake-up per window keeps the CPU cost down too). False leaves everything to the
        window's model call: fewer, larger calls, which suits many streams that care more about
        throughput than latency (the radio monitor).
    """

    def __init__(
        self,
        model: GenreModel,
        source: BlockSource | None = None,
        hop_seconds: float = 0.5,
        block_seconds: float = BLOCK_SECONDS,
        first_estimate_seconds: float = 1.0,
        smoother: SmootherConfig | None = None,
        max_seconds: float | None = None,
        source_info: SourceInfo | None = None,
        history_seconds: float = 60.0,
        top_tags: int = 5,
        timing_window: int = 256,
        prepare_between_windows: bool = True,
    ) -> None:
        info = source.source_info() if source is not None else source_info
        if info is None:
            raise ValueError("Engine needs a source or a source_info")
        if max_seconds is not None and not (isinstance(max_seconds, (int, float)) and max_seconds > 0):
            raise ConfigError(f"--duration must be a positive number of seconds, got {max_seconds!r}")
        self.model = model
        self.source = source
        self.info = info
        cfg = model.mel_config
        self.hop_frames = hop_frames_for(hop_seconds, model, block_seconds)
        self.hop_seconds = self.hop_frames * cfg.hop_length / cfg.sample_rate
        self.block_seconds = float(block_seconds)
        self.max_seconds = max_seconds
        # First window after first_estimate_seconds minus one block (block alignment + resampler delay).
        first_samples = round((first_estimate_seconds - block_seconds) * cfg.sample_rate)
        first = (first_samples - cfg.n_fft) // cfg.hop_length + 1
        self.first_after_frames = int(min(model.window_frames, max(1, first)))
        try:
            self._resampler = Resampler(info.sample_rate, cfg.sample_rate, channels=info.channels)
        except ValueError as exc:
            raise ConfigError(f"source {info.name!r}: {exc}") from None
        self._mel = StreamingMel(cfg)
        self._windower = MelWindower(model.window_frames, cfg.n_mels, self.hop_frames, self.first_after_frames)
        self._smoother = Smoother(model.labels, smoother)
        self._scorer = WindowScorer(model, self.hop_frames)
        # prepare the next window when the next block can complete it (a block brings a frame or two more
        # than its length when the resampler releases its delay), or when many frames wait unprepared; from a
        # source that delivers blocks in bursts (PulseAudio hands PortAudio 200 ms at a time), one block earlier,
        # so that the work is done before a burst brings the window's last two blocks at once
        block_frames = math.ceil(self.block_seconds * cfg.sample_rate / cfg.hop_length)
        self._prepare_lead = min(MAX_FRESH_FRAMES, block_frames + 2)
        self._burst_lead = min(MAX_FRESH_FRAMES, 2 * block_frames + 2)
        self._prepare_backlog = max(block_frames, model.window_frames // 2)
        contract = model.contract
        self._tag_labels: tuple[str, ...] = ()
        if contract.tag_output:
            self._tag_labels = tuple(contract.outputs[contract.tag_output].labels)
        self._top_tags = int(top_tags)
        self.prepare_between_windows = bool(prepare_between_windows)
        self._timers = {name: _StageTimer(timing_window) for name in STAGES}
        self._history: deque[tuple[float, str | None]] = deque(maxlen=math.ceil(history_seconds / self.hop_seconds) + 1)
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._subscribers: list[tuple[queue.Queue[Snapshot], bool]] = []
        self.error: BaseException | None = None
        self.dropped_records = 0
        self._reset_counters()
        self._snapshot = self._base_snapshot()

    # ------------------------------------------------------------------ state
    def _reset_counters(self) -> None:
        self.samples_in = 0  # native-rate frames consumed
        self.blocks = 0
        self.estimates = 0
        self.cpu_seconds = 0.0  # worker thread CPU time spent in step()
        self._hop_power = 0.0  # sum of squares since the last estimate
        self._prepared_upto = 0  # stream frame up to which the model's stream cache was last prepared
        self._prepared_for: int | None = None  # end frame of the window prepared last
        self._bursty = 0  # blocks left to prepare windows one block earlier (the source delivered a burst)
        self._hop_count = 0
        self._capture_time = time.monotonic()
        self._last_estimate: SmoothedEstimate | None = None

    def _base_snapshot(self) -> Snapshot:
        return Snapshot(
            labels=tuple(self.model.labels),
            source=self.info,
            model=self.model.name,
            provider=self.model.provider,
            wall_time=time.time(),
        )

    def reset(self) -> None:
        """Forget the stream (stages, smoother, statistics); the model is untouched."""
        self._resampler.reset()
        self._mel.reset()
        self._windower.reset()
        self._scorer.reset()
        self._smoother.reset()
        self._history.clear()
        self._timers = {name: _StageTimer(len(t._values)) for name, t in self._timers.items()}
        self._reset_counters()
        self._snapshot = self._base_snapshot()

    def warmup(self) -> None:
        """Compile/load the numba kernels and run every stage once, then reset: call before audio flows."""
        warmup()
        zeros = np.zeros((max(1, round(self.info.sample_rate * self.block_seconds)), self.info.channels), np.float32)
        for _ in range(3):
            self._mel.process(self._resampler.process(zeros))
        window, n_mels = self.model.window_frames, self.model.mel_config.n_mels
        zero_windows = np.zeros((2, window, n_mels), np.float32)
        self._scorer.score(zero_windows, np.array([window, window + self.hop_frames]), np.array([False, False]))
        cache = self._scorer.cache
        if cache is not None:  # ... and a window prepared ahead, as the live path runs them
            end = window + 2 * self.hop_frames
            for lead in sorted({self._prepare_lead, self._burst_lead}):  # the shapes both leads give
                end += self.hop_frames
                self.model.prepare_stream(cache, zero_windows[0], end - lead, end)
                self._scorer.score(zero_windows[:1], np.array([end]), np.array([False]))
        self.reset()

    def snapshot(self) -> Snapshot:
        """The latest published state (never blocks)."""
        return self._snapshot

    @property
    def stream_cache(self) -> StreamCache | None:
        """This stream's model cache, for callers that batch several engines' windows."""
        return self._scorer.cache

    @property
    def audio_seconds(self) -> float:
        """Seconds of audio consumed."""
        return self.samples_in / self.info.sample_rate

    # ------------------------------------------------------------------ the pipeline, in pieces
    def process_block(self, block: np.ndarray, capture_time: float | None = None) -> WindowBatch:
        """Resample one native-rate block, update the level, compute mel frames; return the due windows.

        Score the returned windows (alone or batched with other streams) and hand the results to
        :meth:`publish` before the next ``process_block`` call.
        """
        timers = self._timers
        x = np.asarray(block)
        previous, self._capture_time = self._capture_time, time.monotonic() if capture_time is None else capture_time
        if self.blocks and self._capture_time - previous < BURST_GAP * self.block_seconds:
            self._bursty = BURST_MEMORY_BLOCKS  # this block came with the previous one
        elif self._bursty:
            self._bursty -= 1
        t0 = time.perf_counter()
        mono = self._resampler.process(x)
        t1 = time.perf_counter()
        frames = self._mel.process(mono)
        batch = self._windower.process(frames)
        t2 = time.perf_counter()
        timers["resample"].add((t1 - t0) * 1e3)
        timers["mel"].add((t2 - t1) * 1e3)
        cache = self._scorer.cache
        windower = self._windower
        due_in = windower.next_end - windower.frames_seen
        lead = due_in <= (self._burst_lead if self._bursty else self._prepare_lead) and \
            self._prepared_for != windower.next_end
        if self.prepare_between_windows and len(batch) == 0 and cache is not None and len(frames) and (
                lead or windower.frames_seen - self._prepared_upto >= self._prepare_backlog):
            # The next window is due with the next block (or the one after): do all of its work the frames so
            # far allow, in one wake-up, so that its own call only adds the newest frames and blocks between
            # stay cheap.
            self.model.prepare_stream(cache, windower.recent(), windower.frames_seen, windower.next_end)
            self._prepared_upto = windower.frames_seen
            if lead:
                self._prepared_for = windower.next_end
            timers["prepare"].add((time.perf_counter() - t2) * 1e3)
        self.samples_in += x.shape[0]
        self.blocks += 1
        flat = x.reshape(-1)
        power = float(np.dot(flat, flat)) / max(1, flat.shape[0])
        peak = float(max(flat.max(), -flat.min())) if flat.shape[0] else 0.0
        self._hop_power += power * x.shape[0]
        self._hop_count += x.shape[0]
        self._snapshot = dataclasses.replace(
            self._snapshot,
            level_dbfs=_dbfs(power),
            peak_dbfs=20.0 * math.log10(peak) if peak > 0 else -math.inf,
            clipping=peak >= CLIP_LEVEL,
            overflows=int(getattr(self.source, "overflows", 0)),
            input_overflows=int(getattr(self.source, "input_overflows", 0)),
            title=getattr(self.source, "title", None),  # what a radio feed says is playing
        )
        return batch

    def score(self, batch: WindowBatch) -> list[WindowResult]:
        """Run the shared model on this engine's windows (genre and tags in one call)."""
        if len(batch) == 0:
            return []
        t0 = time.perf_counter()
        results = self._scorer.score(batch.windows, batch.end_frames, batch.provisional)
        self._timers["model"].add((time.perf_counter() - t0) * 1e3 / len(batch), steady=not batch.provisional.any())
        return results

    def publish(self, results: Sequence[WindowResult]) -> Snapshot | None:
        """Smooth the scored windows of the latest block and publish one Snapshot per window.

        Returns
        -------
        Snapshot or None
            The last snapshot published (None when ``results`` is empty).
        """
        if not results:
            return None
        level = _dbfs(self._hop_power / self._hop_count) if self._hop_count else -math.inf
        self._hop_power, self._hop_count = 0.0, 0
        snap = None
        for result in results:
            t0 = time.perf_counter()
            est = self._smoother.process(result.scores, level, result.end)
            self._timers["smoother"].add((time.perf_counter() - t0) * 1e3)
            self._last_estimate = est
            self.estimates += 1
            self._history.append((est.t, est.genre))
            self._timers["end_to_end"].add((time.monotonic() - self._capture_time) * 1e3, steady=not result.provisional)
            snap = self._estimate_snapshot(est, result)
            self._snapshot = snap
            self._notify(snap)
        return snap

    def step(self, block: np.ndarray, capture_time: float | None = None) -> Snapshot | None:
        """``process_block`` → ``score`` → ``publish`` for one block of this stream."""
        return self.publish(self.score(self.process_block(block, capture_time)))

    def _estimate_snapshot(self, est: SmoothedEstimate, result: WindowResult) -> Snapshot:
        tags: tuple[tuple[str, float], ...] = ()
        if result.tags is not None and self._top_tags > 0 and self._tag_labels:
            order = np.argsort(-result.tags)[: self._top_tags]
            tags = tuple((self._tag_labels[i], float(result.tags[i])) for i in order)
        return dataclasses.replace(
            self._snapshot,
            t=est.t,
            wall_time=time.time(),
            state=est.state,
            genre=est.genre,
            confidence=est.confidence,
            provisional=result.provisional,
            smoothed=tuple(est.smoothed.tolist()),
            raw=tuple(est.raw.tolist()),
            top_tags=tags,
            timings={name: timer.timing() for name, timer in self._timers.items()},
            estimates=self.estimates,
            flips=est.flips,
            flips_per_minute=est.flips_per_minute,
            last_switch_latency_s=est.last_switch_latency_s,
            history=tuple(self._history),
        )

    # ------------------------------------------------------------------ subscribers (JSON/plain output)
    def subscribe(self, maxsize: int = 1024, lossless: bool = False) -> queue.Queue[Snapshot]:
        """A queue that receives every estimate snapshot.

        Parameters
        ----------
        maxsize
            Queue bound.
        lossless
            When the queue is full, wait (in bounded steps, giving up when the engine stops) instead of
            dropping the record (counted in :attr:`dropped_records`). Only for non-real-time sources.
        """
        q: queue.Queue[Snapshot] = queue.Queue(maxsize=maxsize)
        self._subscribers.append((q, lossless))
        return q

    def _notify(self, snap: Snapshot) -> None:
        for q, lossless in self._subscribers:
            if not lossless:
                try:
                    q.put_nowait(snap)
                except queue.Full:
                    self.dropped_records += 1
                continue
            while not self._stop.is_set():
                try:
                    q.put(snap, timeout=0.1)
                    break
                except queue.Full:
                    continue

    # ------------------------------------------------------------------ worker thread
    @property
    def done(self) -> threading.Event:
        """Set when the worker has ended (stopped, source exhausted, duration reached or error)."""
        return self._done

    @property
    def running(self) -> bool:
        """The worker thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Open the source and start the worker thread (call :meth:`warmup` first).

        Raises
        ------
        DeviceError
            The source cannot be opened.
        """
        if self.source is None:
            raise RuntimeError("Engine.start needs a source")
        if self._thread is not None:
            raise RuntimeError("Engine already started")
        self.source.start()
        self._thread = threading.Thread(target=self._run, name="streamgenre-engine", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self.source is not None
        source = self.source
        limit = None if self.max_seconds is None else round(self.max_seconds * self.info.sample_rate)
        try:
            while not self._stop.is_set():
                item = source.read_block(0.25)
                if item is None:
                    if source.exhausted:
                        self._finish_stream()
                        break
                    continue
                block, captured = item
                if limit is not None and self.samples_in + block.shape[0] > limit:
                    block = block[: max(0, limit - self.samples_in)]
                c0 = time.thread_time()
                if block.shape[0]:
                    self.step(block, captured)
                self.cpu_seconds += time.thread_time() - c0
                if limit is not None and self.samples_in >= limit:
                    break
        except StreamgenreError as exc:
            self.error = exc
        except Exception as exc:  # unexpected: keep it for the caller, which reports it
            log.exception("engine worker failed")
            self.error = exc
        finally:
            try:
                source.close()
            finally:
                self._done.set()

    def _finish_stream(self) -> None:
        """End of a finite source: flush the resampler tail; a too-short stream gets one padded window."""
        frames = self._mel.process(self._resampler.flush())
        batch = self._windower.process(frames)
        if len(batch) == 0 and self.estimates == 0:
            batch = self._windower.flush_partial()
        self.publish(self.score(batch))

    def stop(self, timeout: float = 3.0) -> bool:
        """Ask the worker to stop and wait up to ``timeout`` seconds; True when it has ended."""
        self._stop.set()
        if self._thread is None:
            if self.source is not None:
                self.source.close()
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the worker to end; True when it has."""
        return self._done.wait(timeout)

    # ------------------------------------------------------------------ statistics
    def summary(self) -> dict[str, Any]:
        """Run statistics (JSON-safe): genre shares, flips, overflows, latency, CPU cost."""
        sm = self._smoother.summary()
        shown = sm["seconds_per_genre"]
        total = sum(shown.values()) + sm["seconds_silence"]
        e2e = self._timers["end_to_end"].timing()
        last = None if self._last_estimate is None else self._last_estimate.genre
        shares = {g: s / total for g, s in shown.items() if s > 0} if total > 0 else {}
        silence = sm["seconds_silence"] / total if total > 0 else 0.0
        if total == 0 and self._last_estimate is not None:  # a single estimate covers no interval yet
            shares, silence = ({last: 1.0}, 0.0) if last is not None else ({}, 1.0)
        dominant = max(shares, key=shares.get) if shares else None
        return {
            "audio_seconds": round(self.audio_seconds, 3),
            "estimates": self.estimates,
            "genre": dominant,
            "last_genre": last,
            "shares": shares,
            "silence_share": silence,
            "flips": sm["flips"],
            "flips_per_minute": sm["flips_per_minute"],
            "switches": sm["switches"],
            "overflows": int(getattr(self.source, "overflows", 0)),
            "input_overflows": int(getattr(self.source, "input_overflows", 0)),
            "latency_p50_ms": e2e.p50_ms,
            "latency_p99_ms": e2e.p99_ms,
            "cpu_seconds": self.cpu_seconds,
            "cpu_ms_per_block": 1e3 * self.cpu_seconds / self.blocks if self.blocks else 0.0,
            "dropped_records": self.dropped_records,
        }
