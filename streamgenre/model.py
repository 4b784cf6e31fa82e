"""Inference runtime: load an ONNX model with its contract and run it on mel windows.

One :class:`GenreModel` (one onnxruntime session) is shared by every stream; it holds no
per-stream state, so any number of streams may call :meth:`GenreModel.predict`.
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


def _create_session(path: Path, provider: str, threads: int) -> Any:
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
        session = ort.InferenceSession(str(path), sess_options=_session_options(threads), providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path}: not a loadable ONNX model ({reason[:200]})") from None
    if want_cuda and session.get_providers()[0] != "CUDAExecutionProvider":
        if provider == "cuda":
            raise ConfigError("--provider cuda: CUDA libraries (CUDA 12 runtime, cuDNN 9) could not be loaded")
        log.info("CUDA device present but the CUDA provider could not start; using CPU")
    return session


class StreamCache:
    """One stream's reusable model state (the previous window's features), owned by the stream.

    Pass the same object with each window of a stream to :meth:`GenreModel.predict_stream`; call
    :meth:`reset` when the stream restarts. The shared model session holds no stream state.
    """

    __slots__ = ("end_frame", "features", "scratch")

    def __init__(self) -> None:
        self.scratch: np.ndarray | None = None
        self.reset()

    def reset(self) -> None:
        """Forget the previous window."""
        self.features: np.ndarray | None = None
        self.end_frame: int | None = None


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

    def __init__(self, path: Path, session: Any, contract: ModelContract, threads: int) -> None:
        self.path = path
        self.contract = contract
        self.threads = threads
        self._session = session
        self.provider: str = session.get_providers()[0]
        self.output_names = list(contract.outputs)
        spec = contract.streaming
        self._zero_cache = None if spec is None else np.zeros(
            (1, spec.channels, contract.window_frames), np.float32)

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
             fresh_from: int) -> list[np.ndarray]:
        feeds = {self.contract.input_name: windows}
        spec = self.contract.streaming
        if spec is not None:
            feeds[spec.cache_input] = self._zero_cache if cache is None else cache
            feeds[spec.fresh_from_input] = np.array(fresh_from, np.int64)
        return self._session.run(names, feeds)

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
        return dict(zip(names, self._run(windows, names, None, 0), strict=True))

    def predict_stream(self, windows: np.ndarray, end_frames: np.ndarray, caches: list[StreamCache],
                       contiguous: np.ndarray | list[bool], outputs: list[str] | None = None
                       ) -> dict[str, np.ndarray]:
        """Like :meth:`predict`, reusing each stream's previous window where the model allows.

        Parameters
        ----------
        windows
            ``(n, window_frames, n_mels)``: one window per entry of ``caches``.
        end_frames
            Stream frame index (exclusive) where each window ends.
        caches
            Each window's stream state (updated in place). Windows of the same stream must come
            in stream order. Windows of different streams that can reuse the same amount of work
            run as one batch.
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
        spec = self.contract.streaming
        if len(caches) != len(windows) or len(end_frames) != len(windows) or len(contiguous) != len(windows):
            raise ValueError("predict_stream needs one end frame, cache and contiguous flag per window")
        if spec is None:
            return self.predict(windows, names)
        run_names = [*names, spec.cache_output] if spec.cache_output not in names else names
        frames, context = self.window_frames, spec.context_frames
        if len({id(c) for c in caches}) < len(caches):  # a stream twice: each window needs the one before
            parts = [self.predict_stream(windows[i:i + 1], end_frames[i:i + 1], [c], [contiguous[i]], names)
                     for i, c in enumerate(caches)]
            return {name: np.concatenate([p[name] for p in parts]) for name in names}
        groups: dict[int, list[int]] = {}  # fresh_from -> window indices, each group one batched call
        shifted: list[np.ndarray | None] = []
        for i, cache in enumerate(caches):
            hop = None if cache.end_frame is None else int(end_frames[i]) - cache.end_frame
            fresh_from, previous = 0, None
            if contiguous[i] and cache.features is not None and hop is not None and \
                    1 <= hop <= frames - 2 * context - 1:
                if cache.scratch is None:
                    cache.scratch = np.zeros_like(cache.features)
                previous = cache.scratch
                previous[:, :, : frames - hop] = cache.features[:, :, hop:]
                fresh_from = frames - context - hop
            shifted.append(previous)
            groups.setdefault(fresh_from, []).append(i)
        order: list[int] = []
        parts: list[list[np.ndarray]] = []
        for fresh_from, members in groups.items():
            cache_in = None if fresh_from == 0 else np.concatenate([shifted[i] for i in members])
            out = self._run(windows[members], run_names, cache_in, fresh_from)
            features = out[run_names.index(spec.cache_output)]
            for row, i in enumerate(members):
                if contiguous[i]:
                    caches[i].features = features[row:row + 1].copy()
                    caches[i].end_frame = int(end_frames[i])
                else:
                    caches[i].reset()
            order += members
            parts.append(out[: len(names)])
        inverse = np.argsort(order)  # back to the callers' window order
        return {name: np.concatenate([part[k] for part in parts])[inverse] for k, name in enumerate(names)}

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
        expected_inputs += [contract.streaming.cache_input, contract.streaming.fresh_from_input]
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
    if contract.streaming is not None and contract.streaming.cache_output not in graph_outputs:
        raise ModelError(f"{path}: metadata names cache output {contract.streaming.cache_output!r} the graph lacks")


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
    model = GenreModel(model_path, session, contract, threads)
    if warmup:
        model.predict(np.zeros((1, contract.window_frames, contract.mel_config.n_mels), np.float32))
    log.debug("loaded %s on %s with %d threads", model_path, model.provider, threads)
    return model
