"""Report folder of a training or evaluation run: metrics JSON, tables, plots, the exact command.

Files: ``metrics.json`` (everything), ``report.md`` (summary, per-class table, confusion table),
``confusion.png``, ``learning_curves.png`` (training runs), ``predictions.csv`` (one row per clip)
and ``command.json`` (argv, the command line to repeat the run, seed, versions).
"""

from __future__ import annotations

import csv
import json
import platform
import shlex
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from training.metrics import ClipPrediction

__all__ = ["confusion_table", "plot_confusion", "plot_learning_curves", "write_command", "write_report"]


def confusion_table(confusion: Sequence[Sequence[int]], labels: Sequence[str]) -> str:
    """Markdown table: rows are true labels, columns predictions."""
    head = "| true \\ predicted | " + " | ".join(labels) + " |"
    rule = "|" + "---|" * (len(labels) + 1)
    rows = [
        f"| {label} | " + " | ".join(str(int(v)) for v in row) + " |"
        for label, row in zip(labels, confusion, strict=True)
    ]
    return "\n".join([head, rule, *rows])


def _per_class_table(per_class: dict[str, dict[str, float]]) -> str:
    rows = ["| class | precision | recall | F1 | clips |", "|---|---|---|---|---|"]
    rows += [
        f"| {label} | {v['precision']:.2f} | {v['recall']:.2f} | {v['f1']:.2f} | {v['support']} |"
        for label, v in per_class.items()
    ]
    return "\n".join(rows)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot


def plot_confusion(confusion: Sequence[Sequence[int]], labels: Sequence[str], path: Path, title: str) -> None:
    """Confusion matrix as a PNG (counts in the cells)."""
    plt = _pyplot()
    matrix = np.asarray(confusion)
    size = max(4.0, 0.55 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(textwrap.fill(title, 60), fontsize=10)
    limit = matrix.max() / 2 if matrix.size else 0
    for (i, j), value in np.ndenumerate(matrix):
        if value:
            ax.text(j, i, str(value), ha="center", va="center", color="white" if value > limit else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_learning_curves(histories: dict[str, list[dict[str, Any]]], path: Path) -> None:
    """Training loss and monitored accuracy per epoch, one line per run."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for run, history in histories.items():
        if not history:
            continue
        epochs = [h["epoch"] for h in history]
        left.plot(epochs, [h["train_loss"] for h in history], label=f"{run} train")
        if "monitor_loss" in history[0]:
            left.plot(epochs, [h["monitor_loss"] for h in history], "--", label=f"{run} {history[0]['monitor']}")
        if "train_window_accuracy" in history[0]:
            right.plot(epochs, [h["train_window_accuracy"] for h in history], label=f"{run} train (windows)")
        if "monitor_track_accuracy" in history[0]:
            right.plot(
                epochs,
                [h["monitor_track_accuracy"] for h in history],
                "--",
                label=f"{run} {history[0]['monitor']} (tracks)",
            )
    left.set_xlabel("epoch")
    left.set_ylabel("loss")
    right.set_xlabel("epoch")
    right.set_ylabel("accuracy")
    right.set_ylim(0, 1.02)
    for ax in (left, right):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_command(folder: Path, argv: Sequence[str], seed: int, program: str) -> dict[str, Any]:
    """``command.json``: how to repeat this run exactly."""
    import torch

    info = {
        "command": shlex.join([Path(sys.executable).name, "-m", program, *argv]),
        "argv": list(argv),
        "seed": seed,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "command.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def _summary_lines(metrics: dict[str, Any]) -> list[str]:
    lines = [
        f"- track accuracy (mean of window probabilities, as `streamgenre classify`): "
        f"**{metrics['track_accuracy']:.1%}** ({metrics['clips']} clips)",
        f"- track accuracy (window vote): {metrics['track_accuracy_vote']:.1%}",
        f"- window accuracy: {metrics['window_accuracy']:.1%} ({metrics['windows']} windows)",
        f"- macro F1: {metrics['macro_f1']:.3f}",
    ]
    for fold in metrics.get("folds", []):
        lines.append(
            f"- {fold['name']}: track {fold['track_accuracy']:.1%}, window {fold['window_accuracy']:.1%} "
            f"({fold['clips']} clips)"
        )
    return lines


def write_report(
    folder: Path,
    title: str,
    metrics: dict[str, Any],
    labels: Sequence[str],
    predictions: Sequence[ClipPrediction],
    histories: dict[str, list[dict[str, Any]]] | None = None,
    notes: Sequence[str] = (),
) -> Path:
    """Write every report file into ``folder``; return ``report.md``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str) + "\n")
    plot_confusion(
        metrics["confusion"],
        labels,
        folder / "confusion.png",
        f"{title}\ntrack accuracy {metrics['track_accuracy']:.1%} on {metrics['clips']} clips",
    )
    if histories:
        plot_learning_curves(histories, folder / "learning_curves.png")
    with (folder / "predictions.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["clip", "fold", "true", "predicted", "confidence", "window_vote", "windows"])
        for p in predictions:
            writer.writerow(
                [
                    p.clip_id,
                    p.fold,
                    labels[p.label],
                    labels[p.predicted],
                    f"{p.mean.max():.4f}",
                    labels[p.voted],
                    len(p.windows),
                ]
            )
    text = [
        f"# {title}",
        "",
        *_summary_lines(metrics),
        *[f"- {n}" for n in notes],
        "",
        "## Per class",
        "",
        _per_class_table(metrics["per_class"]),
        "",
        "## Confusion (rows: true, columns: predicted)",
        "",
        confusion_table(metrics["confusion"], labels),
        "",
    ]
    if histories:
        text += ["![learning curves](learning_curves.png)", ""]
    text += ["![confusion](confusion.png)", ""]
    path = folder / "report.md"
    path.write_text("\n".join(text))
    return path
