"""Transfer head (``--arch musicnn-head``): a genre classifier on the frozen musicnn embedding.

The backbone (the converted ``models/msd_musicnn.onnx`` by default) runs once per training window
and its 200-d penultimate embeddings are cached on disk. Training windows start every third of a
window (~1 s); evaluation uses the non-overlapping windows ``streamgenre classify`` scores.

The head is an ensemble of small MLPs (standardisation folded in; dropout, ReLU, weight decay)
whose mean probability is the genre output. Each member is trained with a clip-level
(multiple-instance) loss: the negative log-likelihood of the clip's *mean window probability*, which
is exactly how the runtime decides a clip. It is exported together with the backbone as ONE ONNX
graph (musicnn's streaming form, weights from the ``musicnn`` wheel's checkpoint) with outputs
``genre`` (softmax), ``tags`` (the backbone's sigmoid tags), ``embedding``, ``max_pool`` and
``mean_pool``; the export is checked against the cached backbone embeddings.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from streamgenre.contract import ModelContract, OutputSpec
from streamgenre.model import GenreModel, load_model
from training.errors import TrainingError
from training.featcache import FeatureCache, FeatureSet
from training.fit import FitResult, RunContext, fingerprint_of, train_epochs
from training.nets import Standardize
from training.scratch import eval_windows

__all__ = ["DEFAULT_BACKBONE", "GenreHead", "HeadSettings", "HeadTrainer"]

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BACKBONE = REPO_ROOT / "models" / "msd_musicnn.onnx"
CHECKPOINT_KEYS = {"msd_musicnn": "MSD_musicnn", "mtt_musicnn": "MTT_musicnn"}
EMBEDDING = "embedding"
BATCH = 16


@dataclass(frozen=True)
class HeadSettings:
    """Hyperparameters of the transfer head."""

    epochs: int = 200  # full-batch steps
    hidden: int = 256  # 0: linear members
    members: int = 5
    lr: float = 1e-2
    weight_decay: float = 0.1
    input_dropout: float = 0.2
    dropout: float = 0.5
    phases: int = 3  # training windows start every window / phases frames


class GenreHead(nn.Module):
    """Mean of ``members`` small classifiers on the standardised embedding; returns probabilities."""

    def __init__(self, in_features: int, n_classes: int, settings: HeadSettings) -> None:
        super().__init__()
        self.norm = Standardize(in_features)

        def member() -> nn.Module:
            if settings.hidden == 0:
                return nn.Sequential(nn.Dropout(settings.input_dropout), nn.Linear(in_features, n_classes))
            return nn.Sequential(
                nn.Dropout(settings.input_dropout),
                nn.Linear(in_features, settings.hidden),
                nn.ReLU(),
                nn.Dropout(settings.dropout),
                nn.Linear(settings.hidden, n_classes),
            )

        self.members = nn.ModuleList(member() for _ in range(settings.members))

    def member_logits(self, embedding: torch.Tensor) -> torch.Tensor:
        """``(members, batch, classes)`` logits."""
        x = self.norm(embedding)
        return torch.stack([m(x) for m in self.members])

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.member_logits(embedding), dim=2).mean(dim=0)


def _file_sha(path: Path) -> str:
    digest = hashlib.sha1()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def _starts(frames: int, window: int, phases: int) -> tuple[np.ndarray, np.ndarray]:
    """Window starts of every phase (phase 0 first: the evaluation windows) and their phase numbers."""
    starts, phase = [], []
    for k in range(phases):
        offset = round(k * window / phases)
        s = np.arange(offset, frames - window + 1, window)
        starts.append(s)
        phase.append(np.full(len(s), k))
    return np.concatenate(starts), np.concatenate(phase)


class HeadTrainer:
    """Trains, evaluates and exports the transfer head.

    Parameters
    ----------
    settings
        Hyperparameters.
    backbone
        A converted musicnn ONNX model (default ``models/msd_musicnn.onnx``).
    cache
        Cache root for the backbone embeddings (default: the feature cache's).
    threads
        onnxruntime threads for the backbone.
    """

    arch = "musicnn-head"

    def __init__(
        self,
        settings: HeadSettings,
        backbone: str | os.PathLike[str] | None = None,
        cache: str | os.PathLike[str] | None = None,
        threads: int = 2,
    ) -> None:
        self.settings = settings
        self.backbone_path = Path(backbone) if backbone is not None else DEFAULT_BACKBONE
        self.model: GenreModel = load_model(self.backbone_path, provider="cpu", threads=threads, warmup=False)
        contract = self.model.contract
        if contract.name not in CHECKPOINT_KEYS or EMBEDDING not in contract.outputs:
            raise TrainingError(
                f"{self.backbone_path} is not a converted musicnn model "
                f"(expected one of {sorted(CHECKPOINT_KEYS)}, found {contract.name!r})"
            )
        self.mel_config = contract.mel_config
        self.window_frames = contract.window_frames
        self.cache = cache
        self.backbone_sha = _file_sha(self.backbone_path)
        self.embeddings: list[np.ndarray] = []
        self.phases: list[np.ndarray] = []
        self.features: FeatureSet | None = None
        self.labels = np.zeros(0, np.int64)

    def describe(self) -> dict:
        """Architecture and hyperparameters (JSON-safe)."""
        return {
            "arch": self.arch,
            "backbone": self.model.contract.name,
            "backbone_sha1": self.backbone_sha,
            "window_frames": self.window_frames,
            "head_input": EMBEDDING,
            **asdict(self.settings),
        }

    def prepare(self, features: FeatureSet, ctx: RunContext) -> None:
        """Compute (or load cached) backbone embeddings of every training window of every clip."""
        features.require_config(self.mel_config, f"the backbone {self.backbone_path.name}")
        self.features = features
        self.labels = np.asarray(features.dataset.label_indices(), dtype=np.int64)
        keys = FeatureCache(self.cache, self.mel_config)
        folder = keys.root / "embeddings" / self.backbone_sha / keys.folder.name
        task = ctx.progress.add_task("embeddings", total=len(features.mels), status="") if ctx.progress else None
        self.embeddings, self.phases = [], []
        for clip, mel in zip(features.dataset.clips, features.mels, strict=True):
            starts, phase = _starts(len(mel), self.window_frames, self.settings.phases)
            entry = folder / f"{keys.key(clip.path)}_p{self.settings.phases}.npz"
            emb = None
            if entry.is_file():
                try:
                    with np.load(entry) as data:
                        if np.array_equal(data["starts"], starts):
                            emb = data["embedding"]
                except (OSError, KeyError, ValueError):
                    emb = None
            if emb is None:
                windows = np.stack([mel[s : s + self.window_frames] for s in starts])
                emb = np.concatenate(
                    [
                        self.model.predict(windows[b : b + BATCH], [EMBEDDING])[EMBEDDING]
                        for b in range(0, len(windows), BATCH)
                    ]
                )
                entry.parent.mkdir(parents=True, exist_ok=True)
                tmp = entry.with_suffix(".tmp.npz")
                np.savez(tmp, embedding=emb, starts=starts)
                os.replace(tmp, entry)
            self.embeddings.append(emb.astype(np.float32))
            self.phases.append(phase)
            if task is not None:
                ctx.progress.update(task, advance=1)

    def _stack(self, clips: list[int], eval_only: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        xs, ys, gs = [], [], []
        for row, i in enumerate(clips):
            emb = self.embeddings[i][self.phases[i] == 0] if eval_only else self.embeddings[i]
            xs.append(emb)
            ys.append(np.full(len(emb), self.labels[i]))
            gs.append(np.full(len(emb), row))
        return (
            torch.from_numpy(np.concatenate(xs)),
            torch.from_numpy(np.concatenate(ys)),
            torch.from_numpy(np.concatenate(gs)),
        )

    @staticmethod
    def _clip_nll(probs: torch.Tensor, groups: torch.Tensor, clip_labels: torch.Tensor) -> torch.Tensor:
        """NLL of each clip's mean window probability, averaged over clips (probs: ``(..., n, classes)``)."""
        shape = (*probs.shape[:-2], len(clip_labels), probs.shape[-1])
        sums = torch.zeros(shape).index_add_(-2, groups, probs)
        counts = torch.bincount(groups, minlength=len(clip_labels)).clamp_min(1).to(probs.dtype)
        means = sums / counts[:, None]
        picked = means.gather(-1, clip_labels.expand(*shape[:-1]).unsqueeze(-1)).squeeze(-1)
        return -torch.log(picked.clamp_min(1e-7)).mean(dim=-1)

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
        """Train the head on the clips ``train`` (all phases); score ``monitor`` after each epoch."""
        epochs = epochs or self.settings.epochs
        torch.manual_seed(seed)
        x, y, groups = self._stack(train, eval_only=False)
        clip_labels = torch.from_numpy(self.labels[train])
        head = GenreHead(x.shape[1], len(self.features.dataset.labels), self.settings)
        head.norm.fit(x.numpy())
        optimizer = torch.optim.AdamW(head.parameters(), lr=self.settings.lr, weight_decay=self.settings.weight_decay)

        def epoch(_: int, __: np.random.Generator) -> dict[str, float]:
            optimizer.zero_grad()
            logits = head.member_logits(x)
            losses = self._clip_nll(torch.softmax(logits, dim=2), groups, clip_labels)
            losses.sum().backward()
            optimizer.step()
            with torch.no_grad():
                window_acc = float((logits.mean(0).argmax(1) == y).float().mean())
            return {"train_loss": losses.mean().item(), "train_window_accuracy": window_acc}

        evaluate = None
        if monitor:
            mx, my, mg = self._stack(monitor, eval_only=True)
            m_labels = torch.from_numpy(self.labels[monitor])

            def evaluate() -> dict[str, float]:
                probs = head(mx)
                sums = torch.zeros(len(monitor), probs.shape[1]).index_add_(0, mg, probs)
                return {
                    "monitor": monitor_name,
                    "monitor_track_accuracy": float((sums.argmax(1) == m_labels).float().mean()),
                    "monitor_window_accuracy": float((probs.argmax(1) == my).float().mean()),
                    "monitor_loss": float(self._clip_nll(probs, mg, m_labels)),
                }

        ids = [self.features.dataset.clips[i].clip_id for i in train]
        fingerprint = fingerprint_of(
            {
                **self.describe(),
                "epochs": epochs,
                "seed": seed,
                "train": ids,
                "labels": self.features.dataset.labels,
                "select": select,
                "monitor": monitor,
            }
        )
        return train_epochs(
            run, head, optimizer, epochs, epoch, evaluate, select, seed, fingerprint, ctx, checkpoint_every=25
        )

    def predict(self, head: torch.nn.Module, clips: list[int]) -> list[np.ndarray]:
        """Window probabilities of each clip's evaluation windows (phase 0)."""
        head.eval()
        with torch.no_grad():
            return [head(torch.from_numpy(self.embeddings[i][self.phases[i] == 0])).numpy() for i in clips]

    def contract_parts(self, labels: tuple[str, ...]) -> dict:
        """Contract fields of the exported graph (outputs, tag output, streaming section)."""
        backbone = self.model.contract
        outputs = {
            "genre": OutputSpec("genre", "softmax", labels),
            **{name: backbone.outputs[name] for name in ("tags", "embedding", "max_pool", "mean_pool")},
        }
        return {"outputs": outputs, "tag_output": "tags", "streaming": backbone.streaming}

    def export(self, result: FitResult, contract: ModelContract, path: Path) -> Path:
        """Write backbone + head as one ONNX graph and check it against the cached backbone outputs."""
        from training.import_musicnn import build_backbone, find_musicnn_dir, output_names, read_weights, streaming_spec
        from training.musicnn_port import StreamingMusicnn
        from training.onnx_export import export_with_contract

        try:
            source = find_musicnn_dir()
        except SystemExit as exc:
            raise TrainingError(str(exc)) from None
        backbone = build_backbone(read_weights(source / CHECKPOINT_KEYS[self.model.contract.name]))
        module = StreamingMusicnn(backbone, result.module.eval()).eval()
        if contract.streaming != streaming_spec(module):
            raise TrainingError(f"{self.backbone_path}: its streaming layout differs from the checkpoint's pruned "
                                "musicnn; reconvert the backbone with python -m training.import_musicnn")
        export_with_contract(module, contract, ["genre", *output_names(contract.streaming)], path)
        self._check_export(path, result.module)
        return path

    def _check_export(self, path: Path, head: torch.nn.Module) -> None:
        exported = load_model(path, provider="cpu", threads=self.model.threads)
        mel = self.features.mels[0]
        windows = eval_windows(mel, self.window_frames)[:4]
        out = exported.predict(windows, ["genre", EMBEDDING])
        cached = self.embeddings[0][self.phases[0] == 0][: len(windows)]
        rel = np.linalg.norm(out[EMBEDDING] - cached, axis=1) / np.maximum(np.linalg.norm(cached, axis=1), 1e-6)
        with torch.no_grad():
            expected = head(torch.from_numpy(cached)).numpy()
        if rel.max() > 1e-3 or np.abs(out["genre"] - expected).max() > 1e-3:
            raise TrainingError(
                f"{path}: the exported graph disagrees with the backbone {self.backbone_path.name} "
                f"(embedding rel. error {rel.max():.1e}); reconvert the backbone with "
                "python -m training.import_musicnn"
            )
