"""Offline throughput of ``classify`` (× real time) on this machine's cores.

``python -m bench.throughput [--quick] [--clips N] [--json PATH]``

Runs :func:`streamgenre.classify.classify_file` over the GTZAN clips of ``../shared/data``
(decode → StreamingMel → non-overlapping windows → ONNX in batches of 16), the way
``streamgenre classify`` does: one process, the model on every core (intra-op threads = cores).
A second run splits the files between one process per core, each with a one-thread model, which
is how a batch job would use the machine. Model time is measured inside the first run by timing
every model call; decode time separately over the same files.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import RESULTS_DIR, Row, gtzan_clips, loadavg, report
from streamgenre.classify import classify_file
from streamgenre.model import GenreModel, load_model
from streamgenre.sources import decode_file

TARGET_X_REALTIME = 300.0


class _TimedModel:
    """Delegates to a :class:`GenreModel`, adding up the seconds spent in its inference calls."""

    def __init__(self, model: GenreModel) -> None:
        self._model = model
        self.seconds = 0.0
        self.windows = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def predict(self, windows: Any, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return self._model.predict(windows, *args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - t0
            self.windows += len(windows)

    def predict_stream(self, windows: Any, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return self._model.predict_stream(windows, *args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - t0
            self.windows += len(windows)


def classify_all(files: list[Path], model: Any) -> tuple[float, float]:
    """Classify ``files``; returns (audio seconds, wall seconds)."""
    audio = 0.0
    t0 = time.perf_counter()
    for path in files:
        audio += classify_file(path, model).duration
    return audio, time.perf_counter() - t0


def _worker(files: list[str], barrier: Any, out: Any) -> None:
    model = load_model(provider="cpu", threads=1)
    classify_file(files[0], model)  # warm (numba, onnxruntime) before the clock starts
    barrier.wait(timeout=300)
    start = time.monotonic()
    audio = sum(classify_file(path, model).duration for path in files)
    out.put((start, time.monotonic(), audio))


def classify_parallel(files: list[Path], processes: int) -> tuple[float, float]:
    """Files split round-robin over ``processes`` spawned workers (1 thread each); (audio s, wall s)."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(processes)
    out = ctx.Queue()
    shares = [[str(p) for p in files[i::processes]] for i in range(processes)]
    procs = [ctx.Process(target=_worker, args=(share, barrier, out), daemon=True) for share in shares if share]
    for p in procs:
        p.start()
    try:
        results = [out.get(timeout=1800) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    start = min(r[0] for r in results)
    end = max(r[1] for r in results)
    return sum(r[2] for r in results), end - start


def run(n_clips: int | None, parallel: bool = True) -> tuple[list[Row], dict[str, Any]]:
    """Measure; returns the rows and extra JSON fields."""
    files = gtzan_clips(n_clips)
    cores = os.cpu_count() or 1
    model = load_model(provider="cpu")  # as `streamgenre classify`: threads = cores (max 4)
    timed = _TimedModel(model)
    classify_file(files[0], timed)  # warm-up
    timed.seconds, timed.windows = 0.0, 0
    audio, wall = classify_all(files, timed)
    t0 = time.perf_counter()
    for path in files:
        decode_file(path, model.mel_config.sample_rate)
    decode = time.perf_counter() - t0
    speed = audio / wall
    other = max(0.0, wall - timed.seconds - decode)
    profile = (
        f"of {wall:.1f} s: model {timed.seconds:.1f} s ({timed.windows} windows, "
        f"{1e3 * timed.seconds / max(1, timed.windows):.1f} ms each), decode+resample {decode:.1f} s, "
        f"mel+windows+rest {other:.1f} s; {TARGET_X_REALTIME:g}x allows "
        f"{3e3 / TARGET_X_REALTIME:.0f} ms per 3 s of audio for everything"
    )
    rows = [
        Row(
            "offline classify, 1 process",
            speed,
            "x real time",
            f">= {TARGET_X_REALTIME:g}x",
            speed >= TARGET_X_REALTIME,
            note=f"{len(files)} of {len(gtzan_clips())} GTZAN clips, {audio:.0f} s of "
            f"audio, model "
            f"{model.threads} threads; {profile}",
        ),
    ]
    extra: dict[str, Any] = {
        "clips": len(files),
        "audio_s": audio,
        "wall_s": wall,
        "model_s": timed.seconds,
        "windows": timed.windows,
        "decode_s": decode,
        "loadavg_1min_at_start": loadavg(),
    }
    if not parallel:
        rows.append(
            Row(
                f"offline classify, {cores} processes x 1 thread",
                None,
                "x real time",
                note="skipped (--quick / --no-parallel)",
            )
        )
    elif cores > 1:
        p_audio, p_wall = classify_parallel(files, cores)
        p_speed = p_audio / p_wall
        rows.append(
            Row(
                f"offline classify, {cores} processes x 1 thread",
                p_speed,
                "x real time",
                f">= {TARGET_X_REALTIME:g}x",
                p_speed >= TARGET_X_REALTIME,
                note=f"files split over {cores} processes; ratio to 1 process {p_speed / speed:.2f}",
            )
        )
        extra |= {"parallel_wall_s": p_wall, "parallel_audio_s": p_audio}
    extra["loadavg_1min_at_end"] = loadavg()
    return rows, extra


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="8 clips instead of all 100, no parallel run")
    parser.add_argument("--clips", type=int, default=None, help="number of clips (default all; quick 8)")
    parser.add_argument("--no-parallel", action="store_true", help="skip the one-process-per-core run")
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "throughput.json")
    args = parser.parse_args(argv)
    clips = args.clips or (8 if args.quick else None)
    if clips is not None and not 1 <= clips <= 1000:
        parser.error("--clips must be in [1, 1000]")
    rows, extra = run(clips, parallel=not (args.no_parallel or args.quick))
    report("offline classify throughput", rows, args.json, extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
