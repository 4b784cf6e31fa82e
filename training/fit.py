"""The epoch loop shared by every architecture: progress, model selection, resumable checkpoints.

A checkpoint (``<dir>/<run>.pt``) is written after every epoch: model and optimizer state, the
history so far, the best state (when selecting on a validation set) and every random generator's
state, under a fingerprint of the settings. ``--resume`` continues a run from its last finished
epoch and reproduces the uninterrupted run exactly; a checkpoint whose fingerprint differs (other
data, labels, features, architecture or hyperparameters) is refused with a :class:`TrainingError`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.errors import TrainingError

__all__ = ["FitResult", "RunContext", "fingerprint_of", "train_epochs"]

EpochFn = Callable[[int, np.random.Generator], dict[str, float]]
EvalFn = Callable[[], dict[str, float]]


def fingerprint_of(settings: dict[str, Any]) -> str:
    """Stable hash of JSON-safe settings."""
    return hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class RunContext:
    """Where and how runs are checkpointed and shown.

    Attributes
    ----------
    checkpoint_dir
        Folder of the per-run checkpoints (None: no checkpoints).
    resume
        Continue from existing checkpoints instead of starting over.
    progress
        A started ``rich.progress.Progress`` (None: silent).
    """

    checkpoint_dir: Path | None = None
    resume: bool = False
    progress: Any = None


@dataclass
class FitResult:
    """A trained module and how it got there."""

    module: torch.nn.Module
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None


def _save(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _describe(stats: dict[str, float]) -> str:
    parts = [f"loss {stats['train_loss']:.3f}"]
    if "monitor_track_accuracy" in stats:
        parts.append(f"{stats.get('monitor', 'eval')} acc {stats['monitor_track_accuracy']:.2f}")
    return " · ".join(parts)


def train_epochs(
    run: str,
    module: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    train_epoch: EpochFn,
    evaluate: EvalFn | None,
    select: bool,
    seed: int,
    fingerprint: str,
    ctx: RunContext,
    scheduler: Any = None,
    checkpoint_every: int = 1,
) -> FitResult:
    """Train ``module`` for ``epochs`` epochs.

    Parameters
    ----------
    run
        Run name (checkpoint file stem and progress label), e.g. ``"fold1"``.
    module, optimizer, scheduler
        What to train; the scheduler (optional) is stepped once per epoch.
    epochs
        Total epochs (a resumed run trains the missing ones).
    train_epoch
        One epoch of training: ``(epoch, rng) -> {"train_loss": ..., ...}``.
    evaluate
        Scores on the monitored clips after each epoch: ``{"monitor_track_accuracy": ...,
        "monitor_loss": ...}`` (None: nothing monitored).
    select
        Keep the epoch with the best monitored track accuracy (ties: lower loss) instead of the last.
    seed
        Seeds the run's torch and numpy generators.
    fingerprint
        Settings hash stored with the checkpoint and checked on resume.
    ctx
        Checkpointing and progress.
    checkpoint_every
        Write the checkpoint every this many epochs (and after the last).

    Raises
    ------
    TrainingError
        ``--resume`` found a checkpoint made with other settings, or an unreadable one.
    """
    if epochs < 1:
        raise TrainingError(f"--epochs must be at least 1, got {epochs}")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    history: list[dict[str, float]] = []
    best: tuple[float, float] | None = None
    best_state: dict[str, Any] | None = None
    best_epoch: int | None = None
    start = 0
    path = ctx.checkpoint_dir / f"{run}.pt" if ctx.checkpoint_dir is not None else None
    if path is not None and ctx.resume and path.is_file():
        try:
            state = torch.load(path, weights_only=False)
        except Exception as exc:  # any unreadable file gets the same one-line error
            raise TrainingError(f"checkpoint {path} is unreadable ({type(exc).__name__}); delete it") from None
        if state.get("fingerprint") != fingerprint:
            raise TrainingError(
                f"checkpoint {path} was made with other data or settings; delete it or run without --resume"
            )
        module.load_state_dict(state["module"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state.get("scheduler") is not None:
            scheduler.load_state_dict(state["scheduler"])
        history, best, best_state = state["history"], state["best"], state["best_state"]
        best_epoch = state["best_epoch"]
        torch.set_rng_state(state["torch_rng"])
        rng.bit_generator.state = state["numpy_rng"]
        start = state["epoch"] + 1
    task = None
    if ctx.progress is not None:
        task = ctx.progress.add_task(
            run, total=epochs, completed=min(start, epochs), status=_describe(history[-1]) if history else ""
        )
    for epoch in range(start, epochs):
        module.train()
        stats = {"epoch": epoch + 1, **train_epoch(epoch, rng)}
        if scheduler is not None:
            scheduler.step()
        if evaluate is not None:
            module.eval()
            with torch.no_grad():
                stats.update(evaluate())
        history.append(stats)
        if select and "monitor_track_accuracy" in stats:
            score = (stats["monitor_track_accuracy"], -stats.get("monitor_loss", 0.0))
            if best is None or score > best:
                best, best_epoch = score, epoch + 1
                best_state = copy.deepcopy(module.state_dict())
        if path is not None and ((epoch + 1) % checkpoint_every == 0 or epoch + 1 == epochs):
            _save(
                path,
                {
                    "fingerprint": fingerprint,
                    "epoch": epoch,
                    "module": module.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "history": history,
                    "best": best,
                    "best_state": best_state,
                    "best_epoch": best_epoch,
                    "torch_rng": torch.get_rng_state(),
                    "numpy_rng": rng.bit_generator.state,
                },
            )
        if task is not None:
            ctx.progress.update(task, advance=1, status=_describe(stats))
    if select and best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    return FitResult(module, history, best_epoch if select else None)
