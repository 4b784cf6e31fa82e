"""Streaming resampler stage: device/native rate, any channel count -> mono float32 at the model rate."""

from __future__ import annotations

import numbers

import numpy as np
import soxr

__all__ = ["MAX_RATE", "MIN_RATE", "QUALITIES", "Resampler", "validate_rate"]

MIN_RATE = 1000
"""Lowest accepted sample rate in Hz."""
MAX_RATE = 768_000
"""Highest accepted sample rate in Hz (the highest rate audio interfaces offer)."""
QUALITIES = ("QQ", "LQ", "MQ", "HQ", "VHQ")
"""soxr quality presets, lowest to highest."""

_INT16_SCALE = np.float32(1.0 / 32768.0)


def validate_rate(rate: object, name: str = "sample rate") -> int:
    """Return ``rate`` as an int after checking it is a whole number of Hz in [MIN_RATE, MAX_RATE].

    Integral floats such as ``44100.0`` (what audio device queries return) are accepted.

    Parameters
    ----------
    rate : object
        The value to check.
    name : str, optional
        What the value is, for the error message.

    Returns
    -------
    int
        The rate in Hz.

    Raises
    ------
    ValueError
        If ``rate`` is not a whole number in range.
    """
    if isinstance(rate, bool):
        raise ValueError(f"{name} must be an integer number of Hz, got {rate!r}")
    if isinstance(rate, numbers.Integral):
        value = int(rate)
    elif isinstance(rate, numbers.Real) and float(rate).is_integer():
        value = int(rate)
    else:
        raise ValueError(f"{name} must be an integer number of Hz, got {rate!r}")
    if not MIN_RATE <= value <= MAX_RATE:
        raise ValueError(f"{name} must be between {MIN_RATE} and {MAX_RATE} Hz, got {value}")
    return value


class Resampler:
    """Mix down to mono and resample, block by block, with soxr's streaming resampler.

    Feeding a signal block by block and calling :meth:`flush` at the end gives the same samples as
    ``soxr.resample`` on the whole signal (same filter, same rounding), whatever the block sizes.

    Parameters
    ----------
    in_rate : int
        Input sample rate in Hz (whole number; ``44100.0`` is accepted).
    out_rate : int
        Output sample rate in Hz.
    channels : int, optional
        Channels of the input blocks (default 1). Multi-channel input is mixed down to mono by the
        mean of the channels BEFORE resampling.
    quality : str, optional
        soxr quality preset, one of ``QQ, LQ, MQ, HQ, VHQ`` (default ``HQ``), case-insensitive.

    Notes
    -----
    Input dtypes: float32 is used as is; float64 is converted to float32; int16 is converted to
    float32 as ``x / 32768`` (full scale -> [-1, 1)). Other dtypes raise TypeError. Blocks holding
    NaN or Inf raise ValueError.

    When ``in_rate == out_rate`` the stage is a pass-through: a C-contiguous float32 mono block is
    returned as is (the output shares memory with the input), otherwise only the conversion/mixdown
    copies are made.
    """

    def __init__(self, in_rate: int, out_rate: int, channels: int = 1, quality: str = "HQ") -> None:
        self.in_rate = validate_rate(in_rate, "input sample rate")
        self.out_rate = validate_rate(out_rate, "output sample rate")
        if (
            isinstance(channels, bool)
            or not isinstance(channels, numbers.Integral)
            or not 1 <= channels <= 64
        ):
            raise ValueError(f"channels must be an int in [1, 64], got {channels!r}")
        self.channels = int(channels)
        self._mix = np.full(self.channels, 1.0 / self.channels, np.float32)  # down-mix weights (a mean)
        if not isinstance(quality, str) or quality.upper() not in QUALITIES:
            raise ValueError(f"resampler quality must be one of {', '.join(QUALITIES)}, got {quality!r}")
        self.quality = quality.upper()
        self.passthrough = self.in_rate == self.out_rate
        self._stream = (
            None
            if self.passthrough
            else soxr.ResampleStream(self.in_rate, self.out_rate, 1, dtype="float32", quality=self.quality)
        )
        self._empty = np.zeros(0, dtype=np.float32)

    def _to_mono(self, block: np.ndarray) -> np.ndarray:
        """Validate ``block`` and return it as mono float32 (1-D)."""
        if not isinstance(block, np.ndarray):
            raise TypeError(f"Resampler.process needs a numpy array, got {type(block).__name__}")
        if block.ndim == 1:
            if self.channels != 1:
                raise ValueError(
                    f"Resampler expects blocks shaped (n, {self.channels}), got 1-D shape {block.shape}"
                )
        elif block.ndim != 2 or block.shape[1] != self.channels:
            raise ValueError(f"Resampler expects blocks shaped (n, {self.channels}), got shape {block.shape}")
        if block.dtype == np.float32:
            x = block
        elif block.dtype == np.float64:
            x = block.astype(np.float32)
        elif block.dtype == np.int16:
            x = block.astype(np.float32)
            x *= _INT16_SCALE
        else:
            raise TypeError(f"Resampler accepts float32, float64 or int16 blocks, got {block.dtype}")
        mono = x if x.ndim == 1 else x[:, 0] if self.channels == 1 else x @ self._mix
        # NaN and Inf survive the mix (inf - inf is NaN); a float32 sum of finite samples can only
        # overflow for absurd levels, which the exact check then clears.
        if not np.isfinite(mono.sum()) and not np.isfinite(x).all():
            raise ValueError("Resampler: audio block contains NaN or Inf samples")
        return np.ascontiguousarray(mono)

    def process(self, block: np.ndarray) -> np.ndarray:
        """Resample one block.

        Parameters
        ----------
        block : numpy.ndarray
            ``(n, channels)`` (or ``(n,)`` when ``channels == 1``) float32, float64 or int16 samples.

        Returns
        -------
        numpy.ndarray
            Mono float32 output; its length varies from block to block (soxr's filter delay is
            released by :meth:`flush`).
        """
        x = self._to_mono(block)
        if self._stream is None:
            return x
        return self._stream.resample_chunk(x)

    def flush(self) -> np.ndarray:
        """Return the tail at the end of the stream and make the stage ready for a new stream.

        Returns
        -------
        numpy.ndarray
            Mono float32 samples still held in the filter (empty for a pass-through).
        """
        if self._stream is None:
            return self._empty.copy()
        tail = self._stream.resample_chunk(self._empty, last=True)
        self._stream.clear()
        return tail

    def reset(self) -> None:
        """Drop all buffered state; the next block starts a new stream."""
        if self._stream is not None:
            self._stream.clear()

    def __repr__(self) -> str:
        return (
            f"Resampler(in_rate={self.in_rate}, out_rate={self.out_rate}, channels={self.channels}, "
            f"quality={self.quality!r})"
        )
