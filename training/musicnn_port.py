"""Our PyTorch re-implementation of the musicnn architecture (Pons & Serra, 2019).

It mirrors ``musicnn/models.py`` (``build_musicnn``) layer by layer, in inference mode, and loads
the original TensorFlow checkpoint tensors read by :mod:`training.tf_checkpoint`. Input: log-mel
patches shaped ``(batch, frames, 96)``; the graph is time-length agnostic but the checkpoints
were trained on 187-frame (3 s) patches.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

BN_EPSILON = 1e-3  # tf.compat.v1.layers.batch_normalization default
N_MELS = 96
NUM_FILT_FRONTEND = 1.6
TIMBRAL_FILTERS = int(NUM_FILT_FRONTEND * 128)  # 204
TEMPORAL_FILTERS = int(NUM_FILT_FRONTEND * 32)  # 51
TIMBRAL_HEIGHTS = (int(0.4 * N_MELS), int(0.7 * N_MELS))  # 38, 67 mel bands
TEMPORAL_LENGTHS = (128, 64, 32)  # frames
CONSTANT_FILTER_TOLERANCE = 1e-6  # a filter whose spread is below this share of its block's largest is constant


def _tf_same_padding(kernel: int) -> tuple[int, int]:
    """TensorFlow's 'same' padding along one axis with stride 1: (before, after)."""
    total = kernel - 1
    return total // 2, total - total // 2


class FrozenBatchNorm(nn.Module):
    """Inference-mode batch normalisation over the channel axis ``dim`` as a fused scale and shift."""

    def __init__(self, channels: int, dim: int = 1) -> None:
        super().__init__()
        self.dim = dim
        self.register_buffer("scale", torch.ones(channels))
        self.register_buffer("shift", torch.zeros(channels))

    def load(self, gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray, var: np.ndarray) -> None:
        """Fold TF's (gamma, beta, moving mean, moving variance) into scale and shift."""
        scale = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + BN_EPSILON)
        self.scale.copy_(torch.from_numpy(scale.astype(np.float32)))
        self.shift.copy_(torch.from_numpy((beta - mean * scale).astype(np.float32)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = [1] * x.dim()
        shape[self.dim] = -1
        return x * self.scale.view(shape) + self.shift.view(shape)

    def keep(self, index: torch.Tensor) -> None:
        """Keep the channels ``index`` (in that order), in place."""
        self.scale = self.scale[index].clone()
        self.shift = self.shift[index].clone()


class FrontendBlock(nn.Module):
    """conv -> ReLU -> batch norm -> max over all mel positions, as musicnn's timbral/tempo blocks.

    Batch norm is a per-channel monotonic map, so the max over mel is taken first (of the ReLU
    output when the scale is positive, of its min when negative) and the norm applied to the
    (batch, channels, time) result. ReLU commutes with max and min, and the min of a channel is
    minus the max of the channel with negated weights, so the block convolves with sign-folded
    weights, takes one max over mel and applies ReLU and the norm to that: exactly the original's
    values at a fraction of the cost.
    """

    def __init__(self, filters: int, kernel: tuple[int, int], time_padding: tuple[int, int]) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, filters, kernel)
        self.bn = FrozenBatchNorm(filters)
        self.time_padding = time_padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.unpadded(F.pad(x, (0, 0, *self.time_padding)))

    def _sign(self) -> torch.Tensor:
        return torch.where(self.bn.scale >= 0, 1.0, -1.0)

    def output_spread(self) -> torch.Tensor:
        """Per filter, how far its feature can move per unit of input: ``|bn scale| * sum |weights|``.

        A filter whose spread is zero outputs one constant whatever the input (its weights or its
        norm's scale were driven to zero in training).
        """
        weights = self.conv.weight.detach().double().flatten(1)
        return weights.abs().sum(dim=1) * self.bn.scale.double().abs()

    def constant_features(self) -> torch.Tensor:
        """Each filter's feature when its weights are taken as zero: ``bn(relu(bias))`` (float64)."""
        bias = self.conv.bias.detach().double()
        return F.relu(bias) * self.bn.scale.double() + self.bn.shift.double()

    def keep_filters(self, index: torch.Tensor) -> None:
        """Shrink the block, in place, to the filters ``index`` (in that order)."""
        conv = nn.Conv2d(1, len(index), self.conv.kernel_size)
        with torch.no_grad():
            conv.weight.copy_(self.conv.weight[index])
            conv.bias.copy_(self.conv.bias[index])
        self.conv = conv
        self.bn.keep(index)

    def signed_conv(self, x: torch.Tensor) -> torch.Tensor:
        """The convolution with each filter's sign folded in: ``(B, filters, frames, positions)``."""
        sign = self._sign()
        return F.conv2d(x, self.conv.weight * sign.view(-1, 1, 1, 1), self.conv.bias * sign)

    def unpadded(self, x: torch.Tensor) -> torch.Tensor:
        """The block on input the caller already padded (or cut) along time: 'valid' convolution."""
        return self.readout(self.signed_conv(x))

    def readout(self, pre: torch.Tensor) -> torch.Tensor:
        """Max over mel -> ReLU -> batch norm of sign-folded pre-activations ``(B, filters, frames, positions)``:
        the block's ``(B, filters, frames)`` features."""
        return self.bn(F.relu(pre.amax(dim=3) * self._sign().view(1, -1, 1)))

    def partial(self, x: torch.Tensor, frames: torch.Tensor | int) -> torch.Tensor:
        """Sign-folded pre-activations (bias included) of ``frames`` output frames of a temporal
        (``(L, 1)``-kernel) block from normalised frames ``x`` ``(B, m, n_mels)`` followed by zeros:
        output ``f`` covers input frames ``[f, f + L)``, those from ``m`` on being zero. Laid out
        ``(filters * frames, B * n_mels)`` (the batch along the columns), as :meth:`add_taps` takes it."""
        length, m = self.conv.weight.shape[2], x.shape[1]
        index = torch.arange(frames + length - 1)
        index = torch.where(index < m, index, torch.full_like(index, m))  # m: the appended zero frame
        padded = torch.cat([x, torch.zeros_like(x[:, :1])], dim=1)[:, index]
        pre = self.signed_conv(padded.unsqueeze(1))  # (B, filters, frames, n_mels)
        # explicit sizes, no -1, so that an empty batch stays empty (the exported Reshape gets allowzero)
        return pre.permute(1, 2, 0, 3).reshape(pre.shape[1] * pre.shape[2], x.shape[0] * x.shape[2])

    def add_taps(self, partial: torch.Tensor, x: torch.Tensor, offset: int) -> torch.Tensor:
        """A :meth:`partial` plus the terms of later input frames, read out: ``(B, filters, frames)`` features.

        ``x`` ``(B, m, n_mels)`` holds the normalised input frames the partial lacks; output frame
        ``f`` of the partial gets ``sum_j w[j - f + offset] x[j]`` over the taps inside the kernel,
        added by one matrix product into the partial (batch along its columns), then ReLU, max over
        mel and batch norm as in :meth:`readout`.
        """
        filters, length = self.conv.weight.shape[0], self.conv.weight.shape[2]
        batch, m, n_mels = x.shape
        frames = partial.shape[0] // filters
        signed = (self.conv.weight[:, 0, :, 0] * self._sign().view(-1, 1)).t()
        table = torch.cat([signed, signed.new_zeros(1, filters)])  # (L + 1, filters); row L is 0
        tap = torch.arange(m).unsqueeze(0) - torch.arange(frames).unsqueeze(1) + offset  # (frames, m)
        tap = torch.where((tap >= 0) & (tap < length), tap, torch.full_like(tap, length))
        kernel = table[tap].permute(2, 0, 1).reshape(filters * frames, m)  # rows gathered, then moved
        columns = x.transpose(0, 1).reshape(m, batch * n_mels)
        pre = torch.addmm(partial, kernel, columns).reshape(filters, frames, batch, n_mels)
        return self.bn(F.relu(pre.amax(dim=3).permute(2, 0, 1) * self._sign().view(1, -1, 1)))


class Musicnn(nn.Module):
    """musicnn (``build_musicnn``): musically motivated front end, dense mid end, pooled back end.

    ``forward`` returns ``(tags, embedding, max_pool, mean_pool)``: sigmoid tag probabilities,
    the 200-unit batch-normed penultimate layer (the embedding), and the two 753-d temporal
    poolings of the mid-end features. :meth:`embed` stops at the embedding (for heads trained on it).
    """

    def __init__(self, num_classes: int = 50, midend_filters: int = 64, backend_units: int = 200) -> None:
        super().__init__()
        self.input_bn = FrozenBatchNorm(1)
        self.timbral = nn.ModuleList(
            FrontendBlock(TIMBRAL_FILTERS, (7, height), (3, 3)) for height in TIMBRAL_HEIGHTS
        )
        self.temporal = nn.ModuleList(
            FrontendBlock(TEMPORAL_FILTERS, (length, 1), _tf_same_padding(length)) for length in TEMPORAL_LENGTHS
        )
        frontend_channels = len(TIMBRAL_HEIGHTS) * TIMBRAL_FILTERS + len(TEMPORAL_LENGTHS) * TEMPORAL_FILTERS
        self.midend = nn.ModuleList([
            nn.Conv1d(frontend_channels, midend_filters, 7, padding=3),
            nn.Conv1d(midend_filters, midend_filters, 7, padding=3),
            nn.Conv1d(midend_filters, midend_filters, 7, padding=3),
        ])
        self.midend_bn = nn.ModuleList(FrozenBatchNorm(midend_filters) for _ in range(3))
        pooled = 2 * (frontend_channels + 3 * midend_filters)
        self.pool_bn = FrozenBatchNorm(pooled)
        self.dense = nn.Linear(pooled, backend_units)
        self.dense_bn = FrozenBatchNorm(backend_units)
        self.output = nn.Linear(backend_units, num_classes)
        self.frontend_channels = frontend_channels
        # Set by prune_constant_filters: the features of the filters removed, and where every original
        # front-end channel sits in (kept channels, removed channels).
        self.register_buffer("constant_front", torch.zeros(0))
        self.register_buffer("front_order", torch.arange(frontend_channels))

    @property
    def pruned(self) -> bool:
        """Whether :meth:`prune_constant_filters` removed front-end filters."""
        return self.constant_front.numel() > 0

    def prune_constant_filters(self, tolerance: float = CONSTANT_FILTER_TOLERANCE) -> dict[str, int]:
        """Drop, in place, the front-end filters whose features are constant, keeping the model's outputs.

        A front-end filter whose :meth:`FrontendBlock.output_spread` is at most ``tolerance`` times
        its block's largest gives the same feature for every input (``bn(relu(bias))``); training
        drove most of musicnn's there (MSD_musicnn keeps 64 of its 561). The block stops computing
        them; the first mid-end layer gets their summed contribution as the weights of one extra
        input channel of ones (:meth:`_mid_input`), which the window's zero padding reaches exactly
        as it reaches the features; the pooled outputs get their constant back in place. Outputs are
        unchanged but for the dropped spread (below ``tolerance``) and float rounding.

        Returns
        -------
        dict
            Block name -> filters kept.
        """
        if self.pruned:
            raise ValueError("the model is already pruned")
        kept_rows, constant_rows, constants, kept = [], [], [], {}
        row = 0
        names = [f"timbral{h}" for h in TIMBRAL_HEIGHTS] + [f"temporal{length}" for length in TEMPORAL_LENGTHS]
        for name, block in zip(names, [*self.timbral, *self.temporal], strict=True):
            spread = block.output_spread()
            live = spread > tolerance * spread.max()
            live[spread.argmax()] = True  # (a block keeps one filter even if all are constant)
            index = torch.nonzero(live).flatten()
            kept_rows.append(row + index)
            constant_rows.append(row + torch.nonzero(~live).flatten())
            constants.append(block.constant_features()[~live])
            block.keep_filters(index)
            kept[name] = len(index)
            row += len(live)
        kept_rows, constant_rows = torch.cat(kept_rows), torch.cat(constant_rows)
        constant = torch.cat(constants)
        first = self.midend[0]
        weight = first.weight.detach().double()
        ones_weights = (weight[:, constant_rows] * constant.view(1, -1, 1)).sum(dim=1, keepdim=True)
        conv = nn.Conv1d(len(kept_rows) + 1, first.out_channels, first.kernel_size, padding=first.padding)
        with torch.no_grad():
            conv.weight.copy_(torch.cat([weight[:, kept_rows], ones_weights], dim=1).float())
            conv.bias.copy_(first.bias)
        self.midend[0] = conv
        order = torch.empty(self.frontend_channels, dtype=torch.int64)
        order[torch.cat([kept_rows, constant_rows])] = torch.arange(self.frontend_channels)
        self.front_order = order
        self.constant_front = constant.float()
        return kept

    def _mid_input(self, front: torch.Tensor) -> torch.Tensor:
        """The first mid-end layer's input: the front-end features, and a channel of ones once pruned."""
        return torch.cat([front, torch.ones_like(front[:, :1])], dim=1) if self.pruned else front

    def _full_front(self, pooled: torch.Tensor) -> torch.Tensor:
        """A pooling of the kept front-end channels with the removed ones' constants back in place."""
        if not self.pruned:
            return pooled
        constant = self.constant_front.view(1, -1).expand(pooled.shape[0], -1)
        return torch.cat([pooled, constant], dim=1)[:, self.front_order]

    def forward(self, patches: torch.Tensor) -> tuple[torch.Tensor, ...]:
        embedding, max_pool, mean_pool = self.embed(patches)
        return torch.sigmoid(self.output(embedding)), embedding, max_pool, mean_pool

    def embed(self, patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(embedding, max_pool, mean_pool)`` of ``(batch, frames, 96)`` log-mel patches."""
        x = self.input_bn(patches.unsqueeze(1))  # (B, 1, T, 96)
        timbral = torch.cat([block(x) for block in self.timbral], dim=1)  # (B, 408, T)
        return self.embed_with_front(torch.cat([timbral, *[block(x) for block in self.temporal]], dim=1))

    def timbral_valid(self, padded: torch.Tensor) -> torch.Tensor:
        """Timbral features of normalised input already padded/cut along time: ``(B, 408, T - 6)``."""
        return torch.cat([block.unpadded(padded) for block in self.timbral], dim=1)

    def embed_with_front(self, front: torch.Tensor, mid_cache: torch.Tensor | None = None,
                         known: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """Mid end and back end on the ``(B, C, T)`` front-end features (C = 561, or the kept channels once
        pruned): (embedding, max_pool, mean_pool), the poolings always over all 753 channels.

        With ``mid_cache`` ``(B, 192, T)`` (the three mid-end layers' outputs, stacked) and ``known``
        (int64 scalar ``K``), layer ``j``'s outputs of frames ``[0, K - 3 j)`` are taken from the cache
        (see :meth:`midend_prefix`) and only the later frames are computed.
        """
        features = [front]
        h = self._mid_input(front)
        for index, (conv, bn) in enumerate(zip(self.midend, self.midend_bn, strict=True)):
            if mid_cache is None:
                out = bn(F.relu(conv(h)))
                h = out if index == 0 else out + h
            else:
                start = torch.clamp(known - MIDEND_CONTEXT * (index + 1), min=0)
                padded = F.pad(h, (MIDEND_CONTEXT, MIDEND_CONTEXT))[:, :, start:]
                out = bn(F.relu(F.conv1d(padded, conv.weight, conv.bias)))  # frames [start, T)
                if index > 0:
                    out = out + h[:, :, start:]
                rows = slice(index * conv.out_channels, (index + 1) * conv.out_channels)
                h = torch.cat([mid_cache[:, rows, :start], out], dim=2)
            features.append(h)
        mid = torch.cat(features, dim=1)  # (B, 753, T); fewer front-end channels once pruned
        front_rows = front.shape[1]
        max_pool, mean_pool = (torch.cat([self._full_front(pool[:, :front_rows]), pool[:, front_rows:]], dim=1)
                               for pool in (mid.amax(dim=2), mid.mean(dim=2)))
        # TF concatenates (B, 753, 1) poolings on the last axis and flattens: channels interleave.
        flat = self.pool_bn(torch.stack([max_pool, mean_pool], dim=2).flatten(1))
        embedding = self.dense_bn(F.relu(self.dense(flat)))
        return embedding, max_pool, mean_pool


    def midend_prefix(self, front: torch.Tensor) -> torch.Tensor:
        """The mid-end layers on a window's first ``n`` frames of front-end features ``(B, C, n)``.

        Returns ``(B, 192, n)``: layer ``j`` (1..3) holds its outputs of frames ``[0, n - 3 j)`` (they
        see the window's start padding but none of the frames after ``n``), zeros after them.
        """
        n = front.shape[2]
        h, layers = self._mid_input(front), []
        for index, (conv, bn) in enumerate(zip(self.midend, self.midend_bn, strict=True)):
            out = bn(F.relu(F.conv1d(F.pad(h, (MIDEND_CONTEXT, 0)), conv.weight, conv.bias)))
            h = out if index == 0 else out + h[:, :, : out.shape[2]]
            layers.append(F.pad(h, (0, n - h.shape[2])))
        return torch.cat(layers, dim=1)


MIDEND_CONTEXT = 3  # frames of context each side of a mid-end output (7-frame kernels)


def _bn_tensors(weights: Mapping[str, np.ndarray], name: str) -> tuple[np.ndarray, ...]:
    return tuple(weights[f"{name}/{part}"] for part in ("gamma", "beta", "moving_mean", "moving_variance"))


def load_musicnn_weights(model: Musicnn, weights: Mapping[str, np.ndarray]) -> None:
    """Copy the checkpoint tensors (TF variable names) into ``model``.

    The TF graph creates its layers in a fixed order, which fixes their automatic names:
    input BN, then (conv, BN) for the 38- and 67-band timbral and the 128/64/32-frame temporal
    blocks, then the three mid-end (conv, BN) pairs, the pooled BN, dense + BN, and the output.

    Raises
    ------
    KeyError
        When a tensor is missing. ValueError when a shape does not match.
    """
    expected = {f"conv2d{'' if i == 0 else f'_{i}'}" for i in range(8)}
    missing = sorted(name for name in expected if f"{name}/kernel" not in weights)
    if missing:
        raise KeyError(f"checkpoint lacks musicnn tensors: {missing}")

    def conv(i: int) -> tuple[np.ndarray, np.ndarray]:
        prefix = "conv2d" if i == 0 else f"conv2d_{i}"
        return weights[f"{prefix}/kernel"], weights[f"{prefix}/bias"]

    def bn(i: int) -> tuple[np.ndarray, ...]:
        return _bn_tensors(weights, "batch_normalization" if i == 0 else f"batch_normalization_{i}")

    def put(param: torch.Tensor, value: np.ndarray) -> None:
        if tuple(param.shape) != value.shape:
            raise ValueError(f"shape mismatch: model {tuple(param.shape)} vs checkpoint {value.shape}")
        param.copy_(torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)))

    with torch.no_grad():
        model.input_bn.load(*bn(0))
        for i, block in enumerate([*model.timbral, *model.temporal]):
            kernel, bias = conv(i)
            put(block.conv.weight, kernel.transpose(3, 2, 0, 1))  # [kh, kw, in, out] -> [out, in, kh, kw]
            put(block.conv.bias, bias)
            block.bn.load(*bn(i + 1))
        for j, (layer, norm) in enumerate(zip(model.midend, model.midend_bn, strict=True)):
            kernel, bias = conv(5 + j)  # [7, channels, 1, out]
            put(layer.weight, kernel[:, :, 0, :].transpose(2, 1, 0))
            put(layer.bias, bias)
            norm.load(*bn(6 + j))
        model.pool_bn.load(*bn(9))
        put(model.dense.weight, weights["dense/kernel"].T)
        put(model.dense.bias, weights["dense/bias"])
        model.dense_bn.load(*bn(10))
        put(model.output.weight, weights["dense_1/kernel"].T)
        put(model.output.bias, weights["dense_1/bias"])


TIMBRAL_CONTEXT = (3, 3)  # frames of context before/after a timbral feature (7-frame kernels)


class StreamingMusicnn(nn.Module):
    """musicnn (optionally with a head on its embedding) split so a stream computes each frame's
    front-end features once, and nearly all of a window's work before the window is complete.

    A frame's timbral features depend only on the frames three either side of it; its features
    from a temporal kernel of ``L`` frames on the ``L // 2 - 1`` frames before and ``L // 2``
    after it. Inside a window those features are the same in every window that holds the frame's
    whole context, so a stream computes them once, as soon as the context has arrived. Only the
    frames near a window's edges see its zero padding: the first ``before`` frames of a feature
    group depend on the window's first ``before + after`` frames alone (known long before the
    window ends), the last ``after`` frames on its newest ones. A temporal convolution is linear
    before its ReLU, so the terms of the frames a stream already has (the "partial") are summed
    before the window's newest ``fresh`` frames arrive, and the window only adds theirs.

    The graph therefore has independent parts, which the runtime runs on their own. Per feature
    group (:meth:`parts`: timbral, then the 128-, 64- and 32-frame temporal blocks): ``frames``
    ``(B, n, 96)`` -> its features of frames ``[before, n - after)``; ``left`` frames
    ``(B, before + after, 96)`` -> its features of a window's first ``before`` frames; and, for a
    temporal group, ``partial`` frames ``(B, before + after, 96)`` (the ones preceding a window's
    last ``fresh`` frames) -> the pre-activations their taps give the window's last
    ``fresh + after`` frames. The window: ``mel`` ``(B, T, 96)``, ``front_cache`` ``(B, C, T)`` (C:
    the channels of :meth:`parts`) holding each group's features of frames ``[0, T - fresh - after)``
    (other columns are ignored),
    the mid-end cache, ``fresh`` and the temporal groups' partials -> the wrapped model's outputs,
    then each group's features of frames ``[T - fresh - after, T - after)`` (now complete: a
    stream keeps them). Running the parts on a window and then the window computation gives the
    full model's result (to float rounding).
    """

    def __init__(self, backbone: Musicnn, head: nn.Module | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def parts(self) -> list[tuple[str, int, tuple[int, int], bool]]:
        """``(name, channels, (before, after), has_partial)`` of each feature group, in cache order (the
        channels the backbone computes: fewer than musicnn's 408 and 51 once it is pruned)."""
        timbral = sum(block.conv.out_channels for block in self.backbone.timbral)
        temporal = [(f"temporal{length}", block.conv.out_channels, _tf_same_padding(length), True)
                    for length, block in zip(TEMPORAL_LENGTHS, self.backbone.temporal, strict=True)]
        return [("timbral", timbral, TIMBRAL_CONTEXT, False), *temporal]

    def partial_example(self, fresh: int) -> tuple[torch.Tensor, ...]:
        """Zero tensors shaped like the temporal groups' partials for ``fresh`` new frames (for export)."""
        return tuple(torch.zeros(channels * (fresh + after), N_MELS)
                     for _, channels, (_, after), partial in self.parts() if partial)

    def _groups(self) -> list[tuple[nn.Module | None, tuple[int, int]]]:
        """(block, time padding) per feature group; None stands for both timbral blocks."""
        return [(None, TIMBRAL_CONTEXT), *((block, block.time_padding) for block in self.backbone.temporal)]

    def _valid(self, block: nn.Module | None, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.timbral_valid(x) if block is None else block.unpadded(x)

    def forward(self, mel: torch.Tensor, front_cache: torch.Tensor, mid_cache: torch.Tensor, mid_known: torch.Tensor,
                fresh: torch.Tensor, front_prefix: torch.Tensor, *frames: torch.Tensor) -> tuple[torch.Tensor, ...]:
        groups = self._groups()
        temporal = [(block, padding) for block, padding in groups if block is not None]
        count = len(groups)
        interior, left = frames[:count], frames[count:2 * count]
        known, partials = frames[2 * count:2 * count + len(temporal)], frames[2 * count + len(temporal):]
        bn = self.backbone.input_bn
        chunks = [self._valid(block, bn(f.unsqueeze(1))) for (block, _), f in zip(groups, interior, strict=True)]
        edges = [self._valid(block, F.pad(bn(f.unsqueeze(1)), (0, 0, before, 0)))
                 for (block, (before, _)), f in zip(groups, left, strict=True)]
        terms = [block.partial(bn(f.unsqueeze(1))[:, 0], fresh + after)
                 for (block, (_, after)), f in zip(temporal, known, strict=True)]
        return (*self.window(mel, front_cache, mid_cache, mid_known, fresh, *partials), *chunks, *edges, *terms,
                self.backbone.midend_prefix(front_prefix))

    def window(self, mel: torch.Tensor, front_cache: torch.Tensor, mid_cache: torch.Tensor, mid_known: torch.Tensor,
               fresh: torch.Tensor, *partials: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The wrapped model's outputs for ``mel`` windows, then the features of frames ``[T - fresh - after,
        T - after)`` of each group; all but the last ``fresh + after`` frames come from ``front_cache``, the
        temporal groups' terms of frames before the last ``fresh`` from ``partials``, and the mid end's first
        ``mid_known``-dependent frames from ``mid_cache``."""
        frames = mel.shape[1]
        x = self.backbone.input_bn(mel.unsqueeze(1))
        newest = x[:, 0, frames - fresh:]
        pending = iter(partials)
        groups, completed, row = [], [], 0
        for (block, (before, after)), (_, channels, _, _) in zip(self._groups(), self.parts(), strict=True):
            start = frames - fresh - after  # first frame computed here
            if block is None:
                features = self._valid(None, F.pad(x[:, :, start - before:], (0, 0, 0, after)))
            else:
                features = block.add_taps(next(pending), newest, before + after)
            groups.append(torch.cat([front_cache[:, row:row + channels, :start], features], dim=2))
            completed.append(features[:, :, :fresh])
            row += channels
        front = torch.cat(groups, dim=1)
        embedding, max_pool, mean_pool = self.backbone.embed_with_front(front, mid_cache, mid_known)
        tags = torch.sigmoid(self.backbone.output(embedding))
        outputs = (tags, embedding, max_pool, mean_pool)
        if self.head is not None:
            outputs = (self.head(embedding), *outputs)
        return (*outputs, torch.cat(completed, dim=1))
