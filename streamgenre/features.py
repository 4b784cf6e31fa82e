"""Mel front end: incremental (streaming) and whole-signal log-mel spectrograms, one code path.

:class:`StreamingMel` turns an audio stream cut into arbitrary blocks into log-mel frames;
:func:`compute_mel` does the same for a whole signal (training). Both run the numba kernels of
:mod:`streamgenre._melkernels` and reproduce ``librosa.feature.melspectrogram`` followed by the
configured log compression (|difference| < 1e-4 in the log domain, typically a few 1e-6; see
"Arithmetic" below).

Framing
    Frame ``k`` of a stream covers samples ``[k * hop_length, k * hop_length + n_fft)`` of the
    concatenated input, exactly librosa's ``center=False`` framing, however the stream is cut.
    :func:`compute_mel` with ``center=True`` zero-pads ``n_fft // 2`` samples on each side first
    (librosa >= 0.10 default ``pad_mode="constant"``).

Input samples
    1-D mono arrays, float audio nominally in [-1, 1]. The kernels read float32: a writable
    C-contiguous float32 array is the zero-copy fast path. float64 and float16 are rounded to
    float32 (float64 loses nothing audible: librosa.load also returns float32), int16 PCM is
    scaled by 1/32768 (exactly); non-contiguous or read-only arrays and sequences are copied.
    Other dtypes (other integers, bool, complex, object, strings) raise ``TypeError``; arrays
    that are not 1-D raise ``ValueError`` (mix multichannel audio down first, e.g.
    ``x.mean(axis=1)``); NaN or Inf samples raise ``ValueError`` and leave a stream's state
    unchanged. Empty input yields ``(0, n_mels)``.

Arithmetic
    Power-of-two ``n_fft >= 8`` use an own radix-2² real FFT (fast path); any other ``n_fft``
    uses an exact direct DFT costing O(n_fft²) per frame (fine for training, slow for live use).
    Transforms run in float64, except "log10p" with power 2 and a moderate
    ``log_scale * max(mel weight)`` (musicnn's front end among them), which runs in float32,
    about twice as fast: its worst-case log-domain error stays below 2e-5 for audio in [-1, 1]
    (musicnn: 3e-6 on music, 8e-6 on full-scale chirps and tones). Output is float32.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamgenre import _melkernels as _k

__all__ = ["MelConfig", "StreamingMel", "compute_mel", "mel_frames_for", "warmup"]

_LOG_KINDS = {"log10p": _k.LOG_LOG10P, "db": _k.LOG_DB, "none": _k.LOG_NONE}
_NORMS = ("slaney", None)
_ALIGN = 8  # sections start on 64-byte boundaries
_empty = np.empty
_process_block = _k.process_block
_FLOAT32 = np.dtype(np.float32)  # a dtype instance makes np.empty ~0.1 µs faster than the class
_F32_BOUND = 25.0  # see _use_float32: <= 2e-5 worst-case log-domain error


def _int_field(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"MelConfig.{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"MelConfig.{name} must be >= {minimum}, got {value}")
    return int(value)


def _float_field(name: str, value: Any, *, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"MelConfig.{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        kind = "positive" if positive else "non-negative"
        raise ValueError(f"MelConfig.{name} must be a finite {kind} number, got {value}")
    return value


@dataclass(frozen=True)
class MelConfig:
    """Parameters of the mel front end (hashable, JSON round-trippable via :meth:`to_dict`).

    Parameters
    ----------
    sample_rate, n_fft, hop_length, n_mels
        Sample rate in Hz, FFT/frame length, hop and number of mel bands (positive integers,
        ``n_fft >= 2``; ``hop_length > n_fft`` is allowed and skips samples between frames).
    fmin, fmax
        Mel band edges in Hz; ``fmax=None`` means ``sample_rate / 2``.
    window
        Window name accepted by ``scipy.signal.get_window`` without parameters ("hann",
        "hamming", "blackman", ...), periodic as in ``librosa.stft``.
    power
        Exponent of the magnitude spectrum (2: power, 1: magnitude; any positive value).
    htk, norm
        Mel scale (``librosa.filters.mel``): HTK formula or Slaney; ``norm`` "slaney" or None.
    log
        "log10p": ``log10(1 + log_scale * mel)`` (musicnn); "db": ``10 * log10(max(amin, mel))``
        (``librosa.power_to_db`` with ``ref=1.0``); "none": the mel spectrogram itself.
    log_scale
        ``C`` of "log10p".
    amin
        Floor of "db" (positive, at least the smallest normal float64).
    top_db
        Must be None. librosa clips to ``max(S) - top_db`` over the whole signal, which a
        streaming front end cannot know; clip downstream if needed.

    Examples
    --------
    musicnn's front end:

    >>> MelConfig(sample_rate=16000, n_fft=512, hop_length=256, n_mels=96, log="log10p")
    ... # doctest: +ELLIPSIS
    MelConfig(sample_rate=16000, n_fft=512, ...)
    """

    sample_rate: int
    n_fft: int
    hop_length: int
    n_mels: int
    fmin: float = 0.0
    fmax: float | None = None
    window: str = "hann"
    power: float = 2.0
    htk: bool = False
    norm: str | None = "slaney"
    log: str = "log10p"
    log_scale: float = 10000.0
    amin: float = 1e-10
    top_db: float | None = None

    def __post_init__(self) -> None:
        fix = functools.partial(object.__setattr__, self)
        fix("sample_rate", _int_field("sample_rate", self.sample_rate, 1))
        fix("n_fft", _int_field("n_fft", self.n_fft, 2))
        fix("hop_length", _int_field("hop_length", self.hop_length, 1))
        fix("n_mels", _int_field("n_mels", self.n_mels, 1))
        fix("fmin", _float_field("fmin", self.fmin, positive=False))
        nyquist = self.sample_rate / 2.0
        if self.fmax is not None:
            fix("fmax", _float_field("fmax", self.fmax, positive=True))
            if self.fmax > nyquist:
                raise ValueError(f"MelConfig.fmax={self.fmax} exceeds sample_rate / 2 = {nyquist}")
        if self.fmin >= (nyquist if self.fmax is None else self.fmax):
            raise ValueError(f"MelConfig.fmin={self.fmin} must be below fmax (effective {self.fmax or nyquist})")
        fix("power", _float_field("power", self.power, positive=True))
        if not isinstance(self.htk, (bool, np.bool_)):
            raise ValueError(f"MelConfig.htk must be a bool, got {self.htk!r}")
        fix("htk", bool(self.htk))
        if self.norm not in _NORMS:
            raise ValueError(f"MelConfig.norm must be 'slaney' or None, got {self.norm!r}")
        if self.log not in _LOG_KINDS:
            raise ValueError(f"MelConfig.log must be one of {sorted(_LOG_KINDS)}, got {self.log!r}")
        fix("log_scale", _float_field("log_scale", self.log_scale, positive=True))
        fix("amin", _float_field("amin", self.amin, positive=True))
        if self.amin < np.finfo(np.float64).tiny:
            raise ValueError(f"MelConfig.amin must be >= {np.finfo(np.float64).tiny}, got {self.amin}")
        if self.top_db is not None:
            raise ValueError(
                "MelConfig.top_db must be None: librosa clips relative to the maximum of the whole "
                "signal, which a streaming front end cannot know; clip downstream if needed"
            )
        if not isinstance(self.window, str):
            raise ValueError(f"MelConfig.window must be a window name (str), got {self.window!r}")
        try:
            _window(self.window, self.n_fft)
        except ValueError as exc:
            raise ValueError(f"MelConfig.window={self.window!r} is not usable: {exc}") from None

    @property
    def n_bins(self) -> int:
        """Number of FFT bins, ``n_fft // 2 + 1``."""
        return self.n_fft // 2 + 1

    def to_dict(self) -> dict[str, Any]:
        """All fields as JSON-safe Python scalars (``from_dict(to_dict())`` round-trips exactly)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MelConfig:
        """Build a config from :meth:`to_dict` output (e.g. ONNX metadata).

        Raises
        ------
        ValueError
            On unknown keys, missing required keys or invalid values.
        """
        if not isinstance(d, Mapping):
            raise ValueError(f"MelConfig.from_dict expects a mapping, got {type(d).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(fields))
        if unknown:
            raise ValueError(f"MelConfig.from_dict: unknown keys {unknown}")
        required = [n for n, f in fields.items() if f.default is dataclasses.MISSING]
        missing = [n for n in required if n not in d]
        if missing:
            raise ValueError(f"MelConfig.from_dict: missing required keys {missing}")
        return cls(**dict(d))


def _window(name: str, n_fft: int) -> np.ndarray:
    if name in ("hann", "hanning"):  # the common case without importing librosa/scipy (~1 s at start-up)
        return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)
    import librosa

    try:
        return np.asarray(librosa.filters.get_window(name, n_fft, fftbins=True), dtype=np.float64)
    except (ValueError, TypeError, librosa.util.exceptions.ParameterError) as exc:
        raise ValueError(str(exc)) from None


def _use_float32(cfg: MelConfig, use_fft: bool, max_weight: float) -> bool:
    """Whether the float32 transform stays far inside the 1e-4 log-domain tolerance.

    float32 FFT rounding adds an absolute error of ~1e-7 * ||frame|| to every bin. That is
    harmless for ``log10(1 + C * mel)`` unless ``C * weight`` is large: the worst case (a band
    whose power is ~1 / C in a loud frame) errs by about
    ``7.6e-7 * sqrt(C * w_max * n_fft / 512)`` for full-scale audio (measured on pure tones,
    chirps and noise; 8e-6 for musicnn's front end, where the root is 18). float32 is used up
    to a root of 25 (<= 2e-5). "db", "none" and power != 2 need the relative precision of quiet
    bands: float64.
    """
    if not (use_fft and cfg.log == "log10p" and cfg.power == 2.0):
        return False
    return math.sqrt(cfg.log_scale * max_weight * cfg.n_fft / 512) <= _F32_BOUND


def _hz_to_mel(hz: np.ndarray, htk: bool) -> np.ndarray:
    if htk:
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(hz >= min_log_hz, min_log_mel + np.log(np.maximum(hz, 1e-10) / min_log_hz) / logstep, hz / f_sp)


def _mel_to_hz(mel: np.ndarray, htk: bool) -> np.ndarray:
    if htk:
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel)


def mel_basis(cfg: MelConfig) -> np.ndarray:
    """The mel filterbank ``(n_mels, n_fft // 2 + 1)`` float32, as ``librosa.filters.mel`` makes it.

    Computed here with numpy (same formulas, same float32 rounding) so that start-up does not
    import librosa; ``tests/test_features.py`` checks it equals librosa's for many configs.
    """
    fmax = cfg.sample_rate / 2 if cfg.fmax is None else cfg.fmax
    fft_freqs = np.fft.rfftfreq(n=cfg.n_fft, d=1.0 / cfg.sample_rate)
    edges = np.array([cfg.fmin, fmax], dtype=np.float64)
    lo, hi = _hz_to_mel(edges, cfg.htk)
    mel_f = _mel_to_hz(np.linspace(lo, hi, cfg.n_mels + 2), cfg.htk)
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fft_freqs)
    weights = np.zeros((cfg.n_mels, cfg.n_bins), dtype=np.float32)
    for i in range(cfg.n_mels):
        weights[i] = np.maximum(0, np.minimum(-ramps[i] / fdiff[i], ramps[i + 2] / fdiff[i + 1]))
    if cfg.norm == "slaney":
        weights *= (2.0 / (mel_f[2:cfg.n_mels + 2] - mel_f[:cfg.n_mels]))[:, np.newaxis]
    return weights


class _Plan:
    """Immutable tables of one config packed into a template workspace (see ``_melkernels``)."""

    def __init__(self, cfg: MelConfig) -> None:
        n_fft = cfg.n_fft
        n_bins = cfg.n_bins
        use_fft = n_fft >= 8 and n_fft & (n_fft - 1) == 0
        half = n_fft // 2 if use_fft else 0
        basis = mel_basis(cfg)
        rows, cols = np.nonzero(basis)
        indptr = np.searchsorted(rows, np.arange(cfg.n_mels + 1))
        self.float32 = _use_float32(cfg, use_fft, float(basis.max(initial=0.0)))
        per_word = 2 if self.float32 else 1  # float elements per 8-byte workspace word
        lanes = 4 * per_word
        cap = n_fft + _k.CHUNK * cfg.hop_length

        sections: list[tuple[int, str, Any]] = [  # (slot, kind, values or element count)
            (_k.O_WINDOW, "f", _window(cfg.window, n_fft)),
            (_k.O_TWIDDLE, "f", _fft_twiddles(half)),
            (_k.O_POST, "f", _post_twiddles(half, n_fft)),
            (_k.O_REV, "i", _bit_reverse(half)),
            (_k.O_INDPTR, "i", indptr),
            (_k.O_INDICES, "i", cols),
            (_k.O_WEIGHTS, "f", basis[rows, cols]),
            (_k.O_BUF, "f", cap),
            (_k.O_WORK, "f", n_fft * lanes),
            (_k.O_POW, "f", _k.CHUNK * n_bins),
            (_k.O_MEL, "f", _k.CHUNK * cfg.n_mels),
            (_k.O_DFT, "f", np.zeros(0) if use_fft else _dft_tables(n_fft)),
        ]
        offsets = []
        pos = _k.HEADER
        for _, kind, data in sections:
            offsets.append(pos)
            size = data if isinstance(data, int) else len(data)
            words = -(-size // per_word) if kind == "f" else size
            pos += -(-words // _ALIGN) * _ALIGN
        ws = np.zeros(pos)
        iv = ws.view(np.int64)
        fv = ws.view(np.float32) if self.float32 else ws
        for (slot, kind, data), off in zip(sections, offsets, strict=True):
            iv[slot] = off
            if not isinstance(data, int):
                if kind == "i":
                    iv[off : off + len(data)] = data
                else:
                    fv[off * per_word : off * per_word + len(data)] = data
        iv[_k.H_NFFT], iv[_k.H_HOP], iv[_k.H_NMELS] = n_fft, cfg.hop_length, cfg.n_mels
        iv[_k.H_NBINS], iv[_k.H_HALF] = n_bins, half
        iv[_k.H_MODE] = _k.MODE_FFT if use_fft else _k.MODE_DFT
        iv[_k.H_CAP] = cap
        iv[_k.H_LOG] = _LOG_KINDS[cfg.log]
        iv[_k.H_POWER] = {2.0: _k.POWER_2, 1.0: _k.POWER_1}.get(cfg.power, _k.POWER_ANY)
        iv[_k.H_PREC] = _k.PREC_F32 if self.float32 else _k.PREC_F64
        ws[_k.F_LOG_SCALE], ws[_k.F_AMIN], ws[_k.F_POWER] = cfg.log_scale, cfg.amin, cfg.power
        ws.flags.writeable = False
        self.template = ws

    def new_workspace(self) -> np.ndarray:
        """A private, 64-byte aligned, writable copy of the template workspace."""
        raw = np.empty(self.template.size + _ALIGN)
        start = (-raw.ctypes.data // 8) % _ALIGN
        ws = raw[start : start + self.template.size]
        ws[:] = self.template
        return ws


def _fft_twiddles(half: int) -> np.ndarray:
    """re then im of ``tw[h + j] = exp(-2πi j / (2h))`` for h = 1, 2, 4, ..., half/2."""
    tw = np.zeros(half, dtype=np.complex128)
    h = 1
    while h < half:
        tw[h : 2 * h] = np.exp(-1j * np.pi * np.arange(h) / h)
        h *= 2
    return np.concatenate([tw.real, tw.imag])


def _post_twiddles(half: int, n_fft: int) -> np.ndarray:
    """cos then sin of ``2πk / n_fft`` for k = 0 .. half/2 (real-FFT unpacking)."""
    ang = 2.0 * np.pi * np.arange(half // 2 + 1) / n_fft
    return np.concatenate([np.cos(ang), np.sin(ang)])


def _bit_reverse(half: int) -> np.ndarray:
    bits = max(half.bit_length() - 1, 0)
    idx = np.arange(half)
    rev = np.zeros(half, dtype=np.int64)
    for b in range(bits):
        rev |= ((idx >> b) & 1) << (bits - 1 - b)
    return rev


def _dft_tables(n_fft: int) -> np.ndarray:
    ang = 2.0 * np.pi * np.arange(n_fft) / n_fft
    return np.concatenate([np.cos(ang), np.sin(ang)])


@functools.lru_cache(maxsize=32)
def _plan_for(cfg: MelConfig) -> _Plan:
    return _Plan(cfg)


def _as_samples(samples: Any) -> np.ndarray:
    """Validate and convert input to the kernels' 1-D C-contiguous writable float32 array."""
    if not isinstance(samples, np.ndarray):
        try:
            samples = np.asarray(samples)
        except (ValueError, TypeError) as exc:
            raise TypeError(f"samples must be a 1-D array of audio samples: {exc}") from None
    dt = samples.dtype
    if dt.kind not in "fiu" or (dt.kind in "iu" and dt != np.int16):
        if dt.kind in "iu":
            raise TypeError(
                f"integer samples must be int16 PCM (scaled by 1/32768), got {dt}; "
                "convert to float32 with the scale of your format first"
            )
        raise TypeError(f"samples must be float32, float64 or int16 PCM, got dtype {dt}")
    if samples.ndim != 1:
        hint = " (multichannel audio: mix down to mono first, e.g. x.mean(axis=1))" if samples.ndim == 2 else ""
        raise ValueError(f"samples must be a 1-D mono array, got shape {samples.shape}{hint}")
    if dt.kind == "i":
        return np.multiply(samples, np.float32(1.0 / 32768.0), dtype=np.float32)  # exact
    x = np.ascontiguousarray(samples, dtype=np.float32)
    return x if x.flags.writeable else x.copy()


def _nonfinite_error() -> ValueError:
    return ValueError("samples contain NaN or Inf values (nothing was consumed)")


def mel_frames_for(num_samples: int, cfg: MelConfig, center: bool = False) -> int:
    """Number of frames a whole signal of ``num_samples`` samples yields.

    Parameters
    ----------
    num_samples
        Signal length (>= 0).
    cfg
        Front-end configuration.
    center
        Count as :func:`compute_mel` with ``center=True`` (``n_fft // 2`` zeros on both sides);
        an empty signal yields 0 frames either way.
    """
    if not isinstance(cfg, MelConfig):
        raise TypeError(f"cfg must be a MelConfig, got {type(cfg).__name__}")
    if isinstance(num_samples, bool) or not isinstance(num_samples, numbers.Integral):
        raise TypeError(f"num_samples must be an integer, got {type(num_samples).__name__}")
    if num_samples < 0:
        raise ValueError(f"num_samples must be >= 0, got {num_samples}")
    if num_samples == 0:
        return 0
    total = num_samples + 2 * (cfg.n_fft // 2) if center else num_samples
    return 0 if total < cfg.n_fft else (total - cfg.n_fft) // cfg.hop_length + 1


def compute_mel(signal: Any, cfg: MelConfig, center: bool = False) -> np.ndarray:
    """Log-mel spectrogram of a whole signal with the streaming kernels.

    Parameters
    ----------
    signal
        1-D mono samples (see the module docstring for accepted dtypes).
    cfg
        Front-end configuration.
    center
        False: librosa ``center=False`` framing. True: zero-pad ``n_fft // 2`` samples on both
        sides first, as librosa's default ``center=True``.

    Returns
    -------
    np.ndarray
        float32 array of shape ``(mel_frames_for(len(signal), cfg, center), cfg.n_mels)``.
    """
    if not isinstance(cfg, MelConfig):
        raise TypeError(f"cfg must be a MelConfig, got {type(cfg).__name__}")
    x = _as_samples(signal)
    n_frames = mel_frames_for(x.shape[0], cfg, center)
    if center and x.shape[0]:
        pad = np.zeros(cfg.n_fft // 2, dtype=x.dtype)
        x = np.concatenate([pad, x, pad])
    _k.compile_kernels()
    out = np.empty((n_frames, cfg.n_mels), dtype=np.float32)
    if _k.process_block(x, 0, 0, out, _plan_for(cfg).new_workspace()):
        raise _nonfinite_error()
    return out


def warmup() -> None:
    """Compile or load (numba disk cache) every kernel; call before opening an audio stream."""
    _k.compile_kernels()


class StreamingMel:
    """Incremental log-mel front end: blocks of samples in, newly completed frames out.

    Parameters
    ----------
    cfg
        Front-end configuration. Construction builds the tables and compiles (or loads) the
        kernels, so ``process`` never compiles.

    Notes
    -----
    State: the samples not yet consumed by a frame (fewer than ``n_fft``) live in a
    preallocated buffer inside the workspace; ``process`` allocates nothing but its output
    array (for fast-path input: a writable C-contiguous float32 array).
    """

    __slots__ = ("_cfg", "_frames", "_hop", "_n_fft", "_n_mels", "_pending", "_skip", "_ws")

    def __init__(self, cfg: MelConfig) -> None:
        if not isinstance(cfg, MelConfig):
            raise TypeError(f"cfg must be a MelConfig, got {type(cfg).__name__}")
        _k.compile_kernels()
        self._cfg = cfg
        self._ws = _plan_for(cfg).new_workspace()
        self._n_fft = cfg.n_fft
        self._hop = cfg.hop_length
        self._n_mels = cfg.n_mels
        self._pending = 0
        self._skip = 0
        self._frames = 0

    @property
    def config(self) -> MelConfig:
        """The configuration."""
        return self._cfg

    @property
    def frames_emitted(self) -> int:
        """Frames returned since construction or the last :meth:`reset`."""
        return self._frames

    @property
    def pending_samples(self) -> int:
        """Buffered samples (``< n_fft``) that the next frame will start with."""
        return self._pending

    def reset(self) -> None:
        """Forget the stream: the next sample starts frame 0 again."""
        self._pending = 0
        self._skip = 0
        self._frames = 0

    @staticmethod
    def warmup() -> None:
        """Compile or load every kernel (also done by the constructor)."""
        _k.compile_kernels()

    def process(self, samples: Any) -> np.ndarray:
        """Consume a block of samples and return the frames it completes.

        Parameters
        ----------
        samples
            1-D mono block of any length (see the module docstring for dtypes).

        Returns
        -------
        np.ndarray
            float32 array ``(new_frames, n_mels)``, possibly with 0 rows.

        Raises
        ------
        TypeError, ValueError
            Unsupported dtype or shape; NaN/Inf samples (the state is then unchanged).
        """
        # Hot path, kept flat: the dispatcher itself rejects (TypeError) anything but a
        # writable C-contiguous 1-D float32 array; such input takes the converting path.
        try:
            n = samples.shape[0]
            skip = self._skip
            x_start = (skip if skip < n else n) if skip else 0
            pending = self._pending
            total = pending + n - x_start
            n_fft = self._n_fft
            hop = self._hop
            n_frames = (total - n_fft) // hop + 1 if total >= n_fft else 0
            out = _empty((n_frames, self._n_mels), _FLOAT32)
            status = _process_block(samples, x_start, pending, out, self._ws)
        except (AttributeError, IndexError, TypeError):
            status = -1
        if status:
            if status < 0:
                return self._process_converted(samples)
            raise _nonfinite_error()
        rest = total - n_frames * hop
        if rest >= 0:
            self._pending = rest
            if skip:
                self._skip = skip - x_start
        else:  # hop > n_fft: the next frame starts after samples not seen yet
            self._pending = 0
            self._skip = -rest
        self._frames += n_frames
        return out

    def _process_converted(self, samples: Any) -> np.ndarray:
        x = _as_samples(samples)  # raises the user-facing TypeError/ValueError
        if x is samples:
            raise TypeError(f"internal error: the mel kernel rejected a float32 array of shape {x.shape}")
        return self.process(x)
