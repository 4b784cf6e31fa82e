"""Inference runtime: load an ONNX model with its contract and run it on mel windows.

One :class:`GenreModel` (its onnxruntime sessions) is shared by every stream; it holds no
per-stream state, so any number of streams may call :meth:`GenreModel.predict`. A streaming
model's per-frame feature computations and its window computation run as separate sessions
(each pruned from the one graph), so a stream computes each frame's features once, when they
are due, and a window only adds its edges (see :class:`StreamCache`).
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
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path}: not a loadable ONNX model ({reason[:200]})") from None
    if want_cuda and session.get_providers()[0] != "CUDAExecutionProvider":
        if provider == "cuda":
            raise ConfigError("--provider cuda: CUDA libraries (CUDA 12 runtime, cuDNN 9) could not be loaded")
        log.info("CUDA device present but the CUDA provider could not start; using CPU")
    return session


MID_LEAD_FRAMES = 16  # prepare the mid end's first frames when the next window is this close to due
MID_MIN_KNOWN = 24  # ... and only when at least this many of its front-end columns are known


class StreamCache:
    """One stream's reusable model state, owned by the stream: its frames' front-end features.

    A streaming model's features of a frame depend only on nearby frames, so they are computed
    once per stream frame and kept here (a ring indexed by stream frame) until no window can
    need them. Pass the same object with each window of a stream to
    :meth:`GenreModel.predict_stream` (and, between windows, :meth:`GenreModel.prepare_stream`);
    call :meth:`reset` when the stream restarts. The shared model sessions hold no stream state.
    """

    __slots__ = ("features", "left", "left_start", "mid", "mid_known", "mid_start", "valid")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget the stream's frames."""
        self.features: np.ndarray | None = None  # (channels, ring) float32
        self.valid: list[tuple[int, int]] = []  # per feature part: stream frames [lo, hi) held
        self.left: np.ndarray | None = None  # (channels, window frames): first frames of the next window
        self.left_start: int | None = None  # stream frame where that window starts
        self.mid: np.ndarray | None = None  # (1, mid channels, window frames): its mid end's first frames
        self.mid_known = 0  # front-end columns those were computed from
        self.mid_start: int | None = None  # stream frame where that window starts


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
        self._features_session = parts.get("features")  # streaming models: every part on stream frames
        self._left_session = parts.get("left")  # ... on a window's first frames
        self._prefix_session = parts.get("prefix")  # ... the mid end on a window's first frames
        self.provider: str = session.get_providers()[0]
        self.output_names = list(contract.outputs)
        spec = contract.streaming
        if spec is not None and None in (self._features_session, self._left_session, self._prefix_session):
            raise ValueError("a streaming model needs its feature, left-edge and mid-end prefix sessions")
        self._ring = 2 * contract.window_frames  # stream frames a StreamCache holds
        self._offsets = [] if spec is None else list(np.cumsum([0, *(p.channels for p in spec.parts)]))

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

    def _run(self, windows: np.ndarray, names: list[str], cache: np.ndarray | None,
             mid: np.ndarray | None = None, known: int = 0) -> list[np.ndarray]:
        feeds = {self.contract.input_name: windows}
        spec = self.contract.streaming
        if spec is not None:
            feeds[spec.cache_input] = cache
            feeds[spec.mid.cache_input] = mid if mid is not None else np.zeros(
                (len(windows), spec.mid.channels, self.window_frames), np.float32)
            feeds[spec.mid.known_input] = np.array(known, np.int64)
        return self._session.run(names, feeds)

    def _parts(self, frames: list[np.ndarray | None]) -> list[np.ndarray | None]:
        """Every feature part in one call: part ``i`` of ``(batch, n_i, n_mels)`` frames is
        ``(batch, channels_i, n_i - before_i - after_i)``. A part given None is not needed (it
        runs on the fewest frames it accepts and its result is dropped)."""
        parts = self.contract.streaming.parts
        batch = next(len(f) for f in frames if f is not None)
        feeds = {part.input: f if f is not None else np.zeros((batch, part.before + part.after + 1,
                                                              self.mel_config.n_mels), np.float32)
                 for part, f in zip(parts, frames, strict=True)}
        out = self._features_session.run([part.output for part in parts], feeds)
        return [o if f is not None else None for o, f in zip(out, frames, strict=True)]

    def _lefts(self, windows: np.ndarray, out: np.ndarray) -> None:
        """Each part's features of the first frames of ``windows`` into ``out`` (batch, channels, frames)."""
        parts = self.contract.streaming.parts
        feeds = {p.left_input: np.ascontiguousarray(windows[:, : p.before + p.after]) for p in parts}
        results = self._left_session.run([p.left_output for p in parts], feeds)
        for i, (part, features) in enumerate(zip(parts, results, strict=True)):
            out[:, self._offsets[i]:self._offsets[i + 1], : part.before] = features

    def _copy_left(self, source: np.ndarray, target: np.ndarray) -> None:
        """Copy each part's window-start columns (``[..., rows, :before]``) from ``source`` to ``target``."""
        for j, part in enumerate(self.contract.streaming.parts):
            rows = slice(self._offsets[j], self._offsets[j + 1])
            target[..., rows, : part.before] = source[..., rows, : part.before]

    def _window_features(self, windows: np.ndarray) -> np.ndarray:
        """The cache input of windows computed from the windows alone (no stream history)."""
        spec = self.contract.streaming
        frames = self.window_frames
        cache = np.zeros((len(windows), spec.channels, frames), np.float32)
        for i, (part, features) in enumerate(zip(spec.parts, self._parts([windows] * len(spec.parts)), strict=True)):
            cache[:, self._offsets[i]:self._offsets[i + 1], part.before:frames - part.after] = features
        self._lefts(windows, cache)
        return cache

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
        cache = None if self.contract.streaming is None else self._window_features(windows)
        return dict(zip(names, self._run(windows, names, cache), strict=True))

    def prepare_stream(self, cache: StreamCache, frames: np.ndarray, end_frame: int,
                       next_end_frame: int | None = None) -> None:
        """Compute the features of a stream's newest frames ahead of its next window.

        Call it between windows (for example after every audio block): the next
        :meth:`predict_stream` then only computes what the newest frames add (and, given
        ``next_end_frame``, not even the window's first frames). A no-op for models without a
        streaming section.

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
        if self.contract.streaming is None:
            return
        frames = np.asarray(frames, np.float32)
        if frames.ndim != 2 or frames.shape[1] != self.mel_config.n_mels:
            raise ValueError(f"frames must be shaped (n, {self.mel_config.n_mels}), got {frames.shape}")
        if end_frame < len(frames):
            raise ValueError(f"end_frame {end_frame} is before the {len(frames)} frames given")
        frames = frames[-self.window_frames:]
        self._update(cache, frames, int(end_frame))
        if next_end_frame is not None:
            self._prepare_left(cache, frames, int(end_frame), int(next_end_frame))
            if int(next_end_frame) - int(end_frame) <= MID_LEAD_FRAMES:
                self._prepare_mid(cache, int(next_end_frame))

    def _prepare_mid(self, cache: StreamCache, next_end: int) -> None:
        """The mid end's first frames of the window ending at ``next_end``, from the columns known now."""
        spec = self.contract.streaming
        start = next_end - self.window_frames
        if cache.left_start != start or cache.mid_start == start:
            return
        if any(lo > start + part.before for (lo, _), part in zip(cache.valid, spec.parts, strict=True)):
            return  # the stream's features begin after this window's first interior frame
        known = min(hi for _, hi in cache.valid) - start  # columns [0, known) of every part are in
        known = min(known, self.window_frames - max(p.after for p in spec.parts))
        if known < MID_MIN_KNOWN:
            return
        front = np.zeros((1, spec.channels, self.window_frames), np.float32)
        self._gather(cache, next_end, front[0], upto=start + known)
        self._copy_left(cache.left, front)
        prefix = self._prefix_session.run([spec.mid.prefix_output], {spec.mid.prefix_input: front[:, :, :known]})[0]
        if cache.mid is None:
            cache.mid = np.zeros((1, spec.mid.channels, self.window_frames), np.float32)
        cache.mid[:, :, :known] = prefix
        cache.mid_known, cache.mid_start = known, start

    def _prepare_left(self, cache: StreamCache, frames: np.ndarray, end_frame: int, next_end: int) -> None:
        """The first frames' features of the window ending at ``next_end``, once its first frames are in."""
        start = next_end - self.window_frames
        need = max(p.before + p.after for p in self.contract.streaming.parts)
        first = end_frame - len(frames)
        if cache.left_start == start or start < first or start + need > end_frame:
            return
        if cache.left is None:
            cache.left = np.zeros((1, self.contract.streaming.channels, self.window_frames), np.float32)
        self._lefts(frames[None, start - first: start - first + need], cache.left)
        cache.left_start = start

    def _update(self, cache: StreamCache, frames: np.ndarray, end_frame: int) -> None:
        """Compute, into ``cache``, each part's features of the frames whose context lies in ``frames``."""
        spec = self.contract.streaming
        if cache.features is None:
            cache.features = np.zeros((spec.channels, self._ring), np.float32)
            cache.valid = [(0, 0)] * len(spec.parts)
        first = end_frame - len(frames)
        todo: list[tuple[int, int, int]] = []  # (part, first frame, end frame) to compute
        inputs: list[np.ndarray | None] = []
        for i, part in enumerate(spec.parts):
            lo, hi = cache.valid[i]
            start, stop = first + part.before, end_frame - part.after  # frames computable from `frames`
            if not lo <= start <= hi:  # a gap (or a restart): begin again at `start`
                cache.valid[i] = lo, hi = start, start
            if stop <= hi:
                inputs.append(None)
                continue
            todo.append((i, hi, stop))
            inputs.append(frames[None, hi - part.before - first: stop + part.after - first])
        if not todo:
            return
        results = self._parts(inputs)
        for i, hi, stop in todo:
            columns = np.arange(hi, stop) % self._ring
            cache.features[self._offsets[i]:self._offsets[i + 1], columns] = results[i][0]
            cache.valid[i] = (max(cache.valid[i][0], stop - self._ring), stop)

    def _gather(self, cache: StreamCache, end_frame: int, out: np.ndarray, upto: int | None = None) -> None:
        """Copy the cached features of the window ending at ``end_frame`` into ``out`` (channels, frames),
        of its frames before stream frame ``upto`` only when given."""
        frames = self.window_frames
        for i, part in enumerate(self.contract.streaming.parts):
            stop = end_frame - part.after if upto is None else min(upto, end_frame - part.after)
            columns = np.arange(end_frame - frames + part.before, stop) % self._ring
            rows = slice(self._offsets[i], self._offsets[i + 1])
            out[rows, part.before:part.before + len(columns)] = cache.features[rows][:, columns]

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
        alone = np.flatnonzero(~flags)
        cache_in = np.zeros((len(windows), self.contract.streaming.channels, self.window_frames), np.float32)
        if len(alone):
            cache_in[alone] = self._window_features(windows[alone])
        computed_left = []
        for i in np.flatnonzero(flags):
            end = int(end_frames[i])
            if end < self.window_frames:
                raise ValueError(f"window {i} ends at stream frame {end}, before a whole window of frames")
            self._update(caches[i], windows[i], end)
            self._gather(caches[i], end, cache_in[i])
            if caches[i].left_start == end - self.window_frames:
                self._copy_left(caches[i].left[0], cache_in[i])
            else:
                computed_left.append(i)
        if computed_left:
            lefts = np.zeros((len(computed_left), *cache_in.shape[1:]), np.float32)
            self._lefts(windows[computed_left], lefts)
            for row, i in enumerate(computed_left):
                self._copy_left(lefts[row], cache_in[i])
        groups: dict[int, list[int]] = {}  # mid-end frames known -> windows (one call each)
        for i in range(len(windows)):
            ready = flags[i] and caches[i].mid_start == int(end_frames[i]) - self.window_frames
            groups.setdefault(caches[i].mid_known if ready else 0, []).append(i)
        if len(groups) == 1 and 0 in groups:
            return dict(zip(names, self._run(windows, names, cache_in), strict=True))
        out: dict[str, np.ndarray] = {}
        for known, members in groups.items():
            mid = None if known == 0 else np.concatenate([caches[i].mid for i in members])
            for name, value in zip(names, self._run(windows[members], names, cache_in[members], mid, known),
                                   strict=True):
                out.setdefault(name, np.zeros((len(windows), *value.shape[1:]), value.dtype))[members] = value
        return out

    def genre_scores(self, windows: np.ndarray) -> np.ndarray:
        """Scores of :attr:`labels` only, ``(batch, len(labels))``."""
        out = self.predict(windows, [self.contract.genre_output])[self.contract.genre_output]
        return out[:, list(self.contract.genre_indices)]

    def describe(self) -> dict[str, Any]:
        """JSON-safe summary (for logs, dashboards and ``--json`` output)."""
        return {"model": self.name, "path": str(self.path), "provider": self.provider, "threads": self.threads,
                "window_frames": self.window_frames, "genres": list(self.labels)}


def _check_io(path: Path, session: Any, contract: ModelContract) -> None:
    inputs = {i.name: i for i in session.get_inputs()}
    expected_inputs = [contract.input_name]
    if contract.streaming is not None:
        parts, mid = contract.streaming.parts, contract.streaming.mid
        expected_inputs += [contract.streaming.cache_input, mid.cache_input, mid.known_input, mid.prefix_input,
                            *(p.input for p in parts), *(p.left_input for p in parts)]
    if sorted(inputs) != sorted(expected_inputs):
        raise ModelError(f"{path}: expected inputs {expected_inputs}, found {sorted(inputs)}")
    shape = inputs[contract.input_name].shape
    expected = [contract.window_frames, contract.mel_config.n_mels]
    if len(shape) != 3 or list(shape[1:]) != expected:
        raise ModelError(f"{path}: input shape {shape} does not match metadata (batch, {expected[0]}, {expected[1]})")
    graph_outputs = {o.name: o.shape for o in session.get_outputs()}
    for name, spec in contract.outputs.items():
        if name not in graph_outputs:
            raise ModelError(f"{path}: metadata describes output {name!r} that the graph lacks")
        width = graph_outputs[name][-1] if graph_outputs[name] else None
        size = len(spec.labels) or spec.size
        if isinstance(width, int) and size is not None and width != size:
            raise ModelError(f"{path}: output {name!r} has {width} units but metadata describes {size}")
    if contract.streaming is not None:
        names = [contract.streaming.mid.prefix_output]
        names += [name for part in contract.streaming.parts for name in (part.output, part.left_output)]
        lacking = [name for name in names if name not in graph_outputs]
        if lacking:
            raise ModelError(f"{path}: metadata names feature outputs {lacking} the graph lacks")


def _split_sessions(path: Path, contract: ModelContract, provider: str, threads: int) -> tuple[Any, dict[str, Any]]:
    """Sessions for a streaming model's window computation and for its feature parts.

    onnxruntime runs every node of a graph whatever outputs are asked for, so each computation
    gets its own session on the sub-graph it needs (pruned with onnx's extractor).
    """
    import onnx
    from onnx.utils import Extractor

    spec = contract.streaming
    try:
        extractor = Extractor(onnx.load(str(path)))
        inputs = [contract.input_name, spec.cache_input, spec.mid.cache_input, spec.mid.known_input]
        graphs = [extractor.extract_model(inputs, list(contract.outputs))]
        graphs.append(extractor.extract_model([p.input for p in spec.parts], [p.output for p in spec.parts]))
        graphs.append(extractor.extract_model([p.left_input for p in spec.parts], [p.left_output for p in spec.parts]))
        graphs.append(extractor.extract_model([spec.mid.prefix_input], [spec.mid.prefix_output]))
    except Exception as exc:  # onnx raises several types for graphs it cannot prune
        raise ModelError(f"{path}: cannot split the streaming graph ({str(exc).strip()[:200]})") from None
    window, features, left, prefix = (_create_session(path, provider, threads, g.SerializeToString()) for g in graphs)
    return window, {"features": features, "left": left, "prefix": prefix}


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
    session = _create_session(model_path, provider, threads)
    metadata = session.get_modelmeta().custom_metadata_map
    try:
        contract = parse_contract(metadata.get(METADATA_KEY))
    except ModelError as exc:
        raise ModelError(f"{model_path}: {exc}") from None
    _check_io(model_path, session, contract)
    parts = None
    if contract.streaming is not None:
        session, parts = _split_sessions(model_path, contract, provider, threads)
    model = GenreModel(model_path, session, contract, threads, parts)
    if warmup:
        model.predict(np.zeros((1, contract.window_frames, contract.mel_config.n_mels), np.float32))
    log.debug("loaded %s on %s with %d threads", model_path, model.provider, threads)
    return model
