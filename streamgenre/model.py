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

from streamgenre.contract import METADATA_KEY, ModelContract, parse_contract
from streamgenre.errors import ConfigError, ModelError
from streamgenre.features import MelConfig

log = logging.getLogger(__name__)

DEFAULT_MODEL = "msd_musicnn.onnx"
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
        self.output_names = [o.name for o in session.get_outputs()]

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

    def predict(self, windows: np.ndarray, outputs: list[str] | None = None) -> dict[str, np.ndarray]:
        """Run the model on a batch of windows.

        Parameters
        ----------
        windows
            ``(batch, window_frames, n_mels)`` log-mel windows (float32; other float dtypes are
            converted). A single ``(window_frames, n_mels)`` window is accepted as a batch of one.
        outputs
            Output names to compute (default: all).

        Returns
        -------
        dict
            Output name -> ``(batch, ...)`` float32 array.
        """
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
        windows = np.ascontiguousarray(windows, dtype=np.float32)
        names = outputs or self.output_names
        unknown = [n for n in names if n not in self.output_names]
        if unknown:
            raise ValueError(f"unknown model outputs {unknown}; the model has {self.output_names}")
        results = self._session.run(names, {self.contract.input_name: windows})
        return dict(zip(names, results, strict=True))

    def genre_scores(self, windows: np.ndarray) -> np.ndarray:
        """Scores of :attr:`labels` only, ``(batch, len(labels))``."""
        out = self.predict(windows, [self.contract.genre_output])[self.contract.genre_output]
        return out[:, list(self.contract.genre_indices)]

    def describe(self) -> dict[str, Any]:
        """JSON-safe summary (for logs, dashboards and ``--json`` output)."""
        return {"model": self.name, "path": str(self.path), "provider": self.provider, "threads": self.threads,
                "window_frames": self.window_frames, "genres": list(self.labels)}


def _check_io(path: Path, session: Any, contract: ModelContract) -> None:
    inputs = session.get_inputs()
    if len(inputs) != 1 or inputs[0].name != contract.input_name:
        raise ModelError(f"{path}: expected one input named {contract.input_name!r}, "
                         f"found {[i.name for i in inputs]}")
    shape = inputs[0].shape
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
