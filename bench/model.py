"""Per-window inference cost of the ONNX musicnn port (CPU, and CUDA when usable) vs the original.

``python -m bench.model [--model FILE] [--json PATH] [--tf-python PYTHON]``

The original TensorFlow model runs only when TensorFlow is importable here or in the interpreter
given by ``--tf-python`` (with tf_keras and the musicnn wheel's checkpoints). It is loaded once in
a worker process, and the batch-1 comparison alternates short rounds of the two (ONNX, TF, ONNX,
TF, ...) so both see the same machine load: the speed-up is the ratio of the medians over all
rounds, and the note gives the range of the per-round ratios.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import RESULTS_DIR, Row, report, stop_worker, time_call
from streamgenre.model import cuda_device_count, load_model

BATCHES = (1, 8, 32)
TARGET_SPEEDUP = 3.0
SETTLE_S = 0.5  # pause after the port's side of an interleaved round
TF_SETTLE_S = 3.0  # ... and after TensorFlow's: its pool threads keep busy for seconds after a run
# (measured here: the port takes 39 ms right after TF ran, 30 ms 0.5 s later, 27 ms 3.5 s later)


def onnx_per_window(model_path: str | None, provider: str, threads: int, repeats: int,
                    min_repeats: int = 8) -> dict[int, float]:
    """Median seconds per window at each batch size (``max(min_repeats, repeats // batch)`` calls each)."""
    model = load_model(model_path, provider=provider, threads=threads)
    rng = np.random.default_rng(0)
    out = {}
    for batch in BATCHES:
        windows = rng.random((batch, model.window_frames, model.mel_config.n_mels), dtype=np.float32) * 3
        samples = time_call(lambda w=windows: model.predict(w), max(min_repeats, repeats // batch))
        out[batch] = float(np.median(samples)) / batch
    return out


class TensorFlowWorker:
    """The original MSD_musicnn in a TensorFlow interpreter (bench/tf_musicnn.py --serve), loaded once."""

    def __init__(self, python: str, threads: int) -> None:
        spec = importlib.util.find_spec("musicnn")
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError("the musicnn package (its checkpoints) is not installed here")
        script = Path(__file__).with_name("tf_musicnn.py")
        musicnn_dir = next(iter(spec.submodule_search_locations))
        self._proc = subprocess.Popen([python, str(script), musicnn_dir, "--threads", str(threads), "--serve"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        hello = self._proc.stdout.readline()
        if not hello:
            err = self._proc.stderr.read().strip().splitlines()[-1:] if self._proc.stderr else []
            self.close()
            raise RuntimeError(f"TensorFlow comparator unavailable ({python}): {err}")
        self.version = json.loads(hello)["tensorflow"]

    def time_calls(self, batch: int, calls: int) -> np.ndarray:
        """Seconds of each of ``calls`` timed runs at ``batch`` windows."""
        self._proc.stdin.write(f"{batch} {calls}\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the TensorFlow worker ended unexpectedly")
        return np.asarray(json.loads(line))

    def close(self) -> None:
        """Stop the worker (bounded wait)."""
        stop_worker(self._proc, 30)


def interleaved_batch1(model: Any, worker: TensorFlowWorker, rounds: int, calls: int) -> dict[str, Any]:
    """Alternate rounds of ``calls`` batch-1 windows through the port and through TensorFlow."""
    windows = np.random.default_rng(1).random((1, model.window_frames, model.mel_config.n_mels), np.float32) * 3
    onnx_s, tf_s, ratios = [], [], []
    worker.time_calls(1, 3)  # warm both before the first round
    time_call(lambda: model.predict(windows), 1)
    for _ in range(rounds):
        ours = time_call(lambda: model.predict(windows), calls, warmup=1)
        time.sleep(SETTLE_S)
        theirs = worker.time_calls(1, calls)
        time.sleep(TF_SETTLE_S)
        onnx_s.append(ours)
        tf_s.append(theirs)
        ratios.append(float(np.median(theirs) / np.median(ours)))
    onnx_all, tf_all = np.concatenate(onnx_s), np.concatenate(tf_s)
    return {"onnx": float(np.median(onnx_all)), "tf": float(np.median(tf_all)),
            "speedup": float(np.median(tf_all) / np.median(onnx_all)), "round_ratios": ratios}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(Path(__file__).resolve().parents[1] / "models" / "msd_musicnn.onnx"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=64)
    parser.add_argument("--tf-python", default=sys.executable, help="interpreter with TensorFlow + tf_keras")
    parser.add_argument("--min-repeats", type=int, default=8, help="timed calls per batch size at least")
    parser.add_argument("--no-tf", action="store_true", help="skip the TensorFlow comparator (quick runs)")
    parser.add_argument("--rounds", type=int, default=12, help="alternating ONNX/TF rounds at batch 1")
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "model.json")
    args = parser.parse_args(argv)

    rows: list[Row] = []
    worker, why = None, "skipped (--no-tf)"
    if not args.no_tf:
        try:
            worker = TensorFlowWorker(args.tf_python, args.threads)
        except RuntimeError as exc:
            why = f"{exc}: rows skipped"
            print(why, file=sys.stderr)
    try:
        cpu = onnx_per_window(args.model, "cpu", args.threads, args.repeats, max(1, args.min_repeats))
        for batch, seconds in cpu.items():
            rows.append(Row(f"ONNX port, CPU, batch {batch}", seconds * 1e3, "ms/window"))
        if worker is None:
            rows.append(Row("original TF", None, "ms/window", note=why))
        else:
            for batch in BATCHES:
                calls = max(max(1, args.min_repeats), args.repeats // batch)
                tf_batch = float(np.median(worker.time_calls(batch, calls))) / batch
                rows.append(Row(f"original TF {worker.version}, CPU, batch {batch}", tf_batch * 1e3, "ms/window"))
                if batch == 32:
                    rows.append(Row("speed-up of the port vs TF, batch 32", tf_batch / cpu[32], "x"))
            model = load_model(args.model, provider="cpu", threads=args.threads)
            side = interleaved_batch1(model, worker, max(1, args.rounds), 8)
            ratios = side["round_ratios"]
            rows.append(Row(
                "speed-up of the port vs TF, batch 1, interleaved", side["speedup"], "x", f">= {TARGET_SPEEDUP:g}x",
                side["speedup"] >= TARGET_SPEEDUP,
                note=f"{len(ratios)} alternating rounds of 8 windows each: port {side['onnx'] * 1e3:.1f} ms vs TF "
                f"{side['tf'] * 1e3:.1f} ms per window (medians of all rounds); per-round ratios "
                f"{min(ratios):.2f}-{max(ratios):.2f}x",
            ))
    finally:
        if worker is not None:
            worker.close()
    if cuda_device_count() > 0:
        try:
            gpu = onnx_per_window(args.model, "cuda", args.threads, args.repeats * 4)
            rows += [Row(f"ONNX port, CUDA, batch {b}", s * 1e3, "ms/window") for b, s in gpu.items()]
        except Exception as exc:
            rows.append(Row("ONNX port, CUDA", None, "ms/window", note=f"CUDA failed: {exc}"))
    else:
        rows.append(Row("ONNX port, CUDA", None, "ms/window", note="no CUDA device on this machine"))
    report(f"model inference ({Path(args.model).name}, {args.threads} threads)", rows, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
