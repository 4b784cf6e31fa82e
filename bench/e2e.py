"""End-to-end latency, CPU share, peak RSS and memory growth through the real threads.

``python -m bench.e2e [--quick] [--part latency|memory|all] [--json PATH]``

A producer thread stands in for the PortAudio driver: it converts 100 ms blocks of real music
(GTZAN clips of ``../shared/data``, resampled once to a 48 kHz int16 "device" stream) to float32
stereo in a preallocated ``indata`` buffer and calls the real :meth:`Capture.callback
<streamgenre.capture.Capture.callback>`, which copies into the ring buffer and stamps the
arrival time. The engine's worker thread reads the ring exactly as in ``streamgenre live``
(resample 48 kHz stereo → 16 kHz mono, StreamingMel, windows, ONNX, smoother, snapshot).

End-to-end latency is the engine's own measure: arrival time of the callback that delivered the
block completing the window → the estimate published (the window length itself excluded; the
device's own buffering before the callback is not visible here, as with a real device).

* **latency**: the replay at an accelerated pace (default 4× real time) and at real-time pace
  (hop 0.5 s, the defaults of ``streamgenre live``): p50/p99/max, the per-stage profile, CPU
  share of one core (process CPU time of all threads / wall time) and peak RSS during real-time
  operation, and the latency distribution as a PNG.
* **memory**: one engine fed ≥ 1 hour of audio (the clips looped) as fast as it runs, the
  producer waiting for ring space instead of dropping; RSS sampled along the way, growth
  reported per hour of audio (slope of a least-squares fit after the first pass).
"""

from __future__ import annotations

import argparse
import math
import os
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import (
    RESULTS_DIR,
    Row,
    gtzan_clips,
    loadavg,
    peak_rss_mb,
    report,
    reset_peak_rss,
    rss_mb,
    stat_cpu_seconds,
)
from streamgenre.capture import Capture
from streamgenre.engine import BLOCK_SECONDS, Engine, startup_objects_frozen
from streamgenre.live import LIVE_THREADS
from streamgenre.model import GenreModel, load_model
from streamgenre.sources import decode_file
from streamgenre.state import SourceInfo

DEVICE_RATE = 48000
DEVICE_CHANNELS = 2
TARGET_P99_MS = 10.0
DEFAULT_SPEED = 4.0
TARGET_CPU_SHARE = 0.05
TARGET_GROWTH_MB_PER_HOUR = 5.0
DEFAULT_PNG = RESULTS_DIR / "e2e_latency.png"
_WAIT_STEP_S = 0.001  # producer poll step while waiting for ring space (lossless mode)


def load_replay_audio(seconds: float, rate: int = DEVICE_RATE) -> tuple[np.ndarray, str]:
    """At least ``seconds`` of real music as int16 mono at ``rate`` (clips in genre-interleaved order).

    int16 keeps the replay buffer small (≈ 29 MB for 5 minutes at 48 kHz), like a device's native
    format; the producer converts each block to float32, as PortAudio does.
    """
    if not 0 < seconds <= 3 * 3600:
        raise ValueError(f"seconds must be in (0, 10800], got {seconds!r}")
    need = math.ceil(seconds * rate)
    parts: list[np.ndarray] = []
    total = 0
    clips = gtzan_clips()
    for path in clips:
        if total >= need:
            break
        x = decode_file(path, rate)
        parts.append(np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16))
        total += parts[-1].size
    audio = np.concatenate(parts)
    looped = ""
    if audio.size < need:  # more asked for than the clips hold: loop them
        audio = np.tile(audio, math.ceil(need / audio.size))
        looped = ", looped"
    return audio[:need], f"{len(parts)} GTZAN clips at {rate} Hz{looped}"


class ReplayCapture(Capture):
    """A :class:`~streamgenre.capture.Capture` whose device is a producer thread replaying audio.

    The producer calls the real :meth:`Capture.callback`; the worker side (``read_block``,
    ``capture_time``, overflow counting) is the real one as well. Only device discovery and the
    PortAudio stream are replaced.

    Parameters
    ----------
    audio
        int16 mono samples at ``sample_rate``, replayed in order ``loops`` times.
    sample_rate, channels
        The simulated device format (mono is copied to every channel).
    speed
        Pace relative to real time (1.0: one block every ``block_seconds``); ignored when ``lossless``.
    lossless
        Deliver as fast as the worker consumes, waiting for ring space instead of dropping
        (for long accelerated runs; not how a device behaves).
    loops
        How many times the audio is replayed.
    block_seconds, ring_seconds
        As in :class:`Capture`.
    """

    def __init__(
        self,
        audio: np.ndarray,
        sample_rate: int = DEVICE_RATE,
        channels: int = DEVICE_CHANNELS,
        speed: float = 1.0,
        lossless: bool = False,
        loops: int = 1,
        block_seconds: float = BLOCK_SECONDS,
        ring_seconds: float = 4.0,
    ) -> None:
        if not isinstance(audio, np.ndarray) or audio.dtype != np.int16 or audio.ndim != 1:
            raise TypeError("ReplayCapture needs a 1-D int16 numpy array")
        if not (isinstance(speed, (int, float)) and math.isfinite(speed) and 0.1 <= speed <= 1000):
            raise ValueError(f"speed must be in [0.1, 1000], got {speed!r}")
        if not (isinstance(loops, int) and 1 <= loops <= 1000):
            raise ValueError(f"loops must be an int in [1, 1000], got {loops!r}")
        # Capture.__init__ minus PortAudio (see streamgenre.capture.Capture).
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self.latency = "replay"
        self._init_buffers(block_seconds, ring_seconds)
        if audio.size < self.blocksize:
            raise ValueError(f"audio must hold at least one block ({self.blocksize} samples)")
        # Replay state.
        self._audio = audio
        self._speed = float(speed)
        self._lossless = bool(lossless)
        self._loops = loops
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.producer_done = False
        self.producer_error: BaseException | None = None
        self.producer_native_id: int | None = None
        self.blocks_per_loop = audio.size // self.blocksize

    @property
    def total_blocks(self) -> int:
        """Blocks the producer delivers in all."""
        return self.blocks_per_loop * self._loops

    def source_info(self) -> SourceInfo:
        """``SourceInfo("device", "replay", rate, channels)``."""
        return SourceInfo(
            "device",
            f"replay x{self._speed:g}" if not self._lossless else "replay (lossless)",
            self.sample_rate,
            self.channels,
        )

    def start(self) -> None:
        """Start the producer thread (the simulated device)."""
        if self._thread is not None:
            raise RuntimeError("ReplayCapture already started")
        self._thread = threading.Thread(target=self._produce, name="replay-producer", daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        self.producer_native_id = threading.get_native_id()
        try:
            indata = np.empty((self.blocksize, self.channels), np.float32)  # PortAudio's buffer
            scale = np.float32(1.0 / 32768.0)
            period = self.blocksize / self.sample_rate / self._speed
            ring = self.ring
            deadline = time.monotonic()
            for k in range(self.total_blocks):
                if self._stop.is_set():
                    break
                if self._lossless:
                    while ring.free < self.blocksize and not self._stop.is_set():
                        time.sleep(_WAIT_STEP_S)
                else:
                    deadline += period
                    delay = deadline - time.monotonic()
                    if delay > 0:
                        self._stop.wait(delay)
                start = (k % self.blocks_per_loop) * self.blocksize
                indata[:, 0] = self._audio[start : start + self.blocksize]
                indata[:, 0] *= scale
                for c in range(1, self.channels):
                    indata[:, c] = indata[:, 0]
                self.callback(indata, self.blocksize, None, None)
        except BaseException as exc:  # reported by the consumer side
            self.producer_error = exc
        finally:
            self.producer_done = True

    def _check_alive(self) -> None:
        """Called by ``read_block`` after a wait without a full block: the end of the replay."""
        if self.producer_error is not None:
            raise RuntimeError(f"replay producer failed: {self.producer_error!r}")
        if self.producer_done and self.ring.available < self.blocksize:
            self.exhausted = True

    def close(self) -> None:
        """Stop the producer (idempotent)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)


DASHBOARD_THREAD = "dashboard (rich Live, 80x24)"
MAIN_THREAD = "main (drains estimates)"


class _DashboardThread:
    """The live dashboard of ``streamgenre live`` on its own thread, drawing into ``/dev/null``."""

    def __init__(self, engine: Engine) -> None:
        from rich.console import Console

        self._sink = open(os.devnull, "w")  # closed in stop()
        self._console = Console(file=self._sink, force_terminal=True, width=80, height=24, color_system="truecolor")
        self._stop = threading.Event()
        self._engine = engine
        self.native_id: int | None = None
        self._thread = threading.Thread(target=self._run, name="dashboard", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from streamgenre.dashboard import run_dashboard

        self.native_id = threading.get_native_id()
        run_dashboard(self._engine.snapshot, self._stop, console=self._console)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        self._sink.close()


def thread_cpu_seconds() -> dict[int, float]:
    """CPU seconds (user + system) of each thread of this process, by native thread id (Linux)."""
    out: dict[int, float] = {}
    task_dir = Path("/proc/self/task")
    if not task_dir.is_dir():
        return out
    for entry in task_dir.iterdir():
        try:
            out[int(entry.name)] = stat_cpu_seconds(entry / "stat")
        except (OSError, ValueError, IndexError):
            continue
    return out


@dataclass
class ReplayResult:
    """What one replay through the engine measured."""

    speed: float | None  # None: lossless (as fast as the worker runs)
    audio_seconds: float
    wall_seconds: float
    latency_ms: np.ndarray  # estimates of full windows (steady state)
    first_latency_ms: np.ndarray  # provisional estimates (the stream's first seconds, padded windows)
    stages_ms: dict[str, np.ndarray]
    cpu_process_s: float
    cpu_threads_s: dict[str, float]
    overflows: int
    input_overflows: int
    estimates: int
    rss_t: np.ndarray  # audio seconds at each RSS sample
    rss_mb: np.ndarray
    peak_rss_mb: float | None
    summary: dict[str, Any] = field(default_factory=dict)


def replay(
    model: GenreModel,
    audio: np.ndarray,
    speed: float = 1.0,
    lossless: bool = False,
    loops: int = 1,
    hop_seconds: float = 0.5,
    sample_rate: int = DEVICE_RATE,
    channels: int = DEVICE_CHANNELS,
    rss_every_s: float = 1.0,
    wall_limit_s: float | None = None,
    collect: bool = True,
    dashboard: bool = False,
) -> ReplayResult:
    """Replay ``audio`` through a :class:`ReplayCapture` and a real :class:`Engine`; collect everything.

    The main thread drains the engine's estimate queue (standing in for the ``--json`` printer),
    reads every estimate's end-to-end latency and stage timings (unless ``collect`` is False: a
    long memory run keeps nothing per estimate, so its own lists do not grow), and samples RSS.
    With ``dashboard`` a further thread shows the live dashboard as ``streamgenre live`` does (its
    default redraw rate, an 80×24 true-colour terminal whose output goes to ``/dev/null``). As in
    ``live``, the objects made before the stream starts are frozen out of the garbage collector's scans.
    """
    capture = ReplayCapture(audio, sample_rate, channels, speed=speed, lossless=lossless, loops=loops)
    engine = Engine(model, capture, hop_seconds=hop_seconds, block_seconds=BLOCK_SECONDS)
    audio_seconds = capture.total_blocks * capture.blocksize / sample_rate
    pace = audio_seconds / speed if not lossless else audio_seconds
    wall_limit = wall_limit_s if wall_limit_s is not None else pace * 1.5 + 30.0
    records = engine.subscribe(maxsize=100_000)
    engine.warmup()
    latency: list[float] = []
    first_latency: list[float] = []
    stages: dict[str, list[float]] = {"resample": [], "mel": [], "model": [], "smoother": []}
    rss_t: list[float] = []
    rss: list[float] = []
    have_peak = reset_peak_rss()
    cpu0, threads0, wall0 = time.process_time(), thread_cpu_seconds(), time.perf_counter()
    with startup_objects_frozen():  # as `streamgenre live` runs once warmed up
        engine.start()
        ui = _DashboardThread(engine) if dashboard else None
        deadline = time.monotonic() + wall_limit
        next_rss = 0.0
        threads1: dict[int, float] = {}
        worker_tid: int | None = None
        while time.monotonic() < deadline:
            try:
                snap = records.get(timeout=0.2)
            except queue.Empty:
                if engine.done.is_set() and records.empty():
                    break
                snap = None
            if snap is not None and collect:
                timings = snap.timings
                if snap.provisional:  # a padded window of the first seconds: computed in full, reported apart
                    first_latency.append(timings["end_to_end"].last_ms)
                else:
                    latency.append(timings["end_to_end"].last_ms)
                    for name, values in stages.items():
                        values.append(timings[name].last_ms)
            now = time.perf_counter() - wall0
            if now >= next_rss:
                rss_t.append(engine.audio_seconds)
                rss.append(rss_mb() or math.nan)
                threads1.update(thread_cpu_seconds())  # threads that end keep their last sample
                if worker_tid is None:
                    worker_tid = next((t.native_id for t in threading.enumerate()
                                       if t.name == "streamgenre-engine"), None)
                next_rss = now + rss_every_s
        finished = engine.done.is_set()
        if ui is not None:
            ui.stop()
        engine.stop()
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    threads1.update(thread_cpu_seconds())
    rss_t.append(engine.audio_seconds)
    rss.append(rss_mb() or math.nan)
    if engine.error is not None:
        raise RuntimeError(f"engine failed during the replay: {engine.error!r}")
    if not finished:
        raise RuntimeError(f"replay did not finish within {wall_limit:.0f} s (wall-clock limit)")
    delta = {tid: threads1[tid] - threads0.get(tid, 0.0) for tid in threads1}
    named = {
        "worker": worker_tid,
        "producer (device)": capture.producer_native_id,
        MAIN_THREAD: threading.main_thread().native_id,
    }
    if ui is not None:
        named[DASHBOARD_THREAD] = ui.native_id
    cpu_threads = {name: delta.pop(tid, 0.0) for name, tid in named.items() if tid is not None}
    cpu_threads["other threads (onnxruntime pool, ...)"] = sum(delta.values())
    cpu_threads["unsampled (threads ended between samples)"] = max(0.0, cpu - sum(cpu_threads.values()))
    return ReplayResult(
        speed=None if lossless else speed,
        audio_seconds=engine.audio_seconds,
        wall_seconds=wall,
        latency_ms=np.asarray(latency),
        first_latency_ms=np.asarray(first_latency),
        stages_ms={k: np.asarray(v) for k, v in stages.items()},
        cpu_process_s=cpu,
        cpu_threads_s=cpu_threads,
        overflows=capture.overflows,
        input_overflows=capture.input_overflows,
        estimates=len(latency),
        rss_t=np.asarray(rss_t),
        rss_mb=np.asarray(rss),
        peak_rss_mb=peak_rss_mb() if have_peak else None,
        summary=engine.summary(),
    )


def _pct(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if values.size else math.nan


def profile_note(result: ReplayResult) -> str:
    """Per-stage breakdown of the latency: medians and p99 of each stage and of the ring wait."""
    st = result.stages_ms
    compute = st["resample"] + st["mel"] + st["model"] + st["smoother"]
    wait = result.latency_ms - compute
    parts = [f"{name} p50 {_pct(st[name], 50):.2f} / p99 {_pct(st[name], 99):.2f}" for name in st]
    parts.append(f"wait in ring + threading p50 {_pct(wait, 50):.2f} / p99 {_pct(wait, 99):.2f}")
    return "ms per estimate: " + "; ".join(parts)


def latency_rows(result: ReplayResult, label: str, target: bool, quick_note: str) -> list[Row]:
    """p50/p99/max rows of one replay (the p99 row carries the target when ``target``)."""
    lat = result.latency_ms
    p99 = _pct(lat, 99)
    first = result.first_latency_ms
    note = (f"{lat.size} estimates of full windows over {result.audio_seconds:.0f} s of audio{quick_note}; "
            f"the {first.size} provisional estimates of the first seconds are the last row")
    met = p99 <= TARGET_P99_MS if target else None
    return [
        Row(f"e2e latency {label}, p50", _pct(lat, 50), "ms", note=note),
        Row(
            f"e2e latency {label}, p99",
            p99,
            "ms",
            f"<= {TARGET_P99_MS:g} ms" if target else None,
            met,
            note=profile_note(result) if target or p99 > TARGET_P99_MS else "",
        ),
        Row(f"e2e latency {label}, max", float(lat.max()) if lat.size else math.nan, "ms"),
        Row(f"e2e latency {label}, provisional first estimates, max", float(first.max()) if first.size else math.nan,
            "ms", note="padded windows before the first 3 s are full: each is computed whole, without the "
            "stream's cached features"),
    ]


def plot_latency(results: list[ReplayResult], path: Path) -> None:
    """Histogram (log-spaced bins) of the end-to-end latency of each replay (full windows; the
    provisional first estimates as one more, dotted, histogram)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    first = np.concatenate([r.first_latency_ms for r in results])
    values = np.concatenate([first, *(r.latency_ms for r in results)])
    if not values.size:
        values = np.array([TARGET_P99_MS])
    lo, hi = max(0.05, float(values.min())), float(values.max()) * 1.05
    bins = np.geomspace(lo, max(hi, lo * 1.1), 60)
    for r in results:
        pace = "real time" if r.speed == 1.0 else f"{r.speed:g}x real time"
        ax.hist(
            r.latency_ms,
            bins=bins,
            histtype="step",
            linewidth=1.5,
            label=f"{pace}: p50 {_pct(r.latency_ms, 50):.1f} ms, p99 {_pct(r.latency_ms, 99):.1f} ms "
            f"(n={r.latency_ms.size})",
        )
    if first.size:
        ax.hist(first, bins=bins, histtype="step", linestyle=":", linewidth=1.5,
                label=f"provisional first estimates, all replays (n={first.size})")
    ax.axvline(TARGET_P99_MS, color="red", linestyle="--", linewidth=1, label=f"target p99 {TARGET_P99_MS:g} ms")
    ax.set_xscale("log")
    ax.set_xlabel("block captured -> estimate published (ms)")
    ax.set_ylabel("estimates")
    ax.set_title("streamgenre end-to-end latency (hop 0.5 s, 48 kHz stereo replay through the real threads)")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_latency(
    model: GenreModel,
    accel_seconds: float,
    realtime_seconds: float,
    speed: float = DEFAULT_SPEED,
    png: Path | None = DEFAULT_PNG,
    quick: bool = False,
    alt_seconds: float = 0.0,
) -> tuple[list[Row], dict[str, Any]]:
    """Accelerated and real-time replays: latency, CPU share, peak RSS; optionally the PNG.

    With ``alt_seconds > 0`` a further real-time replay runs the model with one intra-op thread
    (no onnxruntime thread pool) for comparison with the default setting.
    """
    audio, source = load_replay_audio(max(accel_seconds, realtime_seconds, alt_seconds))
    quick_note = " (--quick: shorter than the full run's 5 min)" if quick else ""
    accel = replay(model, audio[: int(accel_seconds * DEVICE_RATE)], speed=speed)
    live = replay(model, audio[: int(realtime_seconds * DEVICE_RATE)], speed=1.0, dashboard=True)
    rows = latency_rows(accel, f"accelerated {speed:g}x", False, quick_note)
    rows += latency_rows(live, "real time", True, quick_note)
    # `streamgenre live` shows the dashboard and has no other reader of the estimates; with --no-ui the JSON
    # printer drains them, which the bench's main thread stands in for (it also samples RSS once a second)
    process = live.cpu_process_s / live.wall_seconds
    share = process - live.cpu_threads_s.get(MAIN_THREAD, 0.0) / live.wall_seconds
    no_ui_share = process - live.cpu_threads_s.get(DASHBOARD_THREAD, 0.0) / live.wall_seconds
    per_thread = ", ".join(f"{name} {100 * s / live.wall_seconds:.2f} %" for name, s in live.cpu_threads_s.items())
    rows += [
        Row(
            "overflows, accelerated + real-time replays",
            float(live.overflows + accel.overflows),
            "frames",
            "== 0",
            live.overflows + accel.overflows == 0,
            note=f"frames the ring dropped (worker behind): {accel.overflows} in {accel.audio_seconds:.0f} s at "
            f"{speed:g}x, {live.overflows} in {live.audio_seconds:.0f} s at real time",
        ),
        Row(
            "CPU share of one core, live with the dashboard (all threads)",
            100 * share,
            "%",
            f"<= {100 * TARGET_CPU_SHARE:g} %",
            share <= TARGET_CPU_SHARE,
            note=f"the defaults of `streamgenre live`: every thread but the bench's main thread, which drains the "
            f"estimates for these latency figures; per thread: {per_thread}; model {model.threads} intra-op threads",
        ),
        Row(
            "CPU share of one core, live --no-ui (all threads but the dashboard's)",
            100 * no_ui_share,
            "%",
            note="the same run without the dashboard thread (the main thread stands in for the JSON printer)",
        ),
        Row(
            "CPU share of one core, engine worker's steps only",
            100 * live.summary["cpu_seconds"] / live.wall_seconds,
            "%",
            note=f"{live.summary['cpu_ms_per_block']:.2f} ms CPU per 100 ms block (time in Engine.step)",
        ),
        Row(
            "peak RSS during live operation",
            live.peak_rss_mb,
            "MB",
            note=f"whole process, includes the {audio.nbytes / 2**20:.0f} MB int16 replay buffer",
        ),
    ]
    extra: dict[str, Any] = {}
    if alt_seconds > 0:
        other_threads = 2 if model.threads == 1 else 1
        other = load_model(model.path, provider="cpu", threads=other_threads)
        alt = replay(other, audio[: int(alt_seconds * DEVICE_RATE)], speed=1.0)
        alt_share = alt.cpu_process_s / alt.wall_seconds
        rows += [
            Row(
                f"CPU share of one core, live, model {other_threads} thread(s)",
                100 * alt_share,
                "%",
                note=f"alternative setting, {alt.audio_seconds:.0f} s of audio",
            ),
            Row(
                f"e2e latency real time, model {other_threads} thread(s), p99",
                _pct(alt.latency_ms, 99),
                "ms",
                note=f"p50 {_pct(alt.latency_ms, 50):.1f} ms",
            ),
        ]
        extra[f"realtime_{other_threads}_threads"] = _result_json(alt)
    if png is not None:
        plot_latency([accel, live], png)
    extra |= {
        "source": source,
        "device_format": f"{DEVICE_RATE} Hz, {DEVICE_CHANNELS} ch",
        "model": model.name,
        "model_threads": model.threads,
        "loadavg_1min_at_end": loadavg(),
        "png": None if png is None else str(png),
        "accelerated": _result_json(accel),
        "realtime": _result_json(live),
    }
    return rows, extra


def run_memory(model: GenreModel, audio_hours: float, quick: bool = False) -> tuple[list[Row], dict[str, Any]]:
    """One engine fed ``audio_hours`` of looped real audio as fast as it runs; RSS growth per hour."""
    loop_seconds = min(300.0, audio_hours * 3600.0)
    audio, source = load_replay_audio(loop_seconds)
    loops = max(2, math.ceil(audio_hours * 3600.0 / loop_seconds))
    result = replay(model, audio, lossless=True, loops=loops, rss_every_s=0.5, wall_limit_s=1800.0, collect=False)
    t, rss = result.rss_t, result.rss_mb
    keep = (t >= loop_seconds) & np.isfinite(rss)  # after the first pass: allocator and caches settled
    hours = result.audio_seconds / 3600.0
    if keep.sum() >= 3:
        slope = float(np.polyfit(t[keep] / 3600.0, rss[keep], 1)[0])
        delta = float(rss[keep][-1] - rss[keep][0])
    else:
        slope = delta = math.nan
    note = (
        f"{hours:.2f} h of audio ({loops} passes of {loop_seconds:.0f} s) in {result.wall_seconds:.0f} s wall; "
        f"RSS {rss[0]:.0f} -> {rss[-1]:.0f} MB; least-squares slope after the first pass"
    )
    if quick:
        note += " (--quick: shorter than the full run's 1 h)"
    rows = [
        Row(
            "RSS growth over a long run",
            slope,
            "MB/hour of audio",
            f"< {TARGET_GROWTH_MB_PER_HOUR:g}",
            bool(slope < TARGET_GROWTH_MB_PER_HOUR) if math.isfinite(slope) else False,
            note=note,
        ),
        Row("RSS delta after the first pass", delta, "MB", note=f"over {hours - loop_seconds / 3600:.2f} h of audio"),
        Row(
            "long run speed (lossless replay)",
            result.audio_seconds / result.wall_seconds,
            "x real time",
            note="engine worker alone, hop 0.5 s",
        ),
    ]
    extra = {
        "source": source,
        "memory": _result_json(result)
        | {"rss_t_s": result.rss_t.round(2).tolist(), "rss_mb": result.rss_mb.round(2).tolist()},
    }
    return rows, extra


def _result_json(r: ReplayResult) -> dict[str, Any]:
    lat = r.latency_ms
    return {
        "speed": r.speed,
        "audio_seconds": round(r.audio_seconds, 2),
        "wall_seconds": round(r.wall_seconds, 2),
        "estimates": r.estimates,
        "overflows": r.overflows,
        "input_overflows": r.input_overflows,
        "latency_ms": {
            "p50": _pct(lat, 50),
            "p90": _pct(lat, 90),
            "p99": _pct(lat, 99),
            "max": float(lat.max()) if lat.size else None,
        },
        "provisional_latency_ms": [round(float(v), 3) for v in r.first_latency_ms],
        "stages_ms_p50": {k: _pct(v, 50) for k, v in r.stages_ms.items()},
        "stages_ms_p99": {k: _pct(v, 99) for k, v in r.stages_ms.items()},
        "cpu_process_s": r.cpu_process_s,
        "cpu_threads_s": r.cpu_threads_s,
        "peak_rss_mb": r.peak_rss_mb,
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs (about 1 minute in all)")
    parser.add_argument("--part", choices=("latency", "memory", "all"), default="all")
    parser.add_argument("--model", default=None, help="ONNX model (default: the bundled one)")
    parser.add_argument(
        "--speed", type=float, default=DEFAULT_SPEED, help=f"accelerated pace (default {DEFAULT_SPEED:g}x real time)"
    )
    parser.add_argument("--accel-seconds", type=float, default=None, help="audio replayed accelerated (300; quick 40)")
    parser.add_argument("--realtime-seconds", type=float, default=None, help="audio replayed live (300; quick 15)")
    parser.add_argument(
        "--alt-seconds",
        type=float,
        default=None,
        help="audio replayed live with a 1-thread model for comparison (60; quick 8; 0: skip)",
    )
    parser.add_argument("--memory-hours", type=float, default=None, help="audio of the long run (1.0; quick 0.04)")
    parser.add_argument("--png", type=Path, default=DEFAULT_PNG)
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "e2e.json")
    args = parser.parse_args(argv)
    accel = args.accel_seconds or (40.0 if args.quick else 300.0)
    live = args.realtime_seconds or (15.0 if args.quick else 300.0)
    hours = args.memory_hours or (0.04 if args.quick else 1.0)
    alt = args.alt_seconds if args.alt_seconds is not None else (8.0 if args.quick else 60.0)
    for name, value, lo, hi in (
        ("--accel-seconds", accel, 1, 3600),
        ("--realtime-seconds", live, 1, 3600),
        ("--memory-hours", hours * 3600, 1, 3 * 3600),
        ("--alt-seconds", alt, 0, 3600),
    ):
        if not lo <= value <= hi:
            parser.error(f"{name} out of range")
    model = load_model(args.model, threads=LIVE_THREADS)  # the defaults of `streamgenre live`
    rows: list[Row] = []
    extra: dict[str, Any] = {"loadavg_1min_at_start": loadavg()}
    if args.part in ("latency", "all"):
        r, e = run_latency(model, accel, live, args.speed, args.png, args.quick, alt)
        rows += r
        extra |= e
    if args.part in ("memory", "all"):
        r, e = run_memory(model, hours, args.quick)
        rows += r
        extra |= e
    report(f"end to end ({model.name}, {model.provider}, hop 0.5 s)", rows, args.json, extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
