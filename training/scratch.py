"""Training of the from-scratch networks (``--arch seed`` and ``--arch cnn``) on cached log-mel clips.

``seed`` reproduces the blog's recipe track-safely: every 4-frame (~100 ms) window of the training
clips (stride 2, random phase per epoch), Adam at 1e-3, no augmentation. ``cnn`` trains the 2-D CNN
on random ~3 s crops with gain changes, SpecAugment-style time and frequency masks and optional
mixup, AdamW with a cosine schedule. Both are evaluated on a clip's non-overlapping windows from its
first frame — the windows ``streamgenre classify`` scores — and decide per clip by the mean of the
window probabilities.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F  # noqa: N812

from streamgenre.contract import ModelContract, OutputSpec
from streamgenre.features import MelConfig
from training.featcache import FeatureSet
from training.fit import FitResult, RunContext, fingerprint_of, train_epochs
from training.nets import CNN_WINDOW, SEED_MEL, SEED_WINDOW, GenreCnn, SeedNet, Softmaxed
from training.onnx_export import export_with_contract

__all__ = ["ScratchSettings", "ScratchTrainer", "eval_windows"]

EVAL_BATCH = 512


def eval_windows(mel: np.ndarray, window_frames: int) -> np.ndarray:
    """The non-overlapping windows from frame 0 (the windows of ``MelWindower`` with hop = window)."""
    count = mel.shape[0] // window_frames
    return mel[: count * window_frames].reshape(count, window_frames, mel.shape[1])


@dataclass(frozen=True)
class ScratchSettings:
    """Hyperparameters of the from-scratch architectures (defaults per architecture)."""

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float = 0.0
    train_stride: int = 2  # seed: frames between training windows
    crops_per_clip: int = 8  # cnn: random crops per clip and epoch
    gain_db: float = 6.0  # cnn: random gain range (+-)
    time_masks: int = 2
    time_mask_frames: int = 16
    freq_masks: int = 2
    freq_mask_bands: int = 16
    mixup: float = 0.0  # cnn: mixup alpha (0 = off)

    @staticmethod
    def for_arch(arch: str) -> ScratchSettings:
        """Defaults of ``arch`` (``"seed"`` or ``"cnn"``)."""
        if arch == "seed":
            return ScratchSettings(epochs=20, batch_size=256, lr=1e-3)
        return ScratchSettings(epochs=40, batch_size=32, lr=2e-3, weight_decay=1e-2)


class ScratchTrainer:
    """Trains, evaluates and exports ``seed`` or ``cnn`` models on one :class:`FeatureSet`.

    Parameters
    ----------
    arch
        ``"seed"`` or ``"cnn"``.
    settings
        Hyperparameters.
    """

    def __init__(self, arch: str, settings: ScratchSettings) -> None:
        if arch not in ("seed", "cnn"):
            raise ValueError(f"unknown from-scratch architecture {arch!r}")
        self.arch = arch
        self.settings = settings
        self.mel_config: MelConfig = SEED_MEL
        self.window_frames = SEED_WINDOW if arch == "seed" else CNN_WINDOW
        self.features: FeatureSet | None = None
        self.labels: np.ndarray = np.zeros(0, np.int64)

    def describe(self) -> dict:
        """Architecture and hyperparameters (JSON-safe)."""
        return {"arch": self.arch, "window_frames": self.window_frames, **self.settings.__dict__}

    def prepare(self, features: FeatureSet, ctx: RunContext) -> None:
        """Adopt the features (computed with :attr:`mel_config`)."""
        features.require_config(self.mel_config, f"--arch {self.arch}")
        self.features = features
        self.labels = np.asarray(features.dataset.label_indices(), dtype=np.int64)

    def _build(self) -> torch.nn.Module:
        n_classes = len(self.features.dataset.labels)
        if self.arch == "seed":
            return SeedNet(n_classes, self.mel_config.n_mels, self.window_frames)
        return GenreCnn(n_classes, self.mel_config.n_mels)

    def _train_frames(self, train: list[int]) -> np.ndarray:
        frames = np.concatenate([self.features.mels[i] for i in train])
        step = max(1, len(frames) // 200_000)
        return frames[::step]

    def _seed_epoch(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, train: list[int]):
        mels, labels, batch = self.features.mels, self.labels, self.settings.batch_size
        stride = self.settings.train_stride

        def batches(rng: np.random.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor, None]]:
            offset = int(rng.integers(stride))
            index = [(i, s) for i in train for s in range(offset, len(mels[i]) - self.window_frames + 1, stride)]
            order = rng.permutation(len(index))
            for b in range(0, len(order), batch):
                chosen = [index[k] for k in order[b : b + batch]]
                x = torch.from_numpy(np.stack([mels[i][s : s + self.window_frames] for i, s in chosen]))
                yield x, torch.from_numpy(labels[[i for i, _ in chosen]]), None

        return lambda _, rng: _train_pass(model, optimizer, batches(rng))

    def _cnn_batch(self, chosen: list[int], rng: np.random.Generator, mean: np.ndarray) -> torch.Tensor:
        s = self.settings
        w = self.window_frames
        out = np.empty((len(chosen), w, self.mel_config.n_mels), np.float32)
        for row, i in enumerate(chosen):
            mel = self.features.mels[i]
            start = int(rng.integers(len(mel) - w + 1))
            x = mel[start : start + w] + np.float32(rng.uniform(-s.gain_db, s.gain_db))
            for _ in range(s.time_masks):
                width = int(rng.integers(s.time_mask_frames + 1))
                t0 = int(rng.integers(w - width + 1))
                x[t0 : t0 + width] = mean
            for _ in range(s.freq_masks):
                width = int(rng.integers(s.freq_mask_bands + 1))
                f0 = int(rng.integers(x.shape[1] - width + 1))
                x[:, f0 : f0 + width] = mean[f0 : f0 + width]
            out[row] = x
        return torch.from_numpy(out)

    def _cnn_epoch(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, train: list[int]):
        s = self.settings
        mean = model.norm.mean.numpy().copy()
        n_classes = len(self.features.dataset.labels)

        def batches(rng: np.random.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
            draws = rng.permutation(np.repeat(np.asarray(train), s.crops_per_clip))
            for b in range(0, len(draws), s.batch_size):
                chosen = [int(i) for i in draws[b : b + s.batch_size]]
                x = self._cnn_batch(chosen, rng, mean)
                y = torch.from_numpy(self.labels[chosen])
                target = F.one_hot(y, n_classes).float()
                if s.mixup > 0 and len(chosen) > 1:
                    lam = float(rng.beta(s.mixup, s.mixup))
                    perm = torch.from_numpy(rng.permutation(len(chosen)))
                    x = lam * x + (1 - lam) * x[perm]
                    target = lam * target + (1 - lam) * target[perm]
                yield x, y, target

        return lambda _, rng: _train_pass(model, optimizer, batches(rng))

    def _evaluate(self, model: torch.nn.Module, clips: list[int], name: str):
        def evaluate() -> dict[str, float]:
            probs = self.predict(model, clips)
            truth = self.labels[clips]
            means = np.stack([p.mean(axis=0) for p in probs])
            window_hits = sum(int((p.argmax(1) == t).sum()) for p, t in zip(probs, truth, strict=True))
            return {
                "monitor": name,
                "monitor_track_accuracy": float((means.argmax(1) == truth).mean()),
                "monitor_window_accuracy": window_hits / sum(len(p) for p in probs),
                "monitor_loss": float(-np.log(np.maximum(means[np.arange(len(truth)), truth], 1e-7)).mean()),
            }

        return evaluate

    def fit(
        self,
        run: str,
        train: list[int],
        monitor: list[int],
        select: bool,
        seed: int,
        ctx: RunContext,
        monitor_name: str = "test",
        epochs: int | None = None,
    ) -> FitResult:
        """Train on the clips ``train``; score ``monitor`` after each epoch (select on it if ``select``)."""
        epochs = epochs or self.settings.epochs
        torch.manual_seed(seed)
        model = self._build()
        model.norm.fit(self._train_frames(train))
        s = self.settings
        scheduler = None
        if self.arch == "seed":
            optimizer = torch.optim.Adam(model.parameters(), lr=s.lr)
            epoch_fn = self._seed_epoch(model, optimizer, train)
        else:
            optimizer = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
            epoch_fn = self._cnn_epoch(model, optimizer, train)
        ids = [self.features.dataset.clips[i].clip_id for i in train]
        fingerprint = fingerprint_of(
            {
                **self.describe(),
                "epochs": epochs,
                "seed": seed,
                "train": ids,
                "mel": self.mel_config.to_dict(),
                "labels": self.features.dataset.labels,
                "select": select,
                "monitor": monitor,
            }
        )
        evaluate = self._evaluate(model, monitor, monitor_name) if monitor else None
        return train_epochs(
            run, model, optimizer, epochs, epoch_fn, evaluate, select, seed, fingerprint, ctx, scheduler
        )

    def predict(self, model: torch.nn.Module, clips: list[int]) -> list[np.ndarray]:
        """Window probabilities ``(n_windows, n_classes)`` of each clip's evaluation windows."""
        model.eval()
        out = []
        with torch.no_grad():
            for i in clips:
                windows = eval_windows(self.features.mels[i], self.window_frames)
                parts = [
                    torch.softmax(model(torch.from_numpy(windows[b : b + EVAL_BATCH])), dim=1).numpy()
                    for b in range(0, len(windows), EVAL_BATCH)
                ]
                out.append(np.concatenate(parts))
        return out

    def contract_parts(self, labels: tuple[str, ...]) -> dict:
        """Contract fields of the exported graph: one ``genre`` softmax output, no tags, no streaming."""
        return {"outputs": {"genre": OutputSpec("genre", "softmax", labels)}, "tag_output": None, "streaming": None}

    def export(self, result: FitResult, contract: ModelContract, path: Path) -> Path:
        """Write the ONNX model (``genre`` softmax output) with ``contract``."""
        return export_with_contract(Softmaxed(result.module), contract, ["genre"], path)


def _train_pass(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                batches: Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]) -> dict[str, float]:
    """One optimisation step per ``(x, labels, soft targets or None)`` batch; mean loss and window accuracy.

    With soft targets (mixup) the loss is their cross-entropy with the predictions, else the
    plain cross-entropy with the labels.
    """
    total, correct, seen = 0.0, 0, 0
    for x, y, target in batches:
        optimizer.zero_grad()
        logits = model(x)
        if target is None:
            loss = F.cross_entropy(logits, y)
        else:
            loss = -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(y)
        correct += int((logits.argmax(1) == y).sum())
        seen += len(y)
    return {"train_loss": total / seen, "train_window_accuracy": correct / seen}
