"""Evaluate any streamgenre ONNX model on a folder of labelled clips, the way training evaluates.

Usage::

    python -m training.evaluate MODEL --data DIR [--split {all,fault-filtered,random,grouped-kfold}]
        [--part {test,valid}] [--folds 2] [--seed 0] [--max-clips-per-class N] [--cache DIR] [--report DIR]

Features come from the live front end (decode, :func:`~streamgenre.features.compute_mel`) with the
model's own MelConfig; each clip's non-overlapping windows from its first frame (the windows
``streamgenre classify`` scores) go through the runtime, and the clip is decided by the mean window
probability. ``--split`` picks which clips are scored: ``all`` (default) and ``grouped-kfold``
score every clip, ``fault-filtered`` and ``random`` their test part (or ``--part valid``). The
report folder (default ``reports/eval_<MODEL>/``) gets the same files as a training run.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from training.cli import run_cli
from training.data import discover_dataset
from training.errors import TrainingError
from training.featcache import load_features
from training.metrics import ClipPrediction, score_predictions
from training.report import write_command, write_report
from training.scratch import eval_windows
from training.splits import SPLITS, make_split

__all__ = ["build_parser", "evaluate_model", "main"]

BATCH = 32


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``python -m training.evaluate``."""
    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="ONNX model with streamgenre metadata")
    parser.add_argument("--data", required=True, type=Path, help="data folder (GTZAN layouts or <label>/<files>)")
    parser.add_argument("--split", default="all", choices=("all", *SPLITS), help="which clips to score (default all)")
    parser.add_argument("--part", default="test", choices=("test", "valid"), help="hold-out part (default test)")
    parser.add_argument("--folds", type=int, default=2, help="folds of grouped-kfold (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random split (default 0)")
    parser.add_argument(
        "--max-clips-per-class", type=int, default=None, metavar="N", help="use only the first N clips of each class"
    )
    parser.add_argument(
        "--cache", type=Path, default=None, help="feature cache folder (default ~/.cache/streamgenre/features)"
    )
    parser.add_argument("--report", type=Path, default=None, help="report folder (default reports/eval_<MODEL>/)")
    parser.add_argument("--threads", type=int, default=2, help="inference threads (default 2)")
    return parser


def evaluate_model(args: argparse.Namespace, argv: Sequence[str] = ()) -> dict[str, Any]:
    """Score the model on the chosen clips, write the report, return the metrics."""
    from streamgenre.model import load_model

    if args.threads < 1:
        raise TrainingError(f"--threads must be at least 1, got {args.threads}")
    started = time.monotonic()
    model = load_model(args.model, provider="cpu", threads=args.threads)
    labels = tuple(model.labels)
    dataset = discover_dataset(args.data, args.max_clips_per_class)
    unknown = [label for label in dataset.labels if label not in labels]
    if unknown:
        raise TrainingError(
            f"the data's labels {unknown} are not among the model's genres {list(labels)}: "
            "evaluate on data with the labels the model was trained on"
        )
    features = load_features(dataset, model.mel_config, model.window_frames, args.cache)
    features.require_config(model.mel_config, f"the model {args.model.name}")
    usable = features.dataset
    fold_of = {i: "all" for i in range(len(usable))}
    if args.split in ("fault-filtered", "random", "grouped-kfold"):
        plan = make_split(usable, args.split, args.folds, args.seed)
        fold_of = {}
        for fold in plan.folds:
            part = fold.test if args.split == "grouped-kfold" or args.part == "test" else fold.valid
            fold_of.update({i: fold.name for i in part})
        if not fold_of:
            raise TrainingError(f"the {args.split} split has no {args.part} clips in {args.data}")
        description = f"{plan.description}; scored: {args.part if args.split != 'grouped-kfold' else 'every'} clips"
    else:
        description = f"all {len(usable)} usable clips of {args.data}"
    index = {label: i for i, label in enumerate(labels)}
    predictions = []
    for i in sorted(fold_of):
        windows = eval_windows(features.mels[i], model.window_frames)
        scores = np.concatenate([model.genre_scores(windows[b : b + BATCH]) for b in range(0, len(windows), BATCH)])
        clip = usable.clips[i]
        predictions.append(ClipPrediction(clip.clip_id, index[clip.label], scores, fold_of[i]))
    metrics = {
        "evaluation": description,
        "model": str(args.model),
        "model_name": model.name,
        **score_predictions(predictions, labels),
        "skipped": [{"path": p, "reason": r} for p, r in features.skipped],
        "recorded_in_model": model.contract.metrics,
        "seconds": round(time.monotonic() - started, 1),
    }
    report_dir = args.report or Path("reports") / f"eval_{args.model.stem}"
    write_command(report_dir, argv, args.seed, "training.evaluate")
    write_report(
        report_dir,
        f"evaluation of {args.model.name}: {description}",
        metrics,
        labels,
        predictions,
        notes=[f"{len(features.skipped)} clips skipped (unreadable, silent or shorter than one window)"],
    )
    metrics["report"] = str(report_dir)
    return metrics


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; user errors are one line on stderr and exit status 2."""

    def summary(args: argparse.Namespace, metrics: dict[str, Any]) -> str:
        return (f"{args.model}: track accuracy {metrics['track_accuracy']:.1%} on {metrics['clips']} clips "
                f"({metrics['evaluation']}); window accuracy {metrics['window_accuracy']:.1%}; "
                f"report in {metrics['report']}")

    return run_cli("training.evaluate", build_parser(), evaluate_model, summary, argv)


if __name__ == "__main__":
    sys.exit(main())
