"""The from-scratch networks: the seed's 1-D CNN and a 2-D CNN, both on the seed's 128-band log-mel.

Both take ``(batch, frames, n_mels)`` log-mel windows (the runtime's input layout) and return class
logits. Input standardisation (per mel band, from the training clips) is part of the network, so
the exported ONNX graph takes raw front-end output.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from streamgenre.features import MelConfig

__all__ = ["CNN_WINDOW", "SEED_MEL", "SEED_WINDOW", "GenreCnn", "SeedNet", "Softmaxed", "Standardize"]

# The seed blog's features: 22.05 kHz, 2048-point FFT, hop 512 (23.2 ms), 128 mel bands in dB.
SEED_MEL = MelConfig(sample_rate=22050, n_fft=2048, hop_length=512, n_mels=128, log="db")
SEED_WINDOW = 4  # frames: 4 hops = 93 ms ("100 ms windows"); three valid k=2 convolutions leave one step
CNN_WINDOW = 128  # frames: 2.97 s


class Standardize(nn.Module):
    """``(x - mean) / std`` per mel band with fixed statistics (set from the training clips)."""

    def __init__(self, n_mels: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_mels))
        self.register_buffer("inv_std", torch.ones(n_mels))

    def fit(self, frames: np.ndarray) -> None:
        """Set the statistics from ``(n, n_mels)`` training frames."""
        mean = frames.mean(axis=0, dtype=np.float64)
        std = frames.std(axis=0, dtype=np.float64)
        self.mean.copy_(torch.from_numpy(mean.astype(np.float32)))
        self.inv_std.copy_(torch.from_numpy((1.0 / np.maximum(std, 1e-3)).astype(np.float32)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) * self.inv_std


class SeedNet(nn.Module):
    """The seed blog's network: 3 x Conv1D(256, k=2) + ReLU -> Dense(1024) + ReLU -> Dropout(0.5) -> Dense.

    Convolutions run along time with the mel bands as channels ("valid" padding, as Keras' default).
    """

    def __init__(self, n_classes: int, n_mels: int = 128, window_frames: int = SEED_WINDOW) -> None:
        super().__init__()
        if window_frames < 4:
            raise ValueError(f"SeedNet needs windows of at least 4 frames, got {window_frames}")
        self.norm = Standardize(n_mels)
        self.convs = nn.Sequential(
            nn.Conv1d(n_mels, 256, 2), nn.ReLU(), nn.Conv1d(256, 256, 2), nn.ReLU(), nn.Conv1d(256, 256, 2), nn.ReLU()
        )
        self.dense = nn.Linear(256 * (window_frames - 3), 1024)
        self.dropout = nn.Dropout(0.5)
        self.out = nn.Linear(1024, n_classes)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.convs(self.norm(mel).transpose(1, 2)).flatten(1)
        return self.out(self.dropout(torch.relu(self.dense(x))))


class GenreCnn(nn.Module):
    """A compact 2-D CNN: four (conv 3x3, batch norm, ReLU, 2x2 max pool) blocks, global mean+max pooling.

    Parameters
    ----------
    n_classes
        Output classes.
    n_mels
        Mel bands of the input.
    channels
        Channels of the four blocks.
    dropout
        Dropout before the classifier.
    """

    def __init__(
        self, n_classes: int, n_mels: int = 128, channels: tuple[int, ...] = (16, 32, 64, 128), dropout: float = 0.3
    ) -> None:
        super().__init__()
        self.norm = Standardize(n_mels)
        layers: list[nn.Module] = []
        previous = 1
        for width in channels:
            layers += [
                nn.Conv2d(previous, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
            previous = width
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(2 * previous, n_classes)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.features(self.norm(mel).unsqueeze(1))  # (B, C, T', M')
        pooled = torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)
        return self.out(self.dropout(pooled))


class Softmaxed(nn.Module):
    """Export wrapper: class probabilities as a one-tuple (the ``genre`` output)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor]:
        return (torch.softmax(self.net(mel), dim=1),)
