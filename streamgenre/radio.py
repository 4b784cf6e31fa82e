"""Radio input stage: an HTTP audio stream (Icecast/Shoutcast, or a plain file over HTTP) -> mono blocks.

One :class:`RadioSource` per feed runs a reader thread::

    HTTP GET (Icy-MetaData: 1) -> IcyReader (ICY blocks out, StreamTitle parsed) -> PyAV demux,
    packet by packet -> decode -> Resampler (mixdown + soxr to the model rate) -> 0.1 s blocks -> queue

and a watchdog thread that proves liveness: each phase of a connection has a deadline (connect
and headers: ``connect_timeout``; then no audio for ``stall_seconds`` is a *stall*) and the
watchdog shuts the socket down when it passes, so every wait is bounded whatever the server does
(a SIGSTOPped server, a trickle of header bytes, garbage that never decodes).

A bad packet (an ID3 tag when the source loops, garbage bytes) is skipped and counted in
:attr:`RadioSource.decode_errors`. Every failure (refused, HTTP error, reset, stall, not audio,
bad headers) closes the connection and reconnects after an exponential :class:`Backoff` with
jitter, capped at 4 s by default so that audio resumes within ~5 s of the server coming back.
A response with a Content-Length (a plain file) ends the feed at its end; a live stream that
ends is reconnected.

Consumers either use the engine's ``BlockSource`` protocol (:meth:`RadioSource.read_block`) or
:meth:`RadioSource.read_items`, which also returns the in-band :class:`StreamEvent` objects
(connected, disconnected, title, ended) in stream order.
"""

from __future__ import annotations

import base64
import http.client
import logging
import math
import random
import re
import socket
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import av
import numpy as np

from streamgenre import __version__
from streamgenre.errors import ConfigError, StreamgenreError
from streamgenre.oggtags import OggTagSniffer
from streamgenre.resample import Resampler
from streamgenre.state import SourceInfo

__all__ = [
    "AudioBlock",
    "Backoff",
    "FeedHealth",
    "IcyReader",
    "RadioSource",
    "StreamError",
    "StreamEvent",
    "display_url",
    "parse_icy_metadata",
    "safe_text",
]

log = logging.getLogger(__name__)

USER_AGENT = f"streamgenre/{__version__}"
MAX_METAINT = 1 << 20  # icy-metaint above this is nonsense (real servers use 8000-32768)
MAX_REDIRECTS = 5
MAX_TITLE_CHARS = 1024
MAX_BAD_PACKETS = 200  # consecutive undecodable packets before the connection is dropped
REPLAY_BYTES = 256 * 1024  # audio bytes kept to re-probe a stream whose first probe failed
HEALTHY_SECONDS = 10.0  # a connection that delivered audio this long resets the backoff
WATCH_PERIOD_S = 0.2
WARN_REPEAT_S = 300.0  # the same failure is logged as a warning at most this often
# FFmpeg's format probe reads up to 1 MB while its score stays low (as for an MP3 burst that starts
# mid-frame): at radio bitrates that is many seconds of waiting. 16 kB decides MP3/AAC/Ogg reliably.
_PROBE_OPTIONS = {"formatprobesize": "16384"}
_NOT_AUDIO_TYPES = (
    "text/",
    "application/json",
    "application/xml",
    "application/xhtml",
    "image/",
    "video/mp4",
)


class StreamError(StreamgenreError):
    """A failed connection or stream: ``kind`` says what (``refused``, ``http``, ``not_audio``,
    ``bad_header``, ``reset``, ``timeout``, ``stall``, ``decode``, ``eof``); ``str()`` is one line."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


# ---------------------------------------------------------------------------------------------- text
_UNSAFE_RE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]")


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(value: object, limit: int = 200) -> str:
    """``value`` as one printable line for terminals and logs: escapes shown, never interpreted.

    Control characters (ESC, CR, BEL, C1 controls such as CSI) and invisible Unicode format
    characters (bidi overrides, zero-width) become ``\\xNN``/``\\uNNNN``; text longer than
    ``limit`` characters is cut with an ellipsis. Rich markup such as ``[bold]`` is left as text:
    callers must print it with :class:`rich.text.Text` (never markup-parsed).
    """
    text = _UNSAFE_RE.sub(_escape_char, str(value))
    if not text.isascii():
        text = "".join(f"\\u{ord(c):04x}" if unicodedata.category(c) in ("Cs", "Co") else c for c in text)
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def display_url(url: str) -> str:
    """``url`` without its user:password part (safe to log and show)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()


# ---------------------------------------------------------------------------------------------- ICY
_ICY_FIELD_RE = re.compile(r"(\w+)='(.*?)';(?=\s*\w+='|\s*$)", re.DOTALL)


def parse_icy_metadata(raw: bytes) -> dict[str, str]:
    """Parse one ICY metadata block (``StreamTitle='…';StreamUrl='…';`` padded with NULs).

    Text is decoded as UTF-8, or as Latin-1 when it is not valid UTF-8 (old Shoutcast servers).
    A title may itself contain ``';``: a field ends only where the next ``key='`` or the end
    follows. Returns an empty dict for an empty or unparseable block.
    """
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise TypeError(f"ICY metadata must be bytes, got {type(raw).__name__}")
    data = bytes(raw).rstrip(b"\x00")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return {key: value for key, value in _ICY_FIELD_RE.findall(text.strip())}


class IcyReader:
    """A file-like object for PyAV: the audio bytes of an HTTP response, ICY metadata taken out.

    Parameters
    ----------
    read1
        Returns up to ``n`` bytes as soon as some are available, ``b""`` at the end
        (``http.client.HTTPResponse.read1``).
    metaint
        Audio bytes between metadata blocks (the ``icy-metaint`` header); 0 when there is none.
    on_metadata
        Called with the parsed fields of each non-empty metadata block.
    check
        Called before every read; raises to abort (the watchdog's stall/close signal).
    replay_bytes
        The first audio bytes are kept (up to this many) so that :meth:`rewind` can hand them
        to a second probe after a failed first one.
    on_audio
        Called with every chunk of audio bytes as it arrives from the network (once per byte,
        rewinds included): where Ogg comment headers are sniffed for titles.
    """

    def __init__(
        self,
        read1: Callable[[int], bytes],
        metaint: int = 0,
        on_metadata: Callable[[dict[str, str]], None] | None = None,
        check: Callable[[], None] | None = None,
        replay_bytes: int = REPLAY_BYTES,
        on_audio: Callable[[bytes], None] | None = None,
    ) -> None:
        if isinstance(metaint, bool) or not isinstance(metaint, int) or not 0 <= metaint <= MAX_METAINT:
            raise ValueError(f"metaint must be an int in [0, {MAX_METAINT}], got {metaint!r}")
        self._read1 = read1
        self.metaint = metaint
        self._on_metadata = on_metadata
        self._on_audio = on_audio
        self._check = check
        self._to_meta = metaint
        self._replay = bytearray()
        self._replay_limit = int(replay_bytes)
        self._replay_pos: int | None = None  # reading from the replay buffer when not None
        self.audio_bytes = 0
        self.metadata_blocks = 0
        self.eof = False

    def rewind(self) -> bool:
        """Serve the audio read so far again (for a second probe); False when too much was read."""
        if len(self._replay) >= self._replay_limit:
            return False
        self._replay_pos = 0
        return True

    def stop_recording(self) -> None:
        """Stop keeping audio for :meth:`rewind` (once the stream is open)."""
        self._replay_limit = 0
        self._replay = bytearray()
        self._replay_pos = None

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` audio bytes (``b""`` at the end of the stream)."""
        if self._check is not None:
            self._check()
        n = 65536 if n is None or n < 0 else int(n)
        if self._replay_pos is not None:
            chunk = bytes(self._replay[self._replay_pos : self._replay_pos + n])
            self._replay_pos += len(chunk)
            if self._replay_pos >= len(self._replay):
                self._replay_pos = None
            if chunk:
                return chunk
        data = self._read_audio(n)
        if self._replay_limit and len(self._replay) < self._replay_limit:
            self._replay += data
        return data

    def _read_audio(self, n: int) -> bytes:
        if self.eof or n == 0:
            return b""
        if self.metaint and self._to_meta == 0:
            if not self._read_metadata():
                self.eof = True
                return b""
        want = min(n, self._to_meta) if self.metaint else n
        data = self._read1(want)
        if not data:
            self.eof = True
            return b""
        if self.metaint:
            self._to_meta -= len(data)
        self.audio_bytes += len(data)
        if self._on_audio is not None:
            self._on_audio(data)
        return data

    def _read_exact(self, n: int) -> bytes | None:
        parts, have = [], 0
        for _ in range(n + 1):  # each read1 returns ≥ 1 byte or ends the stream
            if have >= n:
                break
            if self._check is not None:
                self._check()
            chunk = self._read1(n - have)
            if not chunk:
                return None
            parts.append(chunk)
            have += len(chunk)
        return b"".join(parts)

    def _read_metadata(self) -> bool:
        length = self._read_exact(1)
        if length is None:
            return False
        size = length[0] * 16
        raw = self._read_exact(size) if size else b""
        if raw is None:
            return False
        self._to_meta = self.metaint
        if size:
            self.metadata_blocks += 1
            fields = parse_icy_metadata(raw)
            if fields and self._on_metadata is not None:
                self._on_metadata(fields)
        return True


class _IcyResponse(http.client.HTTPResponse):
    """``HTTPResponse`` that also accepts Shoutcast v1's ``ICY 200 OK`` status line."""

    def _read_status(self) -> tuple[str, int, str]:
        if self.fp.peek(4)[:4] == b"ICY ":
            line = self.fp.readline(1025).decode("iso-8859-1")
            parts = line.split(None, 2)
            try:
                status = int(parts[1])
            except (IndexError, ValueError):
                raise http.client.BadStatusLine(line) from None
            return "HTTP/1.0", status, parts[2].strip() if len(parts) > 2 else ""
        return super()._read_status()


# ---------------------------------------------------------------------------------------------- backoff
@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: attempt ``k`` waits ``min(maximum, initial·factor^k)``,
    scaled by a uniform factor in ``[1 - jitter, 1]``.

    The default cap (4 s) keeps the time from a server coming back to audio flowing under 5 s.
    """

    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 4.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        for name in ("initial", "factor", "maximum", "jitter"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"backoff {name} must be a finite number, got {value!r}")
        if not 0 < self.initial <= self.maximum:
            raise ConfigError(f"backoff needs 0 < initial <= maximum, got {self.initial} and {self.maximum}")
        if self.factor < 1:
            raise ConfigError(f"backoff factor must be >= 1, got {self.factor}")
        if not 0 <= self.jitter < 1:
            raise ConfigError(f"backoff jitter must be in [0, 1), got {self.jitter}")

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0 = the first retry)."""
        if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 0:
            raise ValueError(f"attempt must be a non-negative int, got {attempt!r}")
        base = min(self.maximum, self.initial * self.factor ** min(attempt, 64))
        u = (rng or random).random()
        return base * (1.0 - self.jitter * u)


# ---------------------------------------------------------------------------------------------- items
@dataclass(frozen=True, slots=True)
class AudioBlock:
    """One block of mono audio at the source's rate, with when it was decoded."""

    samples: np.ndarray
    capture_time: float  # time.monotonic()
    wall_time: float  # time.time()


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """Something that happened in the stream, in order with its audio.

    ``kind``: ``connected`` (detail: format summary), ``disconnected`` (detail: reason),
    ``title`` (detail: the raw StreamTitle, possibly None when cleared), ``ended`` (a finite
    stream is over). ``connection`` numbers the connections (1 = the first).
    """

    kind: str
    wall_time: float
    detail: str | None
    connection: int


@dataclass(frozen=True)
class FeedHealth:
    """A consistent-enough view of a source's state for status lines and metrics."""

    state: str  # idle, connecting, streaming, waiting, ended, closed
    title: str | None
    last_error: str | None
    connections: int
    reconnects: int
    stalls: int
    decode_errors: int
    overflows: int
    bytes_in: int
    audio_seconds: float
    seconds_since_audio: float | None
    retry_in: float | None
    buffered_seconds: float
    codec: str | None


def _is_not_audio(content_type: str) -> bool:
    return any(content_type.startswith(prefix) for prefix in _NOT_AUDIO_TYPES)


_FORMAT_HINTS = {
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/aac": "aac",
    "audio/aacp": "aac",
    "audio/x-aac": "aac",
    "application/ogg": "ogg",
    "audio/ogg": "ogg",
    "audio/opus": "ogg",
    "audio/vorbis": "ogg",
    "audio/flac": "flac",
    "audio/x-flac": "flac",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
}


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


class RadioSource:
    """An HTTP audio stream as a source of mono float32 blocks at ``sample_rate``.

    Parameters
    ----------
    url
        ``http://`` or ``https://`` URL (``user:password@`` for basic auth is supported).
    sample_rate
        Output rate (the model's).
    name
        Feed name for logs (default: the URL without credentials).
    block_seconds
        Length of the blocks (the engine's 0.1 s).
    connect_timeout
        Seconds allowed to connect and receive the response headers.
    stall_seconds
        No decoded audio for this long (after connecting) is a stall: the connection is dropped.
    backoff
        Reconnect delays (default :class:`Backoff`).
    max_buffer_seconds
        Audio queued for the consumer at most. Beyond it a live stream's oldest blocks are dropped
        and counted in :attr:`overflows` (blocks); a file (a response with a Content-Length)
        pauses its download instead, so none of it is lost.
    on_data
        Called (from the reader thread) whenever an item was queued: lets one consumer wait for
        many sources.
    """

    def __init__(
        self,
        url: str,
        sample_rate: int,
        *,
        name: str | None = None,
        block_seconds: float = 0.1,
        connect_timeout: float = 5.0,
        stall_seconds: float = 10.0,
        backoff: Backoff | None = None,
        max_buffer_seconds: float = 30.0,
        on_data: Callable[[], None] | None = None,
    ) -> None:
        if not isinstance(url, str):
            raise TypeError(f"url must be a str, got {type(url).__name__}")
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"not an http(s) stream URL: {safe_text(url)!r}")
        try:
            parts.port  # noqa: B018 - validates the port
        except ValueError:
            raise ConfigError(f"bad port in stream URL: {safe_text(url)!r}") from None
        for label, value in (
            ("--connect-timeout", connect_timeout),
            ("--stall-timeout", stall_seconds),
            ("max_buffer_seconds", max_buffer_seconds),
            ("block_seconds", block_seconds),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1e6:
                raise ConfigError(f"{label} must be a positive number of seconds, got {value!r}")
        self.url = url.strip()
        self.name = name or display_url(self.url)
        self.sample_rate = int(sample_rate)
        self.block_samples = max(1, round(block_seconds * self.sample_rate))
        self.connect_timeout = float(connect_timeout)
        self.stall_seconds = float(stall_seconds)
        self.backoff = backoff or Backoff()
        self._max_blocks = max(1, math.ceil(max_buffer_seconds / block_seconds))
        self._on_data = on_data
        self._items: deque[AudioBlock | StreamEvent] = deque()
        self._blocks = 0
        self._cond = threading.Condition()
        self._closed = threading.Event()
        self._ended = False
        self._threads: list[threading.Thread] = []
        self._rng = random.Random()
        # connection state (written by the reader thread, read anywhere)
        self._sock: socket.socket | None = None
        self._deadline: float | None = None
        self._phase = "idle"
        self._abort_reason: StreamError | None = None
        self._retry_at: float | None = None
        self._last_audio: float | None = None
        self._buf = np.zeros(self.block_samples, np.float32)
        self._fill = 0
        self._resampler: Resampler | None = None
        self._converter: Any = None
        self._format: tuple[int, str, str] | None = None
        self._bad_logged = 0
        self._session_bytes = 0
        self._finite = False  # the current response has a Content-Length (a file, not a live stream)
        self._warned: tuple[str, float] | None = None
        self.state = "idle"
        self.title: str | None = None
        self.codec: str | None = None
        self.last_error: str | None = None
        self.connections = 0
        self.reconnects = 0
        self.stalls = 0
        self.decode_errors = 0
        self.overflows = 0
        self.input_overflows = 0
        self.bytes_in = 0
        self.samples_out = 0

    # ------------------------------------------------------------------ BlockSource protocol
    @property
    def exhausted(self) -> bool:
        """A finite stream has ended (or the source was closed) and every block was read."""
        return (self._ended or self._closed.is_set()) and self._blocks == 0

    def start(self) -> None:
        """Start the reader and watchdog threads (connection failures are retried, never raised)."""
        if self._threads:
            raise RuntimeError("RadioSource already started")
        for target, role in ((self._run, "reader"), (self._watch, "watchdog")):
            thread = threading.Thread(target=target, name=f"streamgenre-radio-{role}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def read_block(self, timeout: float) -> tuple[np.ndarray, float] | None:
        """The next ``(block, capture_time)``; None after ``timeout`` s without audio or at the end.

        Events are consumed silently here (the title stays readable as :attr:`title`).
        """
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            while True:
                while self._items:
                    item = self._items.popleft()
                    if isinstance(item, AudioBlock):
                        self._blocks -= 1
                        self._cond.notify_all()  # a file download waiting for room goes on
                        return item.samples, item.capture_time
                remaining = deadline - time.monotonic()
                if self._ended or self._closed.is_set() or remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def read_items(self, max_blocks: int | None = None) -> list[AudioBlock | StreamEvent]:
        """Queued blocks and events, in stream order, without waiting (at most ``max_blocks`` blocks)."""
        out: list[AudioBlock | StreamEvent] = []
        with self._cond:
            while self._items:
                if max_blocks is not None and isinstance(self._items[0], AudioBlock):
                    if max_blocks <= 0:
                        break
                    max_blocks -= 1
                item = self._items.popleft()
                if isinstance(item, AudioBlock):
                    self._blocks -= 1
                out.append(item)
            if out:
                self._cond.notify_all()
        return out

    @property
    def pending(self) -> bool:
        """Items are queued."""
        return bool(self._items)

    def source_info(self) -> SourceInfo:
        """``SourceInfo("url", name, sample_rate, 1)``: blocks are already mono at the model rate."""
        return SourceInfo("url", self.name, self.sample_rate, 1)

    def close(self, timeout: float = 1.0) -> None:
        """Stop the threads (the socket is shut down, so this returns within ``timeout``)."""
        self._closed.set()
        self._abort(StreamError("closed", "closed"))
        with self._cond:
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        self.state = "closed" if not self._ended else "ended"

    def health(self) -> FeedHealth:
        """Counters and connection state (for status lines, metrics and tests)."""
        now = time.monotonic()
        last = self._last_audio
        retry = self._retry_at
        return FeedHealth(
            state=self.state,
            title=self.title,
            last_error=self.last_error,
            connections=self.connections,
            reconnects=self.reconnects,
            stalls=self.stalls,
            decode_errors=self.decode_errors,
            overflows=self.overflows,
            bytes_in=self.bytes_in,
            audio_seconds=self.samples_out / self.sample_rate,
            seconds_since_audio=None if last is None else now - last,
            retry_in=None if retry is None or self.state != "waiting" else max(0.0, retry - now),
            buffered_seconds=self._blocks * self.block_samples / self.sample_rate,
            codec=self.codec,
        )

    # ------------------------------------------------------------------ queue
    def _push(self, item: AudioBlock | StreamEvent) -> None:
        with self._cond:
            if isinstance(item, AudioBlock) and self._finite:
                # A file (Content-Length) waits for the consumer instead of dropping audio: the
                # download just pauses. The stall watchdog is told that this wait is not a stall.
                while self._blocks >= self._max_blocks and not self._closed.is_set():
                    self._deadline = time.monotonic() + self.stall_seconds
                    self._cond.wait(0.25)
            self._items.append(item)
            if isinstance(item, AudioBlock):
                self._blocks += 1
                if self._blocks > self._max_blocks:  # a live stream's consumer fell behind: drop the oldest
                    for i, old in enumerate(self._items):
                        if isinstance(old, AudioBlock):
                            del self._items[i]
                            self._blocks -= 1
                            self.overflows += 1
                            break
            self._cond.notify_all()
        if self._on_data is not None:
            self._on_data()

    def _event(self, kind: str, detail: str | None = None) -> None:
        self._push(StreamEvent(kind, time.time(), detail, self.connections))

    # ------------------------------------------------------------------ watchdog
    def _watch(self) -> None:
        while not self._closed.wait(WATCH_PERIOD_S):
            deadline = self._deadline
            if deadline is None or time.monotonic() <= deadline:
                continue
            if self._phase == "connecting":
                self._abort(StreamError("timeout", f"no HTTP response within {self.connect_timeout:g} s"))
            elif self._phase == "probing":
                received = self.bytes_in - self._session_bytes
                self._abort(
                    StreamError(
                        "stall",
                        f"no audio decoded within {self.stall_seconds:g} s of connecting "
                        f"({received} bytes received, not decodable as audio)",
                    )
                )
            else:
                self._abort(StreamError("stall", f"no audio for {self.stall_seconds:g} s"))

    def _abort(self, reason: StreamError) -> None:
        """Make the reader give up the connection now (from any thread)."""
        self._deadline = None
        if self._abort_reason is None:
            self._abort_reason = reason
        sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed

    def _check(self) -> None:
        reason = self._abort_reason
        if reason is not None:
            raise reason

    # ------------------------------------------------------------------ reader thread
    def _run(self) -> None:
        attempt = 0
        while not self._closed.is_set():
            self.connections += 1
            if self.connections > 1:
                self.reconnects += 1
            started = time.monotonic()
            audio_before = self.samples_out
            error: StreamError | None = None
            try:
                finished = self._session()
            except StreamError as exc:
                error, finished = exc, False
            except Exception as exc:  # keep the thread alive whatever the server sends
                error, finished = self._classify(exc), False
            finally:
                self._sock = None
                self._deadline = None
            if self._abort_reason is not None and not self._closed.is_set():
                error = self._abort_reason  # the watchdog's verdict explains the EOF/exception it caused
            self._abort_reason = None
            if self._closed.is_set():
                break
            if finished:
                self._finish()
                return
            if error is None:
                error = StreamError("eof", "the server closed the stream")
            if error.kind == "stall":
                self.stalls += 1
            got_audio = self.samples_out > audio_before
            if got_audio:
                self._event("disconnected", str(error))
            healthy = got_audio and time.monotonic() - started >= HEALTHY_SECONDS
            attempt = 0 if healthy else attempt + 1  # failures in a row
            delay = self.backoff.delay(max(0, attempt - 1), self._rng)
            self.last_error = str(error)
            self._warn(error, delay)
            self.state = "waiting"
            self._retry_at = time.monotonic() + delay
            self._closed.wait(delay)
        self.state = "closed"

    def _warn(self, error: StreamError, delay: float) -> None:
        now = time.monotonic()
        text = str(error)
        repeat = (
            self._warned is not None and self._warned[0] == text and now - self._warned[1] < WARN_REPEAT_S
        )
        level = logging.DEBUG if repeat else logging.WARNING
        if not repeat:
            self._warned = (text, now)
        log.log(level, "%s: %s; reconnecting in %.1f s", safe_text(self.name), safe_text(text, 300), delay)

    def _finish(self) -> None:
        if self._resampler is not None:
            self._append(self._resampler.flush())
        if self._fill:
            self._push(AudioBlock(self._buf[: self._fill].copy(), time.monotonic(), time.time()))
            self._fill = 0
        self._ended = True
        self.state = "ended"
        self._event("ended")
        log.info(
            "%s: the stream ended (%.1f s of audio)",
            safe_text(self.name),
            self.samples_out / self.sample_rate,
        )

    def _classify(self, exc: BaseException) -> StreamError:
        if isinstance(exc, ConnectionRefusedError):
            return StreamError("refused", "connection refused")
        if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
            return StreamError("reset", f"connection reset ({_one_line(exc)})")
        if isinstance(exc, TimeoutError):
            if self._phase in ("probing", "streaming"):  # a read timeout mid-stream is a stall
                return StreamError("stall", f"no audio for {self.stall_seconds:g} s (read timed out)")
            return StreamError("timeout", f"no HTTP response within {self.connect_timeout:g} s")
        if isinstance(exc, socket.gaierror):
            return StreamError("refused", f"cannot resolve the host ({_one_line(exc)})")
        if isinstance(exc, http.client.HTTPException):
            return StreamError(
                "bad_header", f"bad HTTP response ({type(exc).__name__}: {_one_line(exc)[:200]})"
            )
        if isinstance(exc, av.error.ExitError):
            return StreamError("reset", "the stream read was interrupted")
        if isinstance(exc, av.FFmpegError):
            return StreamError("decode", f"cannot decode the stream ({_one_line(exc)[:200]})")
        if isinstance(exc, OSError):
            return StreamError("reset", f"network error ({_one_line(exc)[:200]})")
        log.debug("unexpected error in %s", self.name, exc_info=exc)
        return StreamError("decode", f"unexpected {type(exc).__name__}: {_one_line(exc)[:200]}")

    def _connect(self) -> tuple[socket.socket, http.client.HTTPResponse]:
        """Connect, send the request, follow redirects; returns the socket and the response."""
        url = self.url
        for _ in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
            conn = cls(parts.hostname, parts.port, timeout=self.connect_timeout)
            conn.response_class = _IcyResponse
            headers = {"User-Agent": USER_AGENT, "Icy-MetaData": "1", "Accept": "*/*", "Connection": "close"}
            if parts.username is not None:
                token = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
                headers["Authorization"] = "Basic " + base64.b64encode(token).decode("ascii")
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            try:
                conn.connect()
                sock = self._sock = conn.sock  # kept: getresponse() drops conn.sock on "Connection: close"
                self._check()
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
            except BaseException:
                conn.close()
                raise
            conn.close()  # the response owns the connection now
            if resp.status in (301, 302, 303, 307, 308) and resp.getheader("Location"):
                location = resp.getheader("Location", "")
                resp.close()
                url = urljoin(url, location)
                if urlsplit(url).scheme not in ("http", "https"):
                    raise StreamError("http", f"redirected to a non-HTTP URL ({safe_text(location)})")
                continue
            return sock, resp
        raise StreamError("http", f"more than {MAX_REDIRECTS} redirects")

    def _check_response(self, resp: http.client.HTTPResponse) -> int:
        if resp.status != 200:
            raise StreamError("http", f"HTTP {resp.status} {safe_text(resp.reason, 80)}".rstrip())
        content_type = (resp.getheader("Content-Type") or "").split(";")[0].strip().lower()
        if _is_not_audio(content_type):
            raise StreamError(
                "not_audio", f"not an audio stream (Content-Type {safe_text(content_type, 80)})"
            )
        raw = resp.getheader("icy-metaint")
        if raw is None:
            return 0
        try:
            metaint = int(raw.strip())
        except ValueError:
            metaint = -1
        if not 0 <= metaint <= MAX_METAINT:
            raise StreamError("bad_header", f"bad icy-metaint header ({safe_text(raw, 40)!r})")
        return metaint

    def _session(self) -> bool:
        """One connection: returns True when a finite stream was read to its end."""
        self._phase = self.state = "connecting"
        self._deadline = time.monotonic() + self.connect_timeout
        self._format = None  # a new connection starts a new decoder, resampler and block
        self._fill = 0
        self._session_bytes = self.bytes_in
        sock, resp = self._connect()
        container = None
        try:
            metaint = self._check_response(resp)
            self._finite = resp.length is not None
            content_type = (resp.getheader("Content-Type") or "").split(";")[0].strip().lower()
            self._phase = "probing"
            self._deadline = time.monotonic() + self.stall_seconds
            sock.settimeout(self.stall_seconds + self.connect_timeout)  # the watchdog acts first
            tags = OggTagSniffer(self._on_ogg_title)  # Ogg mounts carry titles in the stream itself
            reader = IcyReader(self._counted(resp.read1), metaint, self._on_metadata, self._check,
                               on_audio=tags.feed)
            container = self._open_container(reader, content_type)
            reader.stop_recording()
            self._decode(container)
            self._check()
            return resp.length == 0 and not resp.chunked  # a Content-Length stream read to its end
        finally:
            if container is not None:
                container.close()
            resp.close()
            sock.close()

    def _counted(self, read1: Callable[[int], bytes]) -> Callable[[int], bytes]:
        def read(n: int) -> bytes:
            data = read1(n)
            self.bytes_in += len(data)
            return data

        return read

    def _open_container(self, reader: IcyReader, content_type: str) -> Any:
        """Probe the format (FFmpeg's probe beats mislabelled Content-Types); fall back to the hint."""
        hint = _FORMAT_HINTS.get(content_type)
        try:
            container = av.open(reader, mode="r", format=None, buffer_size=8192, options=_PROBE_OPTIONS)
        except av.FFmpegError as exc:
            if hint is None or not reader.rewind():
                raise StreamError(
                    "decode", f"no audio found in the stream ({_one_line(exc)[:120]})"
                ) from None
            try:
                container = av.open(reader, mode="r", format=hint, buffer_size=8192, options=_PROBE_OPTIONS)
            except av.FFmpegError as exc2:
                raise StreamError(
                    "decode", f"no audio found in the stream ({_one_line(exc2)[:120]})"
                ) from None
        if not container.streams.audio:
            container.close()
            raise StreamError("not_audio", f"the stream has no audio track ({container.format.name})")
        return container

    def _decode(self, container: Any) -> None:
        stream = container.streams.audio[0]
        self.codec = stream.codec_context.name
        connected = False
        bad = 0
        demux = container.demux(stream)
        self._bad_logged = 0
        while not self._closed.is_set():
            try:
                packet = next(demux)
            except StopIteration:
                return
            except (av.error.EOFError, av.error.ExitError):
                return  # end of data (a watchdog abort is picked up by the caller)
            except av.FFmpegError as exc:  # the demuxer lost sync: count it and carry on
                bad = self._bad_packet(exc, bad)
                demux = container.demux(stream)
                continue
            try:
                frames = packet.decode()
            except av.error.ExitError:
                return
            except av.FFmpegError as exc:
                bad = self._bad_packet(exc, bad)
                continue
            for frame in frames:
                if frame.samples and not connected:  # the event goes before the first block
                    connected = True
                    self._connected(frame)
                if self._audio(frame):
                    bad = 0

    def _bad_packet(self, exc: BaseException, bad: int) -> int:
        self.decode_errors += 1
        if self._bad_logged < 3:
            self._bad_logged += 1
            log.info("%s: skipped a bad packet (%s)", safe_text(self.name), safe_text(_one_line(exc), 160))
        if bad + 1 >= MAX_BAD_PACKETS:
            raise StreamError("decode", f"{MAX_BAD_PACKETS} undecodable packets in a row")
        return bad + 1

    def _connected(self, frame: Any) -> None:
        self._phase = self.state = "streaming"
        detail = f"{self.codec}, {frame.sample_rate} Hz, {len(frame.layout.channels)} ch"
        self._event("connected", detail)
        if self.connections > 1:
            log.warning("%s: reconnected (%s)", safe_text(self.name), detail)
        else:
            log.info("%s: connected (%s)", safe_text(self.name), detail)
        self.last_error = None

    def _on_ogg_title(self, title: str | None) -> None:
        self._on_metadata({"StreamTitle": title or ""})

    def _on_metadata(self, fields: dict[str, str]) -> None:
        if "StreamTitle" not in fields:
            return
        title = fields["StreamTitle"].strip()[:MAX_TITLE_CHARS] or None
        if title != self.title:
            self.title = title
            self._event("title", title)
            log.info(
                "%s: title %s", safe_text(self.name), "(none)" if title is None else safe_text(title, 300)
            )

    def _audio(self, frame: Any) -> bool:
        """Convert, mix down and resample one decoded frame; True when it held samples."""
        if frame.samples == 0:
            return False
        layout = frame.layout.name
        channels = len(frame.layout.channels)
        key = (int(frame.sample_rate), layout, frame.format.name)
        if key != self._format:
            self._format = key
            self._converter = (
                None
                if frame.format.name == "fltp"
                else av.AudioResampler(format="fltp", layout=frame.layout, rate=frame.sample_rate)
            )
            try:
                self._resampler = Resampler(frame.sample_rate, self.sample_rate, channels=channels)
            except ValueError as exc:
                raise StreamError("decode", f"unsupported audio ({exc})") from None
            self._fill = 0
        planes = [frame] if self._converter is None else self._converter.resample(frame)
        assert self._resampler is not None
        got = False
        for out in planes:
            x = out.to_ndarray()
            x = x[0] if channels == 1 else x.T
            try:
                y = self._resampler.process(np.ascontiguousarray(x, dtype=np.float32))
            except ValueError:  # NaN/Inf from a broken decoder: skip the frame
                self.decode_errors += 1
                continue
            self._append(y)
            got = True
        if got:
            now = time.monotonic()
            self._last_audio = now
            self._deadline = now + self.stall_seconds
        return got

    def _append(self, y: np.ndarray) -> None:
        pos, n = 0, y.shape[0]
        self.samples_out += n
        while pos < n:
            take = min(self.block_samples - self._fill, n - pos)
            self._buf[self._fill : self._fill + take] = y[pos : pos + take]
            self._fill += take
            pos += take
            if self._fill == self.block_samples:
                self._push(AudioBlock(self._buf.copy(), time.monotonic(), time.time()))
                self._fill = 0
