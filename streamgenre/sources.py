"""Audio file decoding and the file source: any audio file -> mono float32 blocks at the model rate.

Decoding goes through libsndfile (``soundfile``: wav, flac, ogg/vorbis, au, aiff, ...) first and falls
back to FFmpeg (``PyAV``: mp3, m4a/aac, opus, wma, video containers, ...). MPEG audio always goes to
FFmpeg, also when libsndfile could read it: libsndfile's mpg123 prints decoder messages on stderr.
Both backends are read incrementally, mixed down and resampled with the streaming :class:`Resampler`,
so :func:`decode_file` (whole file) and :class:`FileSource` (blocks) return the same samples.

A truncated or partly corrupt file yields the audio that decodes, with a logged warning; a file
with no decodable audio raises :class:`AudioDecodeError`.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from collections.abc import Generator, Iterator
from pathlib import Path

import av
import numpy as np
import soundfile as sf

from streamgenre.errors import AudioDecodeError
from streamgenre.resample import Resampler, validate_rate

__all__ = ["FileSource", "decode_file"]

logger = logging.getLogger(__name__)

_NATIVE_BLOCK = 8192  # frames per libsndfile read
_SHORT_FRACTION = 0.98  # decoding less than this fraction of the announced duration means truncation
# libsndfile log line for a WAV/AIFF data chunk longer than the file: "data : 246962 (should be 123459)".
_DATA_SHORT_RE = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
# Decoded with FFmpeg without asking libsndfile first (its MPEG decoder is noisy on stderr).
_FFMPEG_FIRST = frozenset({".mp3", ".mp2", ".mpga", ".m4a", ".mp4", ".aac", ".wma", ".webm", ".mkv", ".opus"})


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _check_path(path: str | os.PathLike[str]) -> Path:
    """Return ``path`` as a Path, or raise AudioDecodeError for what can be told without decoding."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"audio path must be a str or os.PathLike, got {type(path).__name__}")
    p = Path(path)
    if not p.exists():
        raise AudioDecodeError(f"cannot decode {p}: no such file")
    if p.is_dir():
        raise AudioDecodeError(f"cannot decode {p}: it is a directory, not an audio file")
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise AudioDecodeError(f"cannot decode {p}: {_one_line(exc.strerror or exc)}") from None
    if size == 0:
        raise AudioDecodeError(f"cannot decode {p}: the file is empty")
    if not os.access(p, os.R_OK):
        raise AudioDecodeError(f"cannot decode {p}: permission denied")
    return p


class _SoundFileDecoder:
    """libsndfile backend: native (n, channels) float32 chunks."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._f = sf.SoundFile(str(path))  # raises for formats libsndfile does not read
        self.rate = int(self._f.samplerate)
        if self._f.frames == 0:
            self._f.close()
            raise AudioDecodeError(f"cannot decode {path}: the file contains no audio samples")
        # Announced duration in seconds (libsndfile reports a huge count when it does not know).
        self.duration: float | None = self._f.frames / self.rate if 0 < self._f.frames < 2**62 else None
        self.subtype = self._f.subtype or ""
        log = self._f.extra_info or ""
        match = _DATA_SHORT_RE.search(log)
        self._truncated: str | None = None
        if match and int(match.group(1)) not in (0, 0xFFFFFFFF) and int(match.group(1)) > int(match.group(2)):
            self._truncated = "the header announces more audio data than the file holds"
        elif "lacks an end-of-stream" in log:
            self._truncated = "the stream has no end-of-stream marker"

    def chunks(self) -> Iterator[np.ndarray]:
        total = 0
        error: str | None = None
        while True:
            try:
                chunk = self._f.read(_NATIVE_BLOCK, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as exc:
                error = _one_line(exc) or type(exc).__name__
                break
            if chunk.shape[0] == 0:
                break
            total += chunk.shape[0]
            yield chunk
        _finish(self.path, total, self.rate, self.duration, error, self._truncated)

    def close(self) -> None:
        self._f.close()


class _PyAVDecoder:
    """FFmpeg backend: first audio stream, converted to planar float32, native (n, channels) chunks."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._c = av.open(str(path), mode="r")
        if not self._c.streams.audio:
            self._c.close()
            raise AudioDecodeError(f"cannot decode {path}: no audio stream found (not an audio file?)")
        self._s = self._c.streams.audio[0]
        self.rate = int(self._s.codec_context.sample_rate or 0)
        self.duration: float | None = None  # announced (often estimated) duration in seconds
        if self._s.duration and self._s.time_base:
            self.duration = float(self._s.duration * self._s.time_base)
        elif self._c.duration:
            self.duration = self._c.duration / av.time_base

    def chunks(self) -> Iterator[np.ndarray]:
        total = 0
        error: str | None = None
        pending: list[np.ndarray] = []  # codec frames are small (~1k samples): batch them for the resampler
        pending_frames = 0
        try:
            for planar in self._planar_frames():
                pending.append(planar)
                pending_frames += planar.shape[1]
                if pending_frames >= _NATIVE_BLOCK:
                    chunk = np.concatenate(pending, axis=1).T.copy()
                    pending, pending_frames = [], 0
                    total += chunk.shape[0]
                    yield chunk
        except (av.FFmpegError, ValueError) as exc:
            error = _one_line(exc) or type(exc).__name__
        if pending_frames:
            total += pending_frames
            yield np.concatenate(pending, axis=1).T.copy()
        _finish(self.path, total, self.rate, self.duration, error, None)

    def _planar_frames(self) -> Iterator[np.ndarray]:
        """Decoded audio as (channels, n) float32, all at the first frame's rate and layout."""
        converter: av.AudioResampler | None = None
        for frame in self._c.decode(self._s):
            if converter is None:
                self.rate = int(frame.sample_rate)
                converter = av.AudioResampler(format="fltp", layout=frame.layout, rate=frame.sample_rate)
            for out in converter.resample(frame):
                yield out.to_ndarray()
        if converter is not None:
            for out in converter.resample(None):
                yield out.to_ndarray()

    def close(self) -> None:
        self._c.close()


def _finish(
    path: Path, total: int, rate: int, duration: float | None, error: str | None, truncated: str | None
) -> None:
    """End-of-decode checks shared by the backends: no audio is an error, a short decode a warning."""
    if total == 0:
        reason = f"no decodable audio ({error})" if error else "the file contains no audio samples"
        raise AudioDecodeError(f"cannot decode {path}: {reason}")
    seconds = total / rate if rate else 0.0
    if error:
        logger.warning(
            "%s: decoding stopped after %.2f s (%s); using the audio before it", path, seconds, error
        )
    elif truncated:
        logger.warning(
            "%s: file looks truncated (%s); using the %.2f s that decode", path, truncated, seconds
        )
    elif duration and seconds < _SHORT_FRACTION * duration:
        logger.warning(
            "%s: file looks truncated (%.2f s announced); using the %.2f s that decode",
            path,
            duration,
            seconds,
        )


def _open_decoder(path: str | os.PathLike[str]) -> _SoundFileDecoder | _PyAVDecoder:
    p = _check_path(path)
    decoder: _SoundFileDecoder | _PyAVDecoder | None = None
    if p.suffix.lower() not in _FFMPEG_FIRST:
        try:
            decoder = _SoundFileDecoder(p)
        except AudioDecodeError:
            raise
        except (sf.LibsndfileError, RuntimeError, OSError):
            decoder = None  # not a libsndfile format: try FFmpeg
        if decoder is not None and decoder.subtype.startswith("MPEG_LAYER"):
            decoder.close()  # libsndfile's mpg123 prints decoder errors to stderr; FFmpeg is quiet
            decoder = None
    if decoder is not None:
        return decoder
    try:
        return _PyAVDecoder(p)
    except AudioDecodeError:
        raise
    except (av.FFmpegError, OSError, ValueError, EOFError) as exc:
        detail = getattr(exc, "strerror", None) or str(exc)
        detail = _one_line(detail).split(":")[0] if detail else type(exc).__name__
        raise AudioDecodeError(
            f"cannot decode {p}: not a recognised audio format, or the file is corrupt ({detail})"
        ) from None


def _resampled(decoder: _SoundFileDecoder | _PyAVDecoder, sample_rate: int) -> Iterator[np.ndarray]:
    """Decode, mix down and resample: the one code path behind decode_file and FileSource."""
    resampler: Resampler | None = None
    for chunk in decoder.chunks():
        if resampler is None:
            try:
                resampler = Resampler(decoder.rate, sample_rate, channels=chunk.shape[1])
            except ValueError as exc:
                raise AudioDecodeError(f"cannot decode {decoder.path}: {exc}") from None
        try:
            out = resampler.process(chunk)
        except ValueError as exc:
            raise AudioDecodeError(f"cannot decode {decoder.path}: {exc}") from None
        if out.shape[0]:
            yield out
    if resampler is not None:
        tail = resampler.flush()
        if tail.shape[0]:
            yield tail


def decode_file(path: str | os.PathLike[str], sample_rate: int) -> np.ndarray:
    """Decode a whole audio file to mono float32 at ``sample_rate``.

    Parameters
    ----------
    path : str or os.PathLike
        Audio file (wav, flac, ogg, au, mp3, m4a, opus, ... anything libsndfile or FFmpeg reads).
    sample_rate : int
        Output sample rate in Hz.

    Returns
    -------
    numpy.ndarray
        1-D float32 samples: the mean of the channels, resampled with :class:`Resampler`.
        Identical to the concatenated blocks of :class:`FileSource`.

    Raises
    ------
    AudioDecodeError
        Missing file, directory, empty file, not audio, or no decodable samples.
    ValueError
        If ``sample_rate`` is not a valid rate.
    """
    rate = validate_rate(sample_rate, "sample_rate")
    decoder = _open_decoder(path)
    try:
        parts = list(_resampled(decoder, rate))
    finally:
        decoder.close()
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


class FileSource:
    """Iterate over an audio file as mono float32 blocks, decoding incrementally.

    Parameters
    ----------
    path : str or os.PathLike
        Audio file (see :func:`decode_file`).
    sample_rate : int
        Output sample rate in Hz.
    block_seconds : float, optional
        Block length; every block has ``round(sample_rate * block_seconds)`` samples except
        possibly the last, which is shorter (default 0.1 s).
    realtime : bool, optional
        If True, pace the blocks at wall-clock speed: a block is returned when its last sample
        would have been captured live (due times from a monotonic start, so no drift accumulates).
        If False (default), as fast as decoding allows.

    Raises
    ------
    AudioDecodeError
        When the file cannot be opened as audio (raised here) or turns out to hold no decodable
        audio (raised by the first ``next()``).
    ValueError
        For an invalid ``sample_rate`` or ``block_seconds``.

    Notes
    -----
    A FileSource is a single-pass iterator, like a file object; use it as a context manager or
    call :meth:`close` to release the decoder early.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        sample_rate: int,
        block_seconds: float = 0.1,
        realtime: bool = False,
    ) -> None:
        self._rate = validate_rate(sample_rate, "sample_rate")
        if isinstance(block_seconds, bool) or not isinstance(block_seconds, (int, float)):
            raise ValueError(f"block_seconds must be a number, got {block_seconds!r}")
        if not (math.isfinite(block_seconds) and block_seconds > 0):
            raise ValueError(f"block_seconds must be a finite number > 0, got {block_seconds!r}")
        self._block = round(self._rate * block_seconds)
        if self._block < 1:
            raise ValueError(f"block_seconds={block_seconds} is shorter than one sample at {self._rate} Hz")
        self._realtime = bool(realtime)
        self._decoder = _open_decoder(path)
        self._path = self._decoder.path
        self._duration = self._decoder.duration
        self._gen = self._blocks()
        self._closed = False

    @property
    def path(self) -> Path:
        """The audio file."""
        return self._path

    @property
    def sample_rate(self) -> int:
        """Output sample rate in Hz."""
        return self._rate

    @property
    def block_size(self) -> int:
        """Samples per block (the last block may be shorter)."""
        return self._block

    @property
    def duration(self) -> float | None:
        """Duration in seconds announced by the file (an estimate for some mp3s), or None when unknown."""
        return self._duration

    def __iter__(self) -> FileSource:
        return self

    def __next__(self) -> np.ndarray:
        return next(self._gen)

    def _blocks(self) -> Generator[np.ndarray, None, None]:
        size = self._block
        start = time.monotonic()
        emitted = 0
        buf = np.empty(size, dtype=np.float32)
        fill = 0
        for chunk in _resampled(self._decoder, self._rate):
            pos = 0
            n = chunk.shape[0]
            while pos < n:
                k = min(size - fill, n - pos)
                buf[fill : fill + k] = chunk[pos : pos + k]
                fill += k
                pos += k
                if fill == size:
                    emitted += size
                    self._pace(start, emitted)
                    yield buf
                    buf = np.empty(size, dtype=np.float32)
                    fill = 0
        self._decoder.close()
        if fill:
            self._pace(start, emitted + fill)
            yield buf[:fill].copy()

    def _pace(self, start: float, emitted: int) -> None:
        if self._realtime:
            delay = start + emitted / self._rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def close(self) -> None:
        """Stop decoding and release the file (idempotent)."""
        if not self._closed:
            self._closed = True
            self._gen.close()
            self._decoder.close()

    def __enter__(self) -> FileSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FileSource({str(self._path)!r}, sample_rate={self._rate}, block={self._block})"
