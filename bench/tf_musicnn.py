"""Time the ORIGINAL musicnn TensorFlow model (comparator only; run in an interpreter that has TF).

Usage: ``python bench/tf_musicnn.py MUSICNN_PACKAGE_DIR [--threads N]`` prints one JSON object
with seconds per window at batch 1, 8 and 32. With ``--serve`` it loads the model once and then
answers requests on stdin (``BATCH CALLS`` per line, one JSON list of per-call seconds per line
back), so ``bench.model`` can interleave TensorFlow and ONNX rounds and both see the same machine
load. TensorFlow (with tf_keras for the legacy layers musicnn uses) is never a dependency of
streamgenre; ``bench.model --tf-python`` runs this script in another environment.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("musicnn_dir", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--serve", action="store_true", help="answer 'BATCH CALLS' requests on stdin")
    args = parser.parse_args()
    sys.path.insert(0, str(args.musicnn_dir.parent))
    import numpy as np
    import tensorflow as tf
    from musicnn import models

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.compat.v1.disable_eager_execution()
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 187, 96])
        is_training = tf.compat.v1.placeholder(tf.bool)
        logits, *_ = models.define_model(x, is_training, "MSD_musicnn", 50)
        tags = tf.nn.sigmoid(logits)
        session = tf.compat.v1.Session()
        tf.compat.v1.train.Saver().restore(session, str(args.musicnn_dir / "MSD_musicnn") + "/")
    rng = np.random.default_rng(0)
    if args.serve:
        print(json.dumps({"tensorflow": tf.__version__}), flush=True)
        for line in sys.stdin:
            batch, calls = (int(v) for v in line.split())
            feed = {x: rng.random((batch, 187, 96), dtype=np.float32) * 3, is_training: False}
            session.run(tags, feed)  # untimed: a new batch shape
            samples = []
            for _ in range(calls):
                start = time.perf_counter()
                session.run(tags, feed)
                samples.append(time.perf_counter() - start)
            print(json.dumps(samples), flush=True)
        return
    result = {"tensorflow": tf.__version__}
    for batch in (1, 8, 32):
        patches = rng.random((batch, 187, 96), dtype=np.float32) * 3
        feed = {x: patches, is_training: False}
        for _ in range(3):
            session.run(tags, feed)
        samples = []
        for _ in range(max(5, args.repeats // batch)):
            start = time.perf_counter()
            session.run(tags, feed)
            samples.append((time.perf_counter() - start) / batch)
        result[f"batch{batch}"] = float(np.median(samples))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
