"""Inference runtime: load an ONNX model with its contract and run it on mel windows.

One :class:`GenreModel` (its onnxruntime sessions) is shared by every stream; it holds no
per-stream state, so any number of streams may call :meth:`GenreModel.predict`. A streaming
model's per-frame feature computations and its window computation run as separate sessions
(each pruned from the one graph), so a stream computes each frame's features once, prepares a
window's first frames, the partial sums of its last frames and its mid end's first frames before
it is due, and the window's own call only adds its newest frames (see :class:`StreamCache`).
"""

from __future__ import annotations

import ctypes
import logging
import os
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from streamgenre.contract import METADATA_KEY, ModelContract, StreamingSpec, parse_contract
from streamgenre.errors import ConfigError, ModelError
from streamgenre.features import MelConfig

log = logging.getLogger(__name__)

DEFAULT_MODEL = "gtzan_musicnn.onnx"
PROVIDERS = ("auto", "cpu", "cuda")


def bundled_model_path(name: str = DEFAULT_MODEL) -> Path:
    """Path of a model shipped in the package (``models/`` in the source tree)."""
    return Path(str(resources.files("streamgenre.models").joinpath(name)))


def cuda_device_count() -> int:
    """Number of CUDA devices the driver reports, 0 when there is no usable driver or GPU.

    ``onnxruntime.get_available_providers()`` lists CUDA whenever the GPU package is installed,
    GPU or not, so it proves nothing; the driver API does.
    """
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            driver = ctypes.CDLL(name)
        except OSError:
            continue
        count = ctypes.c_int(0)
        try:
            if driver.cuInit(0) != 0 or driver.cuDeviceGetCount(ctypes.byref(count)) != 0:
                return 0
        except AttributeError:
            return 0
        return count.value
    return 0


def _session_options(threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: no warning spam on CPU-only machines
    # Idle pool threads sleep instead of spinning: a real-time stream must not burn a core between windows.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def _first_line(exc: Exception) -> str:
    """An exception's message cut to one line of at most 200 characters (its type when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _create_session(path: Path, provider: str, threads: int, model_bytes: bytes | None = None) -> Any:
    import onnxruntime as ort

    if provider not in PROVIDERS:
        raise ConfigError(f"unknown provider {provider!r}: choose one of {', '.join(PROVIDERS)}")
    want_cuda = provider == "cuda" or (provider == "auto" and "CUDAExecutionProvider"
                                       in ort.get_available_providers() and cuda_device_count() > 0)
    if provider == "cuda" and "CUDAExecutionProvider" not in ort.get_available_providers():
        raise ConfigError("--provider cuda: this onnxruntime build has no CUDA support (install onnxruntime-gpu)")
    if provider == "cuda" and cuda_device_count() == 0:
        raise ConfigError("--provider cuda: no usable CUDA device (no NVIDIA driver or GPU found)")
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if want_cuda else ["CPUExecutionProvider"]
    if want_cuda and hasattr(ort, "preload_dlls"):
        try:  # CUDA/cuDNN from the nvidia-* wheels, when present
            ort.preload_dlls()
        except Exception as exc:
            log.debug("onnxruntime.preload_dlls failed: %s", exc)
    try:
        session = ort.InferenceSession(str(path) if model_bytes is None else model_bytes,
                                       sess_options=_session_options(threads), providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        raise ModelError(f"{path}: not a loadable ONNX model ({_first_line(exc)})") from None
    if want_cuda and session.get_providers()[0] != "CUDAExecutionProvider":
        if provider == "cuda":
            raise ConfigError("--provider cuda: CUDA libraries (CUDA 12 runtime, cuDNN 9) could not be loaded")
        log.info("CUDA device present but the CUDA provider could not start; using CPU")
    return session


MAX_FRESH_FRAMES = 16  # a window is prepared when it is due within this many frames (its call computes them)
MID_MIN_KNOWN = 24  # ... and its mid end's first frames only when at least this many front-end columns are known


class StreamCache:
    """One stream's reusable model state, owned by the stream: its frames' front-end features.

    A streaming model's features of a frame depend only on nearby frames, so they are computed
    once per stream frame and kept here (a ring indexed by stream frame) until no window can
    need them. So is the work done for the next window before it is due: its first frames'
    features, the partial sums of its last frames, and its mid end's first frames. Pass the same
    object with each window of a stream to :meth:`GenreModel.predict_stream` (and, between
    windows, :meth:`GenreModel.prepare_stream`); call :meth:`reset` when the stream restarts. The
    shared model sessions hold no stream state.
    """

    __slots__ = ("features", "left", "left_start", "mid", "mid_known", "mid_start", "partial_end", "partial_fresh",
                 "partials", "scratch", "valid", "window_in", "window_in_end")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget the stream's frames."""
        self.features: np.ndarray | None = None  # (channels, ring) float32
        self.valid: list[tuple[int, int]] = []  # per feature part: stream frames [lo, hi) held
        self.left: np.ndarray | None = None  # (1, channels, window frames): first frames of the next window
        self.left_start: int | None = None  # stream frame where that window starts
        self.mid: np.ndarray | None = None  # (1, mid channels, window frames): its mid end's first frames
        self.mid_known = 0  # front-end columns those were computed from
        self.mid_start: int | None = None  # stream frame where that window starts
        self.partials: list[np.ndarray] = []  # per part with a partial: its known terms of the window's last frames
        self.partial_end: int | None = None  # stream frame where that window ends
        self.partial_fresh = 0  # its frames those terms lack
        self.scratch: np.ndarray | None = None  # reused for the model's front-end input (no 0.4 MB allocation a call)
        self.window_in: np.ndarray | None = None  # the prepared window's front-end input, gathered ahead
        self.window_in_end: int | None = None  # stream frame where that window ends

    def front_input(self, channels: int, frames: int) -> np.ndarray:
        """A reusable ``(1, channels, frames)`` C-contiguous float32 array (contents undefined)."""
        if self.scratch is None or self.scratch.size < channels * frames:
            self.scratch = np.empty(channels * frames, np.float32)
        return self.scratch[: channels * frames].reshape(1, channels, frames)


class GenreModel:
    """An ONNX model with a validated contract.

    Attributes
    ----------
    path
        The model file.
    contract
        Parsed metadata (labels, MelConfig, window length, provenance).
    provider
        The execution provider actually in use (``"CUDAExecutionProvider"`` or ``"CPUExecutionProvider"``).
    threads
        Intra-op threads of the session.
    """

    def __init__(self, path: Path, session: Any, contract: ModelContract, threads: int,
                 parts: dict[str, Any] | None = None) -> None:
        self.path = path
        self.contract = contract
        self.threads = threads
        self._session = session  # streaming models: the window computation only
        parts = parts or {}
        self._features_session = parts.get("features")  # streaming models: feature parts, left edges, partials
        self._prefix_session = parts.get("prefix")  # ... the mid end on a window's first frames
        self.provider: str = session.get_providers()[0]
        self.output_names = list(contract.outputs)
        spec = contract.streaming
        if spec is not None and None in (self._features_session, self._prefix_session):
            raise ValueError("a streaming model needs its feature and mid-end prefix sessions")
        self._ring = 2 * contract.window_frames  # stream frames a StreamCache holds
        self._offsets = [] if spec is None else list(np.cumsum([0, *(p.channels for p in spec.parts)]))
        self._split = () if spec is None else spec.partial_parts
        # the most fresh frames a window may leave to its own call (its edges must not meet)
        widest = 0 if spec is None else max(p.before + p.after for p in spec.parts)
        self._max_fresh = contract.window_frames - widest - 1

    @property
    def name(self) -> str:
        """Model name from its metadata."""
        return self.contract.name

    @property
    def mel_config(self) -> MelConfig:
        """The front end the model expects."""
        return self.contract.mel_config

    @property
    def window_frames(self) -> int:
        """Mel frames per window."""
        return self.contract.window_frames

    @property
    def window_seconds(self) -> float:
        """Duration one window covers, in seconds."""
        cfg = self.mel_config
        return ((self.window_frames - 1) * cfg.hop_length + cfg.n_fft) / cfg.sample_rate

    @property
    def labels(self) -> tuple[str, ...]:
        """Genre labels, in the order of :meth:`genre_scores` columns."""
        return self.contract.genre_labels

    @property
    def genre_kind(self) -> str:
        """``"softmax"`` or ``"sigmoid"``: how the genre scores should be read."""
        return self.contract.outputs[self.contract.genre_output].kind

    @property
    def streaming(self) -> StreamingSpec | None:
        """How the model reuses work between overlapping windows (None: it cannot)."""
        return self.contract.streaming

    def _validate_windows(self, windows: np.ndarray) -> np.ndarray:
        windows = np.asarray(windows)
        if windows.ndim == 2:
            windows = windows[None]
        expected = (self.window_frames, self.mel_config.n_mels)
        if windows.ndim != 3 or windows.shape[1:] != expected:
            raise ValueError(f"windows must be shaped (batch, {expected[0]}, {expected[1]}), got {windows.shape}")
        if windows.shape[0] == 0:
            raise ValueError("windows batch is empty")
        if not np.issubdtype(windows.dtype, np.floating):
            raise TypeError(f"windows must be floating point, got {windows.dtype}")
        return np.ascontiguousarray(windows, dtype=np.float32)

    def _output_names(self, outputs: list[str] | None) -> list[str]:
        names = outputs or self.output_names
        unknown = [n for n in names if n not in self.output_names]
        if unknown:
            raise ValueError(f"unknown model outputs {unknown}; the model has {self.output_names}")
        return list(names)

    def _run(self, windows: np.ndarray, names: list[str], cache: np.ndarray | None = None,
             partials: list[np.ndarray] | None = None, fresh: int = 1, mid: np.ndarray | None = None,
             known: int = 0) -> tuple[list[np.ndarray], np.ndarray | None]:
        """The window computation: the requested outputs and (streaming models) the fresh frames' features."""
        feeds = {self.contract.input_name: windows}
        spec = self.contract.streaming
        if spec is None:
            return self._session.run(names, feeds), None
        feeds[spec.cache_input] = cache
        feeds[spec.mid.cache_input] = mid if mid is not None else np.zeros(
            (len(windows), spec.mid.channels, self.window_frames), np.float32)
        feeds[spec.mid.known_input] = np.array(known, np.int64)
        feeds[spec.fresh_input] = np.array(fresh, np.int64)
        for part, terms in zip(self._split, partials, strict=True):
            feeds[part.partial_window_input] = terms
        *out, completed = self._session.run([*names, spec.fresh_output], feeds)
        return out, completed

    def _empty(self, frames: int) -> np.ndarray:
        return np.zeros((0, frames, self.mel_config.n_mels), np.float32)

    def _features(self, frames: list[np.ndarray | None], lefts: np.ndarray | None = None,
                  known: np.ndarray | None = None, fresh: int = 1
                  ) -> tuple[list[np.ndarray | None], np.ndarray | None, list[np.ndarray] | None]:
        """One call of the feature computations, each only where it has input (the rest run on empty batches).

        Part ``i`` on ``frames[i]`` (``(batch, n_i, n_mels)``) gives ``(batch, channels_i, n_i - before_i
        - after_i)``; ``lefts`` (``(batch, ≥ before + after, n_mels)``, a window's first frames) gives every
        part's left edge, stacked as a ``(batch, channels, max before)`` array (part ``i`` in its first
        ``before_i`` columns); ``known`` (a window's frames before its last ``fresh``) gives the partials.
        """
        spec = self.contract.streaming
        feeds = {part.input: f if f is not None else self._empty(part.before + part.after + 1)
                 for part, f in zip(spec.parts, frames, strict=True)}
        for part in spec.parts:
            width = part.before + part.after
            feeds[part.left_input] = self._empty(width) if lefts is None else np.ascontiguousarray(lefts[:, :width])
        for part in self._split:
            width = part.before + part.after
            feeds[part.partial_input] = self._empty(width) if known is None else np.ascontiguousarray(
                known[:, known.shape[1] - width:])
        feeds[spec.fresh_input] = np.array(fresh, np.int64)
        out = self._features_session.run(spec.feature_outputs, feeds)
        count = len(spec.parts)
        features = [o if f is not None else None for o, f in zip(out[:count], frames, strict=True)]
        left = None
        if lefts is not None:
            left = np.zeros((len(lefts), spec.channels, max(p.before for p in spec.parts)), np.float32)
            for i, (part, edge) in enumerate(zip(spec.parts, out[count:2 * count], strict=True)):
                left[:, self._offsets[i]:self._offsets[i + 1], : part.before] = edge
        return features, left, (None if known is None else out[2 * count:])

    def _copy_left(self, source: np.ndarray, target: np.ndarray) -> None:
        """Copy each part's window-start columns (``[..., rows, :before]``) from ``source`` to ``target``."""
        for j, part in enumerate(self.contract.streaming.parts):
            rows = slice(self._offsets[j], self._offsets[j + 1])
            target[..., rows, : part.before] = source[..., rows, : part.before]

    def _window_features(self, windows: np.ndarray, fresh: int = 1) -> tuple[np.ndarray, list[np.ndarray]]:
        """The cache and partial inputs of windows computed from the windows alone (no stream history)."""
        spec = self.contract.streaming
        frames = self.window_frames
        cache = np.zeros((len(windows), spec.channels, frames), np.float32)
        features, left, partials = self._features([windows] * len(spec.parts), windows, windows[:, : frames - fresh],
                                                  fresh)
        for i, (part, values) in enumerate(zip(spec.parts, features, strict=True)):
            cache[:, self._offsets[i]:self._offsets[i + 1], part.before:frames - part.after] = values
        self._copy_left(left, cache)
        return cache, partials

    def predict(self, windows: np.ndarray, outputs: list[str] | None = None) -> dict[str, np.ndarray]:
        """Run the model on a batch of windows (each computed in full).

        Parameters
        ----------
        windows
            ``(batch, window_frames, n_mels)`` log-mel windows (float32; other float dtypes are
            converted). A single ``(window_frames, n_mels)`` window is accepted as a batch of one.
        outputs
            Output names to compute (default: every output the contract describes).

        Returns
        -------
        dict
            Output name -> ``(batch, ...)`` float32 array.
        """
        windows = self._validate_windows(windows)
        names = self._output_names(outputs)
        if self.contract.streaming is None:
            return dict(zip(names, self._run(windows, names)[0], strict=True))
        cache, partials = self._window_features(windows)
        return dict(zip(names, self._run(windows, names, cache, partials)[0], strict=True))

    def prepare_stream(self, cache: StreamCache, frames: np.ndarray, end_frame: int,
                       next_end_frame: int | None = None) -> None:
        """Compute the features of a stream's newest frames, and the next window's work that they allow.

        Call it between windows (for example after every audio block, or once shortly before a
        window is due): the next :meth:`predict_stream` then only computes what the newest frames
        add. Given ``next_end_frame``, it also computes that window's first frames' features as
        soon as they are in, and, once the window is due within :data:`MAX_FRESH_FRAMES` frames,
        the partial sums of its last frames and its mid end's first frames, so the window's own
        call is left with its newest frames only. A no-op for models without a streaming section.

        Parameters
        ----------
        cache
            The stream's cache (updated in place).
        frames
            ``(n, n_mels)``: the stream's latest consecutive frames (at most ``window_frames`` are used).
        end_frame
            Stream frame index (exclusive) where ``frames`` end.
        next_end_frame
            Where the stream's next window will end, when known.
        """
        spec = self.contract.streaming
        if spec is None:
            return
        frames = np.asarray(frames, np.float32)
        if frames.ndim != 2 or frames.shape[1] != self.mel_config.n_mels:
            raise ValueError(f"frames must be shaped (n, {self.mel_config.n_mels}), got {frames.shape}")
        end = int(end_frame)
        if end < len(frames):
            raise ValueError(f"end_frame {end} is before the {len(frames)} frames given")
        frames = frames[-self.window_frames:]
        first = end - len(frames)
        todo, inputs = self._interior(cache, frames, end)
        lefts = known = None
        start = fresh = 0
        if next_end_frame is not None:
            next_end = int(next_end_frame)
            start, fresh = next_end - self.window_frames, next_end - end
            width = max(p.before + p.after for p in spec.parts)
            if cache.left_start != start and first <= start and start + width <= end:
                lefts = frames[None, start - first:start - first + width]
            width = max((p.before + p.after for p in self._split), default=0)
            if 0 < fresh <= min(MAX_FRESH_FRAMES, self._max_fresh) and 0 <= start and end - width >= first \
                    and cache.partial_end != next_end:  # (a window ending before a whole window is padded)
                known = frames[None]
        if not todo and lefts is None and known is None:
            return
        features, left, partials = self._features(inputs, lefts, known, max(fresh, 1))
        self._store(cache, todo, features)
        if left is not None:
            cache.left, cache.left_start = left, start
        if partials is not None:
            cache.partials, cache.partial_end, cache.partial_fresh = partials, start + self.window_frames, fresh
            self._prepare_mid(cache, start + self.window_frames, fresh)
            self._gather_ahead(cache, start + self.window_frames)

    def _gather_ahead(self, cache: StreamCache, end: int) -> None:
        """Copy the prepared window's cached columns into its input now, not when the window is due."""
        cache.window_in_end = None
        if not self._prepared(cache, end):  # (the stream's features begin after the window's first frame)
            return
        if cache.window_in is None:
            cache.window_in = np.empty((1, self.contract.streaming.channels, self.window_frames), np.float32)
        self._gather(cache, end, cache.window_in[0], cache.partial_fresh)
        self._copy_left(cache.left[0], cache.window_in[0])
        cache.window_in_end = end

    def _prepare_mid(self, cache: StreamCache, next_end: int, fresh: int) -> None:
        """The mid end's first frames of the window ending at ``next_end``, from the columns known now."""
        spec = self.contract.streaming
        start = next_end - self.window_frames
        if cache.left_start != start or cache.mid_start == start:
            return
        if any(lo > start + part.before for (lo, _), part in zip(cache.valid, spec.parts, strict=True)):
            return  # the stream's features begin after this window's first interior frame
        known = min(hi for _, hi in cache.valid) - start  # columns [0, known) of every part are in
        known = min(known, self.window_frames - fresh - max(p.after for p in spec.parts))
        if known < MID_MIN_KNOWN:
            return
        width = max(known, *(p.before for p in spec.parts))  # (the left edges are copied whole)
        front = cache.front_input(spec.channels, width)  # every column is written: the cached ones, the left edge
        self._gather(cache, next_end, front[0], fresh, upto=start + known)
        self._copy_left(cache.left, front)
        prefix = self._prefix_session.run([spec.mid.prefix_output], {spec.mid.prefix_input: front[:, :, :known]})[0]
        if cache.mid is None:
            cache.mid = np.zeros((1, spec.mid.channels, self.window_frames), np.float32)
        cache.mid[:, :, :known] = prefix
        cache.mid_known, cache.mid_start = known, start

    def _interior(self, cache: StreamCache, frames: np.ndarray, end_frame: int
                  ) -> tuple[list[int], list[np.ndarray | None]]:
        """What :meth:`_features` must compute so that ``cache`` holds each part's features of the frames
        whose context lies in ``frames``: the parts to store (each from the frame after those held), and
        the inputs."""
        spec = self.contract.streaming
        if cache.features is None:
            cache.features = np.zeros((spec.channels, self._ring), np.float32)
            cache.valid = [(0, 0)] * len(spec.parts)
        first = end_frame - len(frames)
        todo: list[int] = []
        inputs: list[np.ndarray | None] = []
        for i, part in enumerate(spec.parts):
            lo, hi = cache.valid[i]
            start, stop = first + part.before, end_frame - part.after  # frames computable from `frames`
            if not lo <= start <= hi:  # a gap (or a restart): begin again at `start`
                cache.valid[i] = lo, hi = start, start
            if stop <= hi:
                inputs.append(None)
                continue
            todo.append(i)
            inputs.append(frames[None, hi - part.before - first: stop + part.after - first])
        return todo, inputs

    def _put(self, cache: StreamCache, part: int, values: np.ndarray) -> None:
        """Append part ``part``'s features of the stream frames after those held (``(channels_part, n)``)."""
        hi = cache.valid[part][1]
        stop = hi + values.shape[1]
        columns = np.arange(hi, stop) % self._ring
        cache.features[self._offsets[part]:self._offsets[part + 1], columns] = values
        cache.valid[part] = (max(cache.valid[part][0], stop - self._ring), stop)

    def _store(self, cache: StreamCache, todo: list[int], results: list[np.ndarray | None]) -> None:
        """Keep the features :meth:`_interior` asked for (``results[part]``: ``(1, channels, n)``)."""
        for i in todo:
            self._put(cache, i, results[i][0])

    def _keep_fresh(self, cache: StreamCache, end_frame: int, completed: np.ndarray) -> None:
        """Keep the features a window call completed (``(channels, fresh)``) that extend the stream's."""
        fresh = completed.shape[1]
        for i, part in enumerate(self.contract.streaming.parts):
            hi = cache.valid[i][1]
            first, stop = end_frame - fresh - part.after, end_frame - part.after
            if first <= hi < stop:  # adjacent to what is held (not after a restart), and something new
                self._put(cache, i, completed[self._offsets[i]:self._offsets[i + 1], hi - first:])

    def _gather(self, cache: StreamCache, end_frame: int, out: np.ndarray, fresh: int, upto: int | None = None) -> None:
        """Copy the cached features of the window ending at ``end_frame`` into ``out`` (channels, frames): all
        the window computation reads with ``fresh`` new frames, or only the frames before stream frame ``upto``."""
        frames, ring = self.window_frames, self._ring
        for i, part in enumerate(self.contract.streaming.parts):
            stop = end_frame - fresh - part.after if upto is None else min(upto, end_frame - fresh - part.after)
            first = end_frame - frames + part.before
            rows = slice(self._offsets[i], self._offsets[i + 1])
            lo, count = first % ring, stop - first
            head = min(count, ring - lo)  # the columns before the ring wraps, then the rest from its start
            out[rows, part.before:part.before + head] = cache.features[rows, lo:lo + head]
            out[rows, part.before + head:part.before + count] = cache.features[rows, : count - head]

    def _prepared(self, cache: StreamCache, end: int) -> bool:
        """Whether ``cache`` holds everything for the window ending at ``end`` but its newest frames."""
        start = end - self.window_frames
        if cache.partial_end != end or cache.left_start != start:
            return False
        return all(lo <= start + part.before and hi >= end - cache.partial_fresh - part.after
                   for (lo, hi), part in zip(cache.valid, self.contract.streaming.parts, strict=True))

    def _prepare_window(self, cache: StreamCache, window: np.ndarray, end: int) -> None:
        """Everything for the window ending at ``end`` but its last frame, from the window itself, in one call."""
        todo, inputs = self._interior(cache, window[:-1], end - 1)
        start = end - self.window_frames
        lefts = window[None] if cache.left_start != start else None
        features, left, partials = self._features(inputs, lefts, window[None, :-1], 1)
        self._store(cache, todo, features)
        if left is not None:
            cache.left, cache.left_start = left, start
        cache.partials, cache.partial_end, cache.partial_fresh = partials, end, 1
        cache.window_in_end = None

    def predict_stream(self, windows: np.ndarray, end_frames: np.ndarray, caches: list[StreamCache],
                       contiguous: np.ndarray | list[bool], outputs: list[str] | None = None
                       ) -> dict[str, np.ndarray]:
        """Like :meth:`predict`, computing each stream frame's features only once.

        Parameters
        ----------
        windows
            ``(n, window_frames, n_mels)``: one window per entry of ``caches``.
        end_frames
            Stream frame index (exclusive) where each window ends.
        caches
            Each window's stream state (updated in place). Windows of the same stream must come
            in stream order; windows of several streams share one model call.
        contiguous
            Whether each window is made of consecutive stream frames (False for repeat-padded
            provisional windows: they neither use nor feed the cache).
        outputs
            As in :meth:`predict`.

        Returns
        -------
        dict
            Exactly what :meth:`predict` returns for these windows (to float rounding).
        """
        windows = self._validate_windows(windows)
        names = self._output_names(outputs)
        if len(caches) != len(windows) or len(end_frames) != len(windows) or len(contiguous) != len(windows):
            raise ValueError("predict_stream needs one end frame, cache and contiguous flag per window")
        if self.contract.streaming is None:
            return self.predict(windows, names)
        flags = np.asarray(contiguous, bool)
        channels = self.contract.streaming.channels
        if len(windows) == 1 and flags[0]:  # a live stream's window: every column it reads is written below
            cache_in = caches[0].front_input(channels, self.window_frames)
        else:
            cache_in = np.zeros((len(windows), channels, self.window_frames), np.float32)
        partials: list[list[np.ndarray]] = [[] for _ in windows]
        fresh = np.ones(len(windows), int)
        alone = np.flatnonzero(~flags)
        if len(alone):
            cache_in[alone], terms = self._window_features(windows[alone])
            each = [np.split(t, len(alone), axis=1) for t in terms]  # partials are batched along their last axis
            for row, i in enumerate(alone):
                partials[i] = [pieces[row] for pieces in each]
        for i in np.flatnonzero(flags):
            end, cache = int(end_frames[i]), caches[i]
            if end < self.window_frames:
                raise ValueError(f"window {i} ends at stream frame {end}, before a whole window of frames")
            if not self._prepared(cache, end):
                self._prepare_window(cache, windows[i], end)
            fresh[i], partials[i] = cache.partial_fresh, cache.partials
            if len(windows) == 1 and cache.window_in_end == end:  # gathered when the window was prepared
                cache_in = cache.window_in
                continue
            self._gather(cache, end, cache_in[i], int(fresh[i]))
            self._copy_left(cache.left[0], cache_in[i])
        groups: dict[tuple[int, int], list[int]] = {}  # (mid-end frames known, fresh frames) -> windows
        for i in range(len(windows)):
            ready = flags[i] and caches[i].mid_start == int(end_frames[i]) - self.window_frames
            groups.setdefault((caches[i].mid_known if ready else 0, int(fresh[i])), []).append(i)
        out: dict[str, np.ndarray] = {}
        for (known, count), members in groups.items():
            every = len(members) == len(windows)  # one group (a live stream's window): no copies
            mid = None if known == 0 else caches[members[0]].mid if len(members) == 1 else np.concatenate(
                [caches[i].mid for i in members])
            terms = [partials[members[0]][j] if len(members) == 1 else np.concatenate(
                [partials[i][j] for i in members], axis=1) for j in range(len(self._split))]
            values, completed = self._run(windows if every else windows[members], names,
                                          cache_in if every else cache_in[members], terms, count, mid, known)
            for name, value in zip(names, values, strict=True):
                if every:
                    out[name] = value
                else:
                    out.setdefault(name, np.zeros((len(windows), *value.shape[1:]), value.dtype))[members] = value
            for row, i in enumerate(members):
                if flags[i]:
                    self._keep_fresh(caches[i], int(end_frames[i]), completed[row])
        return out

    def genre_scores(self, windows: np.ndarray) -> np.ndarray:
        """Scores of :attr:`labels` only, ``(batch, len(labels))``."""
        out = self.predict(windows, [self.contract.genre_output])[self.contract.genre_output]
        return out[:, list(self.contract.genre_indices)]

    def describe(self) -> dict[str, Any]:
        """JSON-safe summary (for logs, dashboards and ``--json`` output)."""
        return {"model": self.name, "path": str(self.path), "provider": self.provider, "threads": self.threads,
                "window_frames": self.window_frames, "genres": list(self.labels)}


def _graph_io(graph: Any) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    """Input and output shapes of an ONNX graph by name (a size is an int, a name, or None)."""
    def shape(value: Any) -> list[Any]:
        return [d.dim_value if d.HasField("dim_value") else d.dim_param or None
                for d in value.type.tensor_type.shape.dim]

    initializers = {t.name for t in graph.initializer}
    inputs = {v.name: shape(v) for v in graph.input if v.name not in initializers}
    return inputs, {v.name: shape(v) for v in graph.output}


def _check_io(path: Path, inputs: dict[str, list[Any]], graph_outputs: dict[str, list[Any]],
              contract: ModelContract) -> None:
    expected_inputs = [contract.input_name]
    spec = contract.streaming
    if spec is not None:  # the window's, the features' (both take `fresh`) and the mid-end prefix's
        expected_inputs = list(dict.fromkeys([*expected_inputs, *spec.window_inputs, *spec.feature_inputs,
                                              spec.mid.prefix_input]))
    if sorted(inputs) != sorted(expected_inputs):
        raise ModelError(f"{path}: expected inputs {expected_inputs}, found {sorted(inputs)}")
    shape = inputs[contract.input_name]
    expected = [contract.window_frames, contract.mel_config.n_mels]
    if len(shape) != 3 or list(shape[1:]) != expected:
        raise ModelError(f"{path}: input shape {shape} does not match metadata (batch, {expected[0]}, {expected[1]})")
    for name, output in contract.outputs.items():
        if name not in graph_outputs:
            raise ModelError(f"{path}: metadata describes output {name!r} that the graph lacks")
        width = graph_outputs[name][-1] if graph_outputs[name] else None
        size = len(output.labels) or output.size
        if isinstance(width, int) and size is not None and width != size:
            raise ModelError(f"{path}: output {name!r} has {width} units but metadata describes {size}")
    if spec is not None:
        names = [spec.mid.prefix_output, spec.fresh_output, *spec.feature_outputs]
        lacking = [name for name in names if name not in graph_outputs]
        if lacking:
            raise ModelError(f"{path}: metadata names feature outputs {lacking} the graph lacks")


def _split_sessions(path: Path, graph: Any, contract: ModelContract, provider: str, threads: int
                    ) -> tuple[Any, dict[str, Any]]:
    """Sessions for a streaming model's window computation and for its feature parts.

    onnxruntime runs every node of a graph whatever outputs are asked for, so each computation
    gets its own session on the sub-graph it needs (pruned with onnx's extractor).
    """
    from onnx.utils import Extractor

    spec = contract.streaming
    try:
        extractor = Extractor(graph)
        graphs = [
            extractor.extract_model([contract.input_name, *spec.window_inputs], [*contract.outputs, spec.fresh_output]),
            extractor.extract_model(spec.feature_inputs, spec.feature_outputs),
            extractor.extract_model([spec.mid.prefix_input], [spec.mid.prefix_output]),
        ]
    except Exception as exc:  # onnx raises several types for graphs it cannot prune
        raise ModelError(f"{path}: cannot split the streaming graph ({_first_line(exc)})") from None
    window, features, prefix = (_create_session(path, provider, threads, g.SerializeToString()) for g in graphs)
    return window, {"features": features, "prefix": prefix}


def default_threads() -> int:
    """Intra-op threads: the machine's cores, at most 4 (more buys little for one window)."""
    return max(1, min(4, os.cpu_count() or 1))


def load_model(path: str | Path | None = None, provider: str = "auto", threads: int | None = None,
               warmup: bool = True) -> GenreModel:
    """Load a model: the bundled default when ``path`` is None, else the given ONNX file.

    Parameters
    ----------
    path
        An ``.onnx`` file carrying streamgenre metadata, or None for the default model.
    provider
        ``"auto"`` (CUDA when a CUDA device is really usable, else CPU), ``"cpu"`` or ``"cuda"``.
    threads
        Session intra-op threads (default :func:`default_threads`).
    warmup
        Run one window through the model so the first real call is not slow.

    Raises
    ------
    ModelError
        The file is missing, not ONNX, or its metadata/shapes are invalid (one-line message).
    ConfigError
        The provider or thread settings are invalid or unavailable.
    """
    model_path = Path(path) if path is not None else bundled_model_path()
    if model_path.is_dir():
        raise ModelError(f"{model_path}: is a directory, not an ONNX model file")
    if not model_path.is_file():
        hint = " (the bundled model is missing: reinstall streamgenre)" if path is None else ""
        raise ModelError(f"{model_path}: model file not found{hint}")
    threads = default_threads() if threads is None else threads
    if not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"threads must be a positive integer, got {threads!r}")
    import onnx

    try:  # the graph is read once: metadata and shapes from it, sessions on it (or on its pruned parts)
        graph = onnx.load(str(model_path))
    except Exception as exc:  # protobuf raises its own types for bytes that are not a model
        raise ModelError(f"{model_path}: not a loadable ONNX model ({_first_line(exc)})") from None
    metadata = {entry.key: entry.value for entry in graph.metadata_props}
    try:
        contract = parse_contract(metadata.get(METADATA_KEY))
    except ModelError as exc:
        raise ModelError(f"{model_path}: {exc}") from None
    _check_io(model_path, *_graph_io(graph.graph), contract)
    parts = None
    if contract.streaming is not None:
        session, parts = _split_sessions(model_path, graph, contract, provider, threads)
    else:
        session = _create_session(model_path, provider, threads, graph.SerializeToString())
    model = GenreModel(model_path, session, contract, threads, parts)
    if warmup:
        model.predict(np.zeros((1, contract.window_frames, contract.mel_config.n_mels), np.float32))
    log.debug("loaded %s on %s with %d threads", model_path, model.provider, threads)
    return model
