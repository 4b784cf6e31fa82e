"""Scores of clip predictions: track- and window-level accuracy, per-class precision/recall/F1, confusion.

Track level is how ``streamgenre classify`` decides: the mean of the window probabilities over a
clip's non-overlapping windows; the window vote (most frequent window winner) is reported beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["ClipPrediction", "score_predictions"]


@dataclass(frozen=True)
class ClipPrediction:
    """The model's window probabilities for one clip with its true label.

    Attributes
    ----------
    clip_id
        Clip identifier (for the predictions table).
    label
        True class index.
    windows
        ``(n_windows, n_classes)`` probabilities of the clip's evaluation windows.
    fold
        Name of the fold that tested the clip.
    """

    clip_id: str
    label: int
    windows: np.ndarray
    fold: str = ""

    @property
    def mean(self) -> np.ndarray:
        """Track-level probabilities (mean over windows)."""
        return self.windows.mean(axis=0)

    @property
    def predicted(self) -> int:
        """Track-level decision (argmax of the mean probabilities)."""
        return int(np.argmax(self.mean))

    @property
    def voted(self) -> int:
        """Window vote: the class most windows pick (ties: the higher mean probability)."""
        counts = np.bincount(self.windows.argmax(axis=1), minlength=self.windows.shape[1])
        best = np.flatnonzero(counts == counts.max())
        return int(best[np.argmax(self.mean[best])])


def _per_class(confusion: np.ndarray, labels: Sequence[str]) -> dict[str, dict[str, float]]:
    out = {}
    for i, label in enumerate(labels):
        tp = float(confusion[i, i])
        predicted = float(confusion[:, i].sum())
        actual = float(confusion[i].sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[label] = {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "support": int(actual),
        }
    return out


def score_predictions(predictions: Sequence[ClipPrediction], labels: Sequence[str]) -> dict:
    """All metrics of a set of clip predictions (JSON-safe).

    Returns
    -------
    dict
        ``clips``, ``windows``, ``track_accuracy``, ``track_accuracy_vote``, ``window_accuracy``,
        ``macro_f1``, ``per_class`` (precision/recall/F1/support) and ``confusion`` (rows: true,
        columns: predicted, in ``labels`` order).
    """
    if not predictions:
        raise ValueError("no predictions to score")
    n = len(labels)
    confusion = np.zeros((n, n), dtype=np.int64)
    vote_correct = 0
    window_correct = 0
    windows = 0
    for p in predictions:
        confusion[p.label, p.predicted] += 1
        vote_correct += int(p.voted == p.label)
        window_correct += int((p.windows.argmax(axis=1) == p.label).sum())
        windows += len(p.windows)
    per_class = _per_class(confusion, labels)
    present = [v["f1"] for v in per_class.values() if v["support"]]
    return {
        "clips": len(predictions),
        "windows": windows,
        "track_accuracy": round(float(np.trace(confusion)) / len(predictions), 4),
        "track_accuracy_vote": round(vote_correct / len(predictions), 4),
        "window_accuracy": round(window_correct / windows, 4),
        "macro_f1": round(float(np.mean(present)), 4),
        "per_class": per_class,
        "confusion": confusion.tolist(),
    }
