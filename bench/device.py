"""``streamgenre live`` itself on a real audio device: CPU share of the whole process, latency, overflows.

``python -m bench.device [--seconds 60] [--warm 8] [--json PATH]``

Real music (GTZAN clips at 48 kHz stereo) is played with ``paplay`` into a PulseAudio null sink (see
:mod:`bench.pulse`) while the real command captures the sink's monitor through PortAudio and ALSA's
``pulse`` plugin, twice:

* ``streamgenre live --device default`` in an 80×24 pseudo-terminal, so the dashboard is drawn as in a
  terminal (the output is read and thrown away);
* ``streamgenre live --device default --no-ui --json``, whose records give the end-to-end latency of
  every estimate and the overflow counters.

CPU share = CPU time (user + system) of every thread of the ``streamgenre`` process / wall time,
from ``--warm`` seconds after the start (warm-up done, the stream running) to ``--seconds`` later:
PortAudio's callback thread, the engine's worker and the dashboard or printer are all in it; the
PulseAudio server's own CPU is reported apart when the benchmark started it.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import fcntl
import json
import math
import os
import pty
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import RESULTS_DIR, Row, loadavg, report, stat_cpu_seconds
from bench.e2e import load_replay_audio
from bench.pulse import PulseUnavailableError, alive, cli, default_sigint, null_sink

SINK = "streamgenre_bench_sink"
TARGET_CPU_SHARE = 0.05
STOP_TIMEOUT_S = 30.0
TARGET_P99_MS = 10.0
RATE = 48000


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of every thread of process ``pid`` so far (Linux ``/proc``)."""
    return stat_cpu_seconds(Path(f"/proc/{pid}/stat"))


def write_music(path: Path, seconds: float) -> str:
    """At least ``seconds`` of GTZAN clips, genre-interleaved (the replay's music), as a 48 kHz stereo 16-bit
    WAV; what it holds."""
    import soundfile

    audio, source = load_replay_audio(seconds, RATE)
    soundfile.write(path, np.stack([audio, audio], axis=1), RATE, subtype="PCM_16")
    return f"{source}, stereo"


def _drain(fd: int) -> None:
    """Read a pseudo-terminal until it closes (the dashboard's output is not kept)."""
    with contextlib.suppress(OSError):
        while os.read(fd, 65536):
            pass


def measure(cmd: list[str], env: dict[str, str], warm: float, seconds: float, terminal: bool,
            daemon: int | None) -> dict[str, Any]:
    """Run ``cmd`` (in an 80×24 pseudo-terminal when ``terminal``); its CPU share over the measured span."""
    lines: list[str] = []
    errors: collections.deque[str] = collections.deque(maxlen=200)  # stderr, read as it comes (a full pipe blocks)
    if terminal:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        proc = subprocess.Popen(cmd, env=env | {"TERM": "xterm-256color", "COLORTERM": "truecolor"},
                                stdin=slave, stdout=slave, stderr=subprocess.PIPE, text=True, start_new_session=True,
                                preexec_fn=default_sigint)
        os.close(slave)
        reader = threading.Thread(target=_drain, args=(master,), daemon=True)
    else:
        master = -1
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=default_sigint)
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
    reader.start()
    err_reader = threading.Thread(target=lambda: errors.extend(proc.stderr or []), daemon=True)
    err_reader.start()
    try:
        time.sleep(warm)
        if proc.poll() is not None:
            err_reader.join(timeout=5)
            raise RuntimeError(f"{' '.join(cmd[2:])} ended early: {''.join(errors)[-300:]}")
        cpu0, wall0 = process_cpu_seconds(proc.pid), time.monotonic()
        server0 = process_cpu_seconds(daemon) if daemon is not None and alive(daemon) else None
        time.sleep(seconds)
        cpu1, wall1 = process_cpu_seconds(proc.pid), time.monotonic()
        server1 = process_cpu_seconds(daemon) if server0 is not None and alive(daemon) else None
        proc.send_signal(signal.SIGINT)  # Ctrl-C: the normal way to end `live`
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{' '.join(cmd[2:])} did not exit within {STOP_TIMEOUT_S:g} s of Ctrl-C: "
                               f"{''.join(errors)[-300:]}") from None
        err_reader.join(timeout=5)
        stderr = "".join(errors)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        if terminal:
            os.close(master)
        reader.join(timeout=5)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[2:])} exited {proc.returncode}: {stderr.strip()[-300:]}")
    wall = wall1 - wall0
    return {"cpu_share": (cpu1 - cpu0) / wall, "wall_s": wall, "summary": stderr.strip().splitlines()[-1:],
            "server_share": None if server1 is None else (server1 - server0) / wall,
            "records": [json.loads(line) for line in lines if line.startswith("{")]}


def run(seconds: float, warm: float) -> tuple[list[Row], dict[str, Any]]:
    """Both runs against one null sink, with music playing throughout."""
    with tempfile.TemporaryDirectory(prefix="streamgenre-bench-") as tmp:
        music = Path(tmp) / "music.wav"
        source = write_music(music, 2 * (warm + seconds) + 20)
        with null_sink(SINK) as (env, daemon):
            player = subprocess.Popen(["paplay", f"--device={SINK}", str(music)], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                ui = measure(cli("live", "--device", "default"), env, warm, seconds, True, daemon)
                plain = measure(cli("live", "--device", "default", "--no-ui", "--json"), env, warm, seconds,
                                False, daemon)
            finally:
                player.terminate()
                player.wait(timeout=5)
    records = [r for r in plain["records"] if not r.get("provisional")]
    latency = np.array([r["latency_ms"] for r in records if r.get("latency_ms") is not None], float)
    last = plain["records"][-1] if plain["records"] else {}
    overflows = int(last.get("overflows", -1)) + int(last.get("input_overflows", 0))
    server = ui["server_share"]
    note = (f"{seconds:g} s measured from {warm:g} s after the start; PortAudio (ALSA pulse plugin) -> "
            f"PulseAudio null sink, {source}")
    p99 = float(np.percentile(latency, 99)) if latency.size else math.nan
    rows = [
        Row("CPU share of one core, `streamgenre live` on a real device (dashboard, 80x24 terminal)",
            100 * ui["cpu_share"], "%", f"<= {100 * TARGET_CPU_SHARE:g} %", ui["cpu_share"] <= TARGET_CPU_SHARE,
            note=note + ("" if server is None else f"; the PulseAudio server used {100 * server:.2f} % besides")),
        Row("CPU share of one core, `streamgenre live --no-ui --json` on a real device", 100 * plain["cpu_share"], "%",
            note=note),
        Row("e2e latency on a real device, p50", float(np.percentile(latency, 50)) if latency.size else math.nan, "ms",
            note=f"{latency.size} estimates of full windows (`latency_ms` of the --json records)"),
        Row("e2e latency on a real device, p99", p99, "ms", f"<= {TARGET_P99_MS:g} ms", p99 <= TARGET_P99_MS),
        Row("overflows on a real device", float(overflows), "frames", "== 0", overflows == 0,
            note="ring overflows + PortAudio input overflows at the end of the --no-ui run"),
    ]
    extra = {"source": source, "ui": {k: v for k, v in ui.items() if k != "records"},
             "no_ui": {k: v for k, v in plain.items() if k != "records"}, "latency_ms": latency.round(3).tolist()}
    return rows, extra


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="measured span of each run (default 60)")
    parser.add_argument("--warm", type=float, default=8.0, help="seconds from the start before measuring (default 8)")
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "device.json")
    args = parser.parse_args(argv)
    if not 1 <= args.seconds <= 3600 or not 2 <= args.warm <= 120:
        parser.error("--seconds must be in [1, 3600] and --warm in [2, 120]")
    extra: dict[str, Any] = {"loadavg_1min_at_start": loadavg()}
    try:
        rows, more = run(args.seconds, args.warm)
        extra |= more
    except PulseUnavailableError as exc:
        rows = [Row("CPU share of one core, `streamgenre live` on a real device (dashboard, 80x24 terminal)", None,
                    "%", note=f"skipped: {exc}")]
    report("`streamgenre live` on a real device", rows, args.json, extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
