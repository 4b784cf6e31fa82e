"""Per-window inference cost of the ONNX musicnn port (CPU, and CUDA when usable) vs the original.

``python -m bench.model [--model FILE] [--json PATH] [--tf-python PYTHON]``

The original TensorFlow model runs only when TensorFlow is importable here or in the interpreter
given by ``--tf-python`` (with tf_keras and the musicnn wheel's checkpoints); both run in the same
invocation, one after the other, on the same random windows' shapes.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from bench.common import RESULTS_DIR, Row, report, time_call
from streamgenre.model import cuda_device_count, load_model

BATCHES = (1, 8, 32)
TARGET_SPEEDUP = 3.0


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


def tensorflow_per_window(python: str, threads: int) -> dict[str, float] | None:
    """Run bench/tf_musicnn.py in ``python``; None when TF or musicnn is unavailable there."""
    spec = importlib.util.find_spec("musicnn")
    if spec is None or not spec.submodule_search_locations:
        return None
    script = Path(__file__).with_name("tf_musicnn.py")
    musicnn_dir = next(iter(spec.submodule_search_locations))
    proc = subprocess.run([python, str(script), musicnn_dir, "--threads", str(threads)], capture_output=True,
                          text=True, timeout=600)
    if proc.returncode != 0:
        print(f"TensorFlow comparator unavailable ({python}): {proc.stderr.strip().splitlines()[-1:]}",
              file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(Path(__file__).resolve().parents[1] / "models" / "msd_musicnn.onnx"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=64)
    parser.add_argument("--tf-python", default=sys.executable, help="interpreter with TensorFlow + tf_keras")
    parser.add_argument("--min-repeats", type=int, default=8, help="timed calls per batch size at least")
    parser.add_argument("--no-tf", action="store_true", help="skip the TensorFlow comparator (quick runs)")
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "model.json")
    args = parser.parse_args(argv)

    rows: list[Row] = []
    tf_times = None if args.no_tf else tensorflow_per_window(args.tf_python, args.threads)
    cpu = onnx_per_window(args.model, "cpu", args.threads, args.repeats, max(1, args.min_repeats))
    for batch, seconds in cpu.items():
        rows.append(Row(f"ONNX port, CPU, batch {batch}", seconds * 1e3, "ms/window"))
    if tf_times is not None:
        for batch in BATCHES:
            rows.append(Row(f"original TF {tf_times['tensorflow']}, CPU, batch {batch}",
                            tf_times[f"batch{batch}"] * 1e3, "ms/window"))
        speedup = tf_times["batch1"] / cpu[1]
        rows.append(Row("speed-up of the port vs TF, batch 1", speedup, "x", f">= {TARGET_SPEEDUP:g}x",
                        speedup >= TARGET_SPEEDUP))
        rows.append(Row("speed-up of the port vs TF, batch 32", tf_times["batch32"] / cpu[32], "x"))
    else:
        why = "skipped (--no-tf)" if args.no_tf else "TensorFlow not importable: row skipped"
        rows.append(Row("original TF", None, "ms/window", note=why))
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
