"""Start-up: process start → first estimate, with a cold and a warm numba cache.

``python -m bench.startup [--quick] [--json PATH]``

Each measurement is a fresh subprocess ``python -m streamgenre file CLIP --no-ui --json`` timed
from just before it is spawned to the arrival of its first JSON line (the first, provisional,
estimate), then stopped. The numba cache lives in a fresh temporary ``NUMBA_CACHE_DIR``: the
first run there compiles every kernel (cold), later runs load them from disk (warm). The OS page
cache is warm in both cases (the same interpreter and packages were just used).

Two warm variants: as fast as the file decodes (pure start-up cost), and ``--realtime`` (the file
paced like a live input, so the first estimate also waits for ~0.9 s of audio, as ``streamgenre
live`` does). A small script run in the same warm cache splits the start-up into phases.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import REPO_ROOT, RESULTS_DIR, Row, gtzan_clips, loadavg, report

TARGET_WARM_S = 2.0
TIMEOUT_S = 180.0

_PHASES = r"""
import time, json, sys
t0 = time.perf_counter()
from streamgenre.engine import Engine, FileBlockSource
from streamgenre.model import load_model
t1 = time.perf_counter()
import onnx, onnxruntime  # imported inside load_model (onnx prunes a streaming model's graph)
t2 = time.perf_counter()
model = load_model(warmup=False)
t3 = time.perf_counter()
model.predict(__import__("numpy").zeros((1, model.window_frames, model.mel_config.n_mels), "float32"))
t4 = time.perf_counter()
engine = Engine(model, FileBlockSource(sys.argv[1], model.mel_config.sample_rate))
records = engine.subscribe(lossless=True)
engine.warmup()
t5 = time.perf_counter()
engine.start()
records.get(timeout=60)
t6 = time.perf_counter()
engine.stop()
print(json.dumps({"import streamgenre": t1 - t0, "import onnx + onnxruntime": t2 - t1, "load_model": t3 - t2,
                  "first window": t4 - t3, "engine warm-up": t5 - t4, "first estimate": t6 - t5}))
"""


def first_line_seconds(cmd: list[str], env: dict[str, str], timeout: float = TIMEOUT_S) -> tuple[float, str]:
    """Seconds from spawning ``cmd`` to its first stdout line, and that line; the process is then stopped.

    Raises
    ------
    RuntimeError
        The process ended or stayed silent for ``timeout`` seconds before printing a line.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO_ROOT)
    assert proc.stdout is not None and proc.stderr is not None
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout):
                raise RuntimeError(f"{' '.join(cmd[:4])}: no output within {timeout:g} s")
            line = proc.stdout.readline()  # the child flushes whole lines
        elapsed = time.perf_counter() - start
        if not line:
            err = proc.stderr.read().decode(errors="replace").strip().splitlines()
            raise RuntimeError(f"{' '.join(cmd[:4])} ended without output: {err[-1:] or proc.poll()}")
        return elapsed, line.decode(errors="replace")
    finally:
        proc.kill()
        proc.communicate(timeout=30)


def _env(cache_dir: str | None) -> dict[str, str]:
    env = dict(os.environ)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def _run_phases(clip: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _PHASES, str(clip)],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


def run(warm_repeats: int = 3, cold: bool = True, clip: Path | None = None) -> tuple[list[Row], dict[str, Any]]:
    """Cold (optional) and warm start-up times; returns the rows and extra JSON fields.

    Without ``cold`` the warm runs use the package's usual numba cache (filled by any earlier run)
    instead of compiling into a fresh one first.
    """
    clip = clip or gtzan_clips(1)[0]
    cmd = [sys.executable, "-m", "streamgenre", "file", str(clip), "--no-ui", "--json"]
    rows: list[Row] = []
    extra: dict[str, Any] = {"clip": str(clip), "command": " ".join(cmd[1:]), "loadavg_1min_at_start": loadavg()}
    with tempfile.TemporaryDirectory(prefix="bench-numba-") as cache_dir:
        env = _env(cache_dir if cold else None)
        if cold:
            cold_s, line = first_line_seconds(cmd, env)
            json.loads(line)  # a real estimate, not some other output
            rows.append(
                Row(
                    "start-up to first estimate, cold numba cache",
                    cold_s,
                    "s",
                    note="fresh empty NUMBA_CACHE_DIR: every kernel compiles",
                )
            )
        else:
            rows.append(
                Row(
                    "start-up to first estimate, cold numba cache",
                    None,
                    "s",
                    note="skipped in --quick (compiling takes ~20-30 s); the warm runs use the usual "
                    "cache, loaded (or on a new machine filled) by the phase script first",
                )
            )
        phases_first = not cold
        if phases_first:
            proc = _run_phases(clip, env)
        warm = [first_line_seconds(cmd, env)[0] for _ in range(warm_repeats)]
        live = [first_line_seconds([*cmd, "--realtime"], env)[0] for _ in range(warm_repeats)]
        if not phases_first:
            proc = _run_phases(clip, env)
    phases = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else {}
    warm_s, live_s = statistics.median(warm), statistics.median(live)
    breakdown = ", ".join(f"{k} {v:.2f} s" for k, v in phases.items()) or f"phase script failed: {proc.stderr[-200:]}"
    rows += [
        Row(
            "start-up to first estimate, warm numba cache",
            warm_s,
            "s",
            f"<= {TARGET_WARM_S:g} s",
            warm_s <= TARGET_WARM_S,
            note=f"median of {warm_repeats}; in-process phases: {breakdown}",
        ),
        Row(
            "start-up to first estimate, warm, --realtime (as live)",
            live_s,
            "s",
            f"<= {TARGET_WARM_S:g} s",
            live_s <= TARGET_WARM_S,
            note=f"median of {warm_repeats}; includes waiting for ~0.9 s of audio",
        ),
    ]
    extra |= {"warm_s": warm, "realtime_warm_s": live, "phases_s": phases, "loadavg_1min_at_end": loadavg()}
    return rows, extra


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="skip the cold run, 1 warm repeat")
    parser.add_argument("--repeats", type=int, default=None, help="warm repeats (default 3; quick 1)")
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "startup.json")
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)
    if not 1 <= repeats <= 20:
        parser.error("--repeats must be in [1, 20]")
    rows, extra = run(repeats, cold=not args.quick)
    report("start-up to first estimate", rows, args.json, extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
