"""Scale: how many radio feeds the monitor sustains in real time on this machine.

``python -m bench.scale [--quick] [--json PATH]``

A separate process serves N live MP3 streams over HTTP on 127.0.0.1 (real music: GTZAN clips
encoded once to 128 kbit/s 44.1 kHz stereo MP3, looped, each connection paced at the stream's
byte rate after a 1 s burst, like an Icecast server). A real :class:`streamgenre.monitor.Monitor`
with its defaults (hop 1.5 s, one shared model, batched inference) listens to all N: per feed a
:class:`~streamgenre.radio.RadioSource` (HTTP reader + decoder + watchdog threads) and its engine
stages. The server shares this machine's cores with the monitor.

A trial with N feeds warms up, then measures for a fixed interval: it *keeps up* when every feed
decoded ≥ 95 % of real time, the backlog (decoded minus analysed audio, averaged over the feeds,
sampled every 0.5 s; a least-squares slope, since it moves in steps of a hop) grew by no more than
5 % of real time, no feed's backlog ends above 3 s, and no block was dropped. N doubles from a start value
until a trial fails, then bisects; the result is the largest N that kept up. Every wait and the
number of trials are bounded.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import REPO_ROOT, RESULTS_DIR, Row, gtzan_clips, loadavg, report, stop_worker

TARGET_FEEDS = 20
AIM_FEEDS = 100
STREAM_RATE = 44100
STREAM_BITRATE = 128_000
BURST_SECONDS = 1.0
CHUNK_BYTES = 4096
SERVER_LIFETIME_S = 3600.0
MAX_BACKLOG_S = 3.0  # two monitor hops
LAG_SAMPLE_S = 0.5
MIN_ANALYSED = 0.95  # of real time, decoded and analysed


# ---------------------------------------------------------------------------------------------- the stream
def encode_stream(path: Path, seconds: float) -> float:
    """Encode ``seconds`` of GTZAN clips (genres interleaved) to an MP3 at ``path``; returns its duration."""
    import av

    from streamgenre.sources import decode_file

    parts, total = [], 0
    for clip in gtzan_clips():
        if total >= seconds * STREAM_RATE:
            break
        parts.append(decode_file(clip, STREAM_RATE))
        total += parts[-1].size
    audio = np.concatenate(parts)[: int(seconds * STREAM_RATE)]
    with av.open(str(path), "w", format="mp3", options={"id3v2_version": "0", "write_xing": "0"}) as out:
        stream = out.add_stream("libmp3lame", rate=STREAM_RATE, layout="stereo")
        stream.bit_rate = STREAM_BITRATE
        for i in range(0, audio.size, STREAM_RATE):
            chunk = audio[i : i + STREAM_RATE]
            frame = av.AudioFrame.from_ndarray(np.stack([chunk, chunk]), format="fltp", layout="stereo")
            frame.rate = STREAM_RATE
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return audio.size / STREAM_RATE


def serve(path: Path, lifetime: float = SERVER_LIFETIME_S) -> None:
    """Serve ``path`` as endless paced MP3 streams at ``/feed/<n>``; print the port; stop on stdin EOF."""
    data = path.read_bytes()
    byte_rate = STREAM_BITRATE / 8
    stop = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "audio/mpeg")
            self.send_header("icy-name", self.path.strip("/"))
            self.send_header("Connection", "close")
            self.end_headers()
            sent, pos = 0, 0
            start = time.monotonic()
            burst = int(BURST_SECONDS * byte_rate)
            while not stop.is_set() and time.monotonic() - start < lifetime:
                due = burst + (time.monotonic() - start) * byte_rate
                if sent >= due:
                    stop.wait(CHUNK_BYTES / byte_rate)
                    continue
                n = min(CHUNK_BYTES, len(data) - pos)
                try:
                    self.wfile.write(data[pos : pos + n])
                except OSError:
                    return  # the client went away
                sent += n
                pos = (pos + n) % len(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_address[1], flush=True)
    watchdog = threading.Timer(lifetime, stop.set)
    watchdog.daemon = True
    watchdog.start()
    sys.stdin.read()  # until the parent closes our stdin (or dies)
    stop.set()
    server.shutdown()


class StreamServer:
    """The :func:`serve` process as a context manager; ``.url(n)`` is feed n's address."""

    def __init__(self, path: Path) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.scale", "--serve", str(path)],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.isdigit():
            self.close()
            raise RuntimeError("the stream server did not start")
        self.port = int(line)

    def url(self, n: int) -> str:
        return f"http://127.0.0.1:{self.port}/feed/{n}"

    def close(self) -> None:
        stop_worker(self.proc, 10)

    def __enter__(self) -> StreamServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------- trials
@dataclass
class Trial:
    """One trial with ``feeds`` feeds."""

    feeds: int
    kept_up: bool
    why_not: str  # the failed conditions ("" when it kept up)
    seconds: float
    min_decoded: float  # the slowest feed's decoded audio / wall time over the interval
    lag_growth: float  # slope of the mean backlog (decoded - analysed audio) over the interval, s per s
    max_backlog_s: float  # the largest (decoded - analysed) audio at the end
    dropped_blocks: int
    streaming: int  # feeds connected and streaming at the end
    model_share: float  # model seconds / wall seconds
    windows: int
    model_calls: int
    cpu_share: float  # process CPU / wall (one core = 1)
    latency_p50_ms: float
    latency_p99_ms: float


def run_trial(model: Any, server: StreamServer, n: int, warmup_s: float, measure_s: float) -> Trial:
    """Run the monitor on ``n`` feeds; measure after ``warmup_s`` for ``measure_s`` seconds."""
    from streamgenre.monitor import FeedSpec, Monitor

    monitor = Monitor(model, [FeedSpec(f"feed{i}", server.url(i)) for i in range(n)])
    runner = threading.Thread(target=monitor.run, args=(warmup_s + measure_s + 30.0,), daemon=True)
    runner.start()
    try:
        time.sleep(warmup_s)
        d0 = [f.source.health().audio_seconds for f in monitor.feeds]  # decoded
        x0 = sum(f.source.overflows for f in monitor.feeds)
        m0, w0, c0 = monitor.model_seconds, monitor.windows_scored, monitor.model_calls
        cpu0, t0 = time.process_time(), time.monotonic()
        times, lags = [], []
        while time.monotonic() - t0 < measure_s:  # the mean backlog over feeds, sampled
            times.append(time.monotonic() - t0)
            lags.append(
                float(np.mean([f.source.health().audio_seconds - f.engine.audio_seconds for f in monitor.feeds]))
            )
            time.sleep(min(LAG_SAMPLE_S, max(0.0, measure_s - (time.monotonic() - t0))))
        wall = time.monotonic() - t0
        cpu = time.process_time() - cpu0
        a1 = [f.engine.audio_seconds for f in monitor.feeds]
        health = [f.source.health() for f in monitor.feeds]
        dropped = sum(f.source.overflows for f in monitor.feeds) - x0
        model_s, windows, calls = monitor.model_seconds - m0, monitor.windows_scored - w0, monitor.model_calls - c0
        e2e = [f.engine.snapshot().timings.get("end_to_end") for f in monitor.feeds]
    finally:
        monitor.stop()
        runner.join(timeout=30)
    d1 = [h.audio_seconds for h in health]
    decoded = min((b - a) / wall for a, b in zip(d0, d1, strict=True))
    lag1 = [d - a for d, a in zip(d1, a1, strict=True)]
    growth = float(np.polyfit(times, lags, 1)[0]) if len(times) >= 3 else math.inf
    backlog = max(lag1)
    streaming = sum(h.state == "streaming" for h in health)
    reasons = [
        text
        for failed, text in (
            (decoded < MIN_ANALYSED, f"a feed decoded only {100 * decoded:.0f} % of real time"),
            (growth > 1.0 - MIN_ANALYSED, f"the backlog grew by {100 * growth:.0f} % of real time"),
            (backlog > MAX_BACKLOG_S, f"a feed's backlog ended at {backlog:.1f} s > {MAX_BACKLOG_S:g} s"),
            (dropped > 0, f"{dropped} blocks dropped"),
            (streaming < n, f"only {streaming} of {n} feeds streaming"),
        )
        if failed
    ]
    p50 = [t.p50_ms for t in e2e if t is not None and t.count]
    p99 = [t.p99_ms for t in e2e if t is not None and t.count]
    return Trial(
        n,
        not reasons,
        "; ".join(reasons),
        wall,
        decoded,
        growth,
        backlog,
        dropped,
        streaming,
        model_s / wall,
        windows,
        calls,
        cpu / wall,
        float(np.median(p50)) if p50 else math.nan,
        float(max(p99)) if p99 else math.nan,
    )


def search(
    model: Any,
    server: StreamServer,
    start: int,
    limit: int,
    max_trials: int,
    warmup_s: float,
    measure_s: float,
    log: Any = print,
) -> list[Trial]:
    """Double N from ``start`` until a trial fails (or ``limit``), then bisect; at most ``max_trials``."""
    trials: list[Trial] = []
    good, bad = 0, None
    n = start
    while len(trials) < max_trials:
        trial = run_trial(model, server, n, warmup_s, measure_s)
        trials.append(trial)
        log(
            f"scale: {n} feeds: {'kept up' if trial.kept_up else 'fell behind'} "
            f"(slowest decoded {100 * trial.min_decoded:.0f} % of real time, lag growth "
            f"{100 * trial.lag_growth:.0f} %, backlog {trial.max_backlog_s:.1f} s, "
            f"dropped {trial.dropped_blocks}, model {100 * trial.model_share:.0f} % of wall)"
        )
        if trial.kept_up:
            good = max(good, n)
        else:
            bad = n if bad is None else min(bad, n)
        if bad is None:
            if n >= limit:
                break
            n = min(limit, 2 * n)
        else:
            if bad - good <= max(1, good // 8):  # close enough
                break
            n = (good + bad) // 2 if good else max(1, bad // 2)
    return trials


QUICK = {
    "start": TARGET_FEEDS,
    "limit": TARGET_FEEDS,
    "max_trials": 2,
    "warmup_s": 5.0,
    "measure_s": 8.0,
    "stream_s": 30.0,
}
FULL = {"start": 10, "limit": 160, "max_trials": 6, "warmup_s": 6.0, "measure_s": 20.0, "stream_s": 120.0}


def run(quick: bool, **overrides: Any) -> tuple[list[Row], dict[str, Any]]:
    """Encode the stream, serve it, search N; returns the rows and extra JSON fields.

    ``overrides`` replace the settings of :data:`QUICK` or :data:`FULL` (``start``, ``limit``,
    ``max_trials``, ``warmup_s``, ``measure_s``, ``stream_s``).
    """
    from streamgenre.model import load_model

    settings = (QUICK if quick else FULL) | {k: v for k, v in overrides.items() if v is not None}
    unknown = set(settings) - set(FULL)
    if unknown:
        raise ValueError(f"unknown scale settings {sorted(unknown)}")
    start, limit, max_trials = int(settings["start"]), int(settings["limit"]), int(settings["max_trials"])
    warmup_s, measure_s, stream_s = settings["warmup_s"], settings["measure_s"], settings["stream_s"]
    if not (
        1 <= start <= limit <= 1000
        and 1 <= max_trials <= 20
        and 0 < warmup_s <= 120
        and 1 <= measure_s <= 600
        and 2 <= stream_s <= 600
    ):
        raise ValueError(f"scale settings out of range: {settings}")
    model = load_model()  # as `streamgenre monitor`: auto provider, default threads
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        path = Path(tmp) / "stream.mp3"
        duration = encode_stream(path, stream_s)
        with StreamServer(path) as server:
            trials = search(
                model,
                server,
                start,
                limit,
                max_trials,
                warmup_s,
                measure_s,
                log=lambda msg: print(msg, file=sys.stderr, flush=True),
            )
    kept = [t for t in trials if t.kept_up]
    best = max((t.feeds for t in kept), default=0)
    failed = [t for t in trials if not t.kept_up]
    first_fail = min(failed, key=lambda t: t.feeds) if failed else None
    ref = next((t for t in trials if t.feeds == best), trials[-1])
    profile = (
        f"at {ref.feeds} feeds: model {100 * ref.model_share:.0f} % of wall "
        f"({ref.windows} windows in {ref.model_calls} calls, "
        f"{1e3 * ref.model_share * ref.seconds / max(1, ref.windows):.1f} ms per window), process CPU "
        f"{100 * ref.cpu_share:.0f} % of one core, estimate latency p50 {ref.latency_p50_ms:.0f} ms"
    )
    if first_fail is not None:
        profile += (
            f"; {first_fail.feeds} feeds fell behind: {first_fail.why_not} (model "
            f"{100 * first_fail.model_share:.0f} % of wall, backlog slope {100 * first_fail.lag_growth:+.0f} % "
            "of real time)"
        )
    elif not quick:
        profile += f"; the search stopped at its limit of {limit} feeds"
    tried = ", ".join(f"{t.feeds}{'✓' if t.kept_up else '✗'}" for t in trials)
    note = f"{model.provider}, model {model.threads} threads, hop 1.5 s (monitor default); tried {tried}; {profile}"
    if quick:
        note = f"--quick: {measure_s:g} s trials at {start} feeds (then {start // 2} if it fails) only; " + note
    rows = [
        Row(
            "radio feeds sustained in real time (monitor, local HTTP MP3)",
            float(best),
            "feeds",
            f">= {TARGET_FEEDS} (aim {AIM_FEEDS})",
            best >= TARGET_FEEDS,
            note=note,
        )
    ]
    if ref.windows:
        rows.append(
            Row(
                f"monitor model time per window at {ref.feeds} feeds",
                1e3 * ref.model_share * ref.seconds / ref.windows,
                "ms",
                note=f"batched: {ref.windows / max(1, ref.model_calls):.1f} windows per call on average",
            )
        )
    extra = {
        "trials": [asdict(t) for t in trials],
        "stream": f"{duration:.0f} s of GTZAN as {STREAM_BITRATE // 1000} kbit/s {STREAM_RATE} Hz stereo MP3, looped",
        "warmup_s": warmup_s,
        "measure_s": measure_s,
        "loadavg_1min_at_end": loadavg(),
        "gpu": "no CUDA device: CPU only",
    }
    return rows, extra


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short trials at 20 (and 10) feeds only")
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "scale.json")
    parser.add_argument("--start", type=int, default=None, help="feeds of the first trial (10; quick 20)")
    parser.add_argument("--limit", type=int, default=None, help="feeds at most (160; quick 20)")
    parser.add_argument("--max-trials", type=int, default=None, help="trials at most (6; quick 2)")
    parser.add_argument("--warmup", type=float, default=None, help="seconds before measuring (6; quick 5)")
    parser.add_argument("--measure", type=float, default=None, help="seconds measured per trial (20; quick 8)")
    parser.add_argument("--stream-seconds", type=float, default=None, help="audio in the served loop (120; quick 30)")
    parser.add_argument("--serve", type=Path, default=None, help=argparse.SUPPRESS)  # the stream server process
    args = parser.parse_args(argv)
    if args.serve is not None:
        serve(args.serve)
        return 0
    try:
        rows, extra = run(
            args.quick,
            start=args.start,
            limit=args.limit,
            max_trials=args.max_trials,
            warmup_s=args.warmup,
            measure_s=args.measure,
            stream_s=args.stream_seconds,
        )
    except ValueError as exc:
        parser.error(str(exc))
    report("radio feeds sustained in real time", rows, args.json, extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
