"""Train a genre model on a folder of labelled clips and export it as ONNX with its model contract.

Usage::

    python -m training.train --data DIR --arch {seed,cnn,musicnn-head} \\
        --split {fault-filtered,random,grouped-kfold} --out models/NAME.onnx [--folds 2] [--epochs N] \\
        [--seed 0] [--max-clips-per-class N] [--cache DIR] [--report DIR] [--resume]

Every fold is trained and tested by clip; the report folder (default ``reports/<NAME>/``) gets the
track- and window-level accuracy, per-class precision/recall/F1, the confusion matrix (PNG and
table), learning curves and the exact command. With k-fold the exported model is refit on every
clip after cross-validation (its metadata carries the cross-validated scores); with a hold-out split
it is the model trained on the training part (selected on the validation part when there is one).
Fine-tuning on your own labels is the same command on a ``<label>/<files>`` folder.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from streamgenre.contract import ModelContract
from training.cli import run_cli
from training.data import Dataset, discover_dataset
from training.errors import TrainingError
from training.featcache import FeatureSet, load_features
from training.fit import RunContext
from training.metrics import ClipPrediction, score_predictions
from training.report import write_command, write_report
from training.splits import SPLITS, SplitPlan, check_trainable, make_split

__all__ = ["ARCHS", "GTZAN_GENRES", "build_parser", "main", "run"]

ARCHS = ("seed", "cnn", "musicnn-head")
GTZAN_GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``python -m training.train``."""
    parser = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="data folder (GTZAN layouts or <label>/<files>)")
    parser.add_argument("--arch", required=True, choices=ARCHS, help="architecture")
    parser.add_argument("--split", default="grouped-kfold", choices=SPLITS, help="split (default grouped-kfold)")
    parser.add_argument("--out", required=True, type=Path, help="ONNX file to write (e.g. models/NAME.onnx)")
    parser.add_argument("--folds", type=int, default=2, help="folds of grouped-kfold (default 2)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default: per architecture)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--max-clips-per-class",
        type=int,
        default=None,
        metavar="N",
        help="use only the first N clips of each class (quick runs)",
    )
    parser.add_argument(
        "--cache", type=Path, default=None, help="feature cache folder (default ~/.cache/streamgenre/features)"
    )
    parser.add_argument("--report", type=Path, default=None, help="report folder (default reports/<NAME>/)")
    parser.add_argument("--resume", action="store_true", help="continue from the report folder's checkpoints")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    parser.add_argument("--mixup", type=float, default=None, metavar="ALPHA", help="cnn: mixup alpha (0: off)")
    parser.add_argument(
        "--backbone",
        type=Path,
        default=None,
        help="musicnn-head: converted musicnn ONNX model (default models/msd_musicnn.onnx)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def make_trainer(args: argparse.Namespace) -> Any:
    """The trainer of ``args.arch`` with its settings."""
    import dataclasses

    if args.arch == "musicnn-head":
        from training.musicnn_head import HeadSettings, HeadTrainer

        settings = HeadSettings()
        if args.epochs is not None:
            settings = dataclasses.replace(settings, epochs=args.epochs)
        return HeadTrainer(settings, args.backbone, args.cache, threads=args.threads)
    from training.scratch import ScratchSettings, ScratchTrainer

    settings = ScratchSettings.for_arch(args.arch)
    if args.epochs is not None:
        settings = dataclasses.replace(settings, epochs=args.epochs)
    if args.mixup is not None:
        if args.arch != "cnn" or args.mixup < 0:
            raise TrainingError("--mixup takes a non-negative alpha and applies to --arch cnn only")
        settings = dataclasses.replace(settings, mixup=args.mixup)
    return ScratchTrainer(args.arch, settings)


def _check_args(args: argparse.Namespace) -> None:
    if args.out.suffix != ".onnx":
        raise TrainingError(f"--out must name an .onnx file, got {args.out}")
    if args.out.is_dir():
        raise TrainingError(f"--out {args.out} is a folder; name an .onnx file")
    if args.epochs is not None and args.epochs < 1:
        raise TrainingError(f"--epochs must be at least 1, got {args.epochs}")
    if args.threads < 1:
        raise TrainingError(f"--threads must be at least 1, got {args.threads}")


def _progress(quiet: bool) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description:>12}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
        console=Console(stderr=True),
        disable=quiet,
    )


def _is_gtzan(dataset: Dataset) -> bool:
    return dataset.labels == GTZAN_GENRES and all(c.number is not None for c in dataset.clips)


def _provenance(
    args: argparse.Namespace, trainer: Any, features: FeatureSet, plan: SplitPlan, final_clips: int, module: Any
) -> dict[str, Any]:
    dataset = features.dataset
    gtzan = _is_gtzan(dataset)
    data = "GTZAN clips (Tzanetakis & Cook 2002)" if gtzan else f"the labelled folder {dataset.root.name!r}"
    training_data = (
        f"{data}: {len(dataset)} usable clips, {len(dataset.labels)} classes; evaluated with "
        f"{plan.description}; the exported model was trained on {final_clips} clips"
    )
    whose = "GTZAN clips" if gtzan else "user data"
    if args.arch == "musicnn-head":
        backbone = trainer.model.contract
        source = (
            f"head trained by streamgenre (training/musicnn_head.py: {trainer.settings.members} MLPs on the "
            f"200-d embedding) on the frozen {backbone.name} backbone ({backbone.provenance.get('source', '')})"
        )
        license_ = f"ISC (musicnn backbone); head trained by streamgenre on {whose} — see models/README.md"
    else:
        source = f"trained from scratch by streamgenre (training/scratch.py, --arch {args.arch})"
        license_ = f"weights trained by streamgenre on {whose} — see models/README.md"
    parameters = int(sum(p.numel() for p in module.parameters()))
    return {
        "source": source,
        "license": license_,
        "training_data": training_data,
        "arch": args.arch,
        "trained_parameters": parameters,
        "settings": trainer.describe(),
    }


def _contract(
    args: argparse.Namespace, trainer: Any, labels: tuple[str, ...], provenance: dict[str, Any], metrics: dict[str, Any]
) -> ModelContract:
    parts = trainer.contract_parts(labels)
    return ModelContract(
        name=args.out.stem,
        input_name="mel",
        window_frames=trainer.window_frames,
        mel_config=trainer.mel_config,
        outputs=parts["outputs"],
        genre_output="genre",
        genre_labels=labels,
        provenance=provenance,
        metrics=metrics,
        tag_output=parts["tag_output"],
        streaming=parts["streaming"],
    )


def _verify_export(path: Path, trainer: Any, features: FeatureSet, module: Any, threads: int) -> dict[str, Any]:
    """Load the exported model with the runtime and compare it with the trained module on one clip."""
    from streamgenre.model import load_model
    from training.scratch import eval_windows

    model = load_model(path, provider="cpu", threads=threads)
    windows = eval_windows(features.mels[0], model.window_frames)
    scores = model.genre_scores(windows)
    expected = trainer.predict(module, [0])[0]
    if scores.shape != expected.shape:
        raise TrainingError(f"{path}: exported model predicts shape {scores.shape}, expected {expected.shape}")
    error = float(np.abs(scores - expected).max())
    if error > 1e-3:
        raise TrainingError(f"{path}: exported model disagrees with the trained one (max error {error:.1e})")
    return {"runtime_max_abs_error": error, "outputs": model.output_names}


def _summary(metrics: dict[str, Any]) -> dict[str, Any]:
    keys = ("evaluation", "clips", "track_accuracy", "track_accuracy_vote", "window_accuracy", "macro_f1")
    summary = {k: metrics[k] for k in keys if k in metrics}
    summary["folds"] = [
        {k: f[k] for k in ("name", "clips", "track_accuracy", "window_accuracy")} for f in metrics.get("folds", [])
    ]
    summary["per_class_f1"] = {label: v["f1"] for label, v in metrics["per_class"].items()}
    return summary


def _cross_validate(trainer: Any, features: FeatureSet, plan: SplitPlan, seed: int, ctx: RunContext) -> tuple:
    """Train and test every fold; return (test predictions, fold metrics, valid metrics, histories, last fit)."""
    labels = features.dataset.labels
    truth = features.dataset.label_indices()
    clips = features.dataset.clips

    def predictions(module: Any, indices: tuple[int, ...], fold: str) -> list[ClipPrediction]:
        probs = trainer.predict(module, list(indices))
        return [ClipPrediction(clips[i].clip_id, truth[i], p, fold) for i, p in zip(indices, probs, strict=True)]

    tested: list[ClipPrediction] = []
    fold_metrics, valid_metrics, histories = [], [], {}
    result = None
    for k, fold in enumerate(plan.folds):
        select = bool(fold.valid)
        monitor = list(fold.valid or fold.test)
        result = trainer.fit(fold.name, list(fold.train), monitor, select, seed + k, ctx, "valid" if select else "test")
        histories[fold.name] = result.history
        fold_predictions = predictions(result.module, fold.test, fold.name)
        scored = score_predictions(fold_predictions, labels)
        kept = {key: scored[key] for key in ("clips", "track_accuracy", "window_accuracy")}
        fold_metrics.append(
            {"name": fold.name, "train_clips": len(fold.train), "best_epoch": result.best_epoch, **kept}
        )
        if fold.valid:
            valid_metrics.append(
                {"name": fold.name, **score_predictions(predictions(result.module, fold.valid, fold.name), labels)}
            )
        tested += fold_predictions
        if ctx.progress is not None:
            ctx.progress.console.print(
                f"{fold.name}: track accuracy {scored['track_accuracy']:.1%} on {scored['clips']} clips "
                f"(window {scored['window_accuracy']:.1%})",
                markup=False,
                highlight=False,
            )
    return tested, fold_metrics, valid_metrics, histories, result


def run(args: argparse.Namespace, argv: Sequence[str]) -> dict[str, Any]:
    """Train, evaluate, export and report; return the metrics."""
    import torch

    _check_args(args)
    torch.set_num_threads(args.threads)
    started = time.monotonic()
    report_dir = args.report or Path("reports") / args.out.stem
    ctx = RunContext(report_dir / "checkpoints", args.resume, None)
    dataset = discover_dataset(args.data, args.max_clips_per_class)
    trainer = make_trainer(args)
    with _progress(args.quiet) as progress:
        ctx.progress = progress
        console = progress.console
        task = progress.add_task("features", total=len(dataset), status=f"{len(dataset)} clips")
        features = load_features(
            dataset,
            trainer.mel_config,
            trainer.window_frames,
            args.cache,
            lambda i, clip: progress.update(task, completed=i + 1, status=clip.clip_id),
        )
        for path, reason in features.skipped:
            console.print(f"skipped {path}: {reason}", markup=False, highlight=False)
        plan = make_split(features.dataset, args.split, args.folds, args.seed)
        check_trainable(plan, features.dataset)
        console.print(f"{plan.description}; {len(plan.excluded)} clips excluded", markup=False, highlight=False)
        trainer.prepare(features, ctx)
        feature_seconds = time.monotonic() - started
        predictions, fold_metrics, valid_metrics, histories, result = _cross_validate(
            trainer, features, plan, args.seed, ctx
        )
        cv_seconds = time.monotonic() - started - feature_seconds
        final_clips = len(features.dataset) if plan.cross_validated else len(plan.folds[0].train)
        if plan.cross_validated:
            result = trainer.fit(
                "final", list(range(len(features.dataset))), [], False, args.seed + len(plan.folds), ctx
            )
            histories["final"] = result.history
    labels = features.dataset.labels
    metrics = {
        "evaluation": plan.description,
        **score_predictions(predictions, labels),
        "folds": fold_metrics,
        "arch": args.arch,
        "split": args.split,
        "seed": args.seed,
    }
    if valid_metrics:
        metrics["valid"] = valid_metrics
    metrics["skipped"] = [{"path": p, "reason": r} for p, r in features.skipped]
    metrics["excluded_clips"] = [features.dataset.clips[i].clip_id for i in plan.excluded]
    provenance = _provenance(args, trainer, features, plan, final_clips, result.module)
    contract_metrics = _summary(metrics) | {"seed": args.seed, "trained_on_clips": final_clips}
    path = trainer.export(result, _contract(args, trainer, labels, provenance, contract_metrics), args.out)
    metrics["export"] = {"path": str(path), **_verify_export(path, trainer, features, result.module, args.threads)}
    metrics["seconds"] = {
        "features": round(feature_seconds, 1),
        "cross_validation": round(cv_seconds, 1),
        "total": round(time.monotonic() - started, 1),
    }
    write_command(report_dir, argv, args.seed, "training.train")
    notes = [
        f"architecture {args.arch}; seed {args.seed}; {len(features.skipped)} clips skipped, "
        f"{len(plan.excluded)} excluded by the split",
        f"exported {path} (trained on {final_clips} clips)",
    ]
    write_report(
        report_dir, f"{args.out.stem}: {args.arch}, {plan.description}", metrics, labels, predictions, histories, notes
    )
    return metrics


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; user errors are one line on stderr and exit status 2."""

    def summary(args: argparse.Namespace, metrics: dict[str, Any]) -> str:
        return (f"{args.out}: track accuracy {metrics['track_accuracy']:.1%} ({metrics['evaluation']}); "
                f"window accuracy {metrics['window_accuracy']:.1%}; {metrics['seconds']['total']:.0f} s; "
                f"report in {args.report or Path('reports') / args.out.stem}")

    return run_cli("training.train", build_parser(), run, summary, argv, "interrupted (continue with --resume)")


if __name__ == "__main__":
    sys.exit(main())
