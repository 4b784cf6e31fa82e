"""Capture stage: an audio input device -> the ring buffer, plus device discovery.

The PortAudio callback (:meth:`Capture.callback`) runs on the audio driver's real-time thread. It
only copies the block into the preallocated :class:`~streamgenre.ringbuffer.RingBuffer`, counts
status flags in plain int attributes, stores the block's arrival time in a preallocated array and,
when the worker waits for audio, releases the one lock it waits on (a plain lock: releasing it
neither blocks nor allocates): no array allocation, no waiting, no logging, no jitted code.
Mixdown and resampling happen in the engine's worker thread. ``sounddevice`` is imported lazily,
so the offline commands work on machines without the PortAudio library.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamgenre.errors import DeviceError
from streamgenre.resample import validate_rate
from streamgenre.ringbuffer import RingBuffer
from streamgenre.state import SourceInfo

__all__ = ["Capture", "DeviceInfo", "list_devices", "resolve_device"]

MAX_CHANNELS = 2
"""Channels captured at most (virtual devices such as ALSA ``default`` report 32 inputs)."""
TIME_SLOTS = 4096
"""Callbacks whose arrival times are kept (~7 min at 100 ms blocks)."""
STALL_TIMEOUT_S = 5.0
"""A running device that delivers nothing for this long is treated as lost."""

NO_INPUT_HINT = (
    "connect a microphone or line-in and pick it with --device (see `streamgenre devices`), "
    "listen to a radio stream with `streamgenre live --url URL`, "
    "or run the live pipeline over a file with `streamgenre file PATH`"
)


def import_sounddevice() -> Any:
    """Import ``sounddevice``, turning a missing PortAudio library into a one-line DeviceError."""
    try:
        import sounddevice
    except OSError as exc:  # raised by sounddevice itself: "PortAudio library not found"
        raise DeviceError(
            f"live audio needs the PortAudio library ({exc}); install it with "
            "`apt-get install libportaudio2` (Debian/Ubuntu), `dnf install portaudio` (Fedora) "
            "or `brew install portaudio` (macOS)"
        ) from None
    except ImportError:
        raise DeviceError("live audio needs the sounddevice package: pip install sounddevice") from None
    return sounddevice


@dataclass(frozen=True)
class DeviceInfo:
    """An input device as PortAudio describes it."""

    index: int
    name: str
    hostapi: str
    max_input_channels: int
    default_samplerate: float
    is_default: bool

    @property
    def channels(self) -> int:
        """Channels this program captures (``min(max_input_channels, MAX_CHANNELS)``)."""
        return min(self.max_input_channels, MAX_CHANNELS)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "index": self.index,
            "name": self.name,
            "hostapi": self.hostapi,
            "max_input_channels": self.max_input_channels,
            "default_samplerate": self.default_samplerate,
            "default": self.is_default,
        }


def _query(sd: Any) -> tuple[list[dict[str, Any]], list[str], int]:
    try:
        devices = [dict(d) for d in sd.query_devices()]
        hostapis = [h["name"] for h in sd.query_hostapis()]
        default = sd.default.device[0]
    except sd.PortAudioError as exc:
        raise DeviceError(f"cannot list audio devices: {exc}") from None
    default = int(default) if default is not None and int(default) >= 0 else -1
    return devices, hostapis, default


def _info(d: dict[str, Any], hostapis: list[str], default: int) -> DeviceInfo:
    api = d.get("hostapi", -1)
    return DeviceInfo(
        int(d["index"]),
        str(d["name"]),
        hostapis[api] if 0 <= api < len(hostapis) else "?",
        int(d["max_input_channels"]),
        float(d["default_samplerate"]),
        int(d["index"]) == default,
    )


def list_devices() -> list[DeviceInfo]:
    """All input devices (devices with at least one input channel), in PortAudio order.

    Raises
    ------
    DeviceError
        PortAudio is missing or cannot enumerate devices.
    """
    devices, hostapis, default = _query(import_sounddevice())
    return [_info(d, hostapis, default) for d in devices if d["max_input_channels"] > 0]


def resolve_device(spec: str | int | None) -> DeviceInfo:
    """Find an input device by index, by name substring, or ``None``/``"default"`` for the default.

    A name matches case-insensitively as a substring; an exact name wins over substrings.

    Raises
    ------
    DeviceError
        No input devices at all, no match, an ambiguous name, or an index that is not an input.
    """
    devices, hostapis, default = _query(import_sounddevice())
    inputs = [_info(d, hostapis, default) for d in devices if d["max_input_channels"] > 0]
    if not inputs:
        raise DeviceError(f"no audio input device found; {NO_INPUT_HINT}")
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "default"):
        for info in inputs:
            if info.is_default:
                return info
        raise DeviceError(f"there is no default audio input device; {NO_INPUT_HINT}")
    if isinstance(spec, bool):
        raise DeviceError(f"--device must be an index or a name, got {spec!r}")
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        index = int(spec)
        for info in inputs:
            if info.index == index:
                return info
        if 0 <= index < len(devices):
            raise DeviceError(
                f"device {index} ({devices[index]['name']}) has no input channels; see `streamgenre devices`"
            )
        raise DeviceError(f"no audio device with index {index}; see `streamgenre devices`")
    if not isinstance(spec, str) or not spec.strip():
        raise DeviceError(f"--device must be an index or a name, got {spec!r}")
    needle = spec.strip().lower()
    exact = [info for info in inputs if info.name.lower() == needle]
    if len(exact) == 1:
        return exact[0]
    matches = exact or [info for info in inputs if needle in info.name.lower()]
    if not matches:
        raise DeviceError(f"no input device matches {spec!r}; see `streamgenre devices`")
    if len(matches) > 1:
        names = ", ".join(f"{m.index}: {m.name}" for m in matches[:6])
        raise DeviceError(f"--device {spec!r} matches several inputs ({names}); use the index or a longer name")
    return matches[0]


class Capture:
    """An input stream whose callback fills a ring buffer at the device's native rate and channels.

    Parameters
    ----------
    device
        Index, name substring, or ``None``/``"default"`` (see :func:`resolve_device`).
    block_seconds
        Callback block length (default 100 ms of the device rate) and the block the engine reads.
    ring_seconds
        Ring buffer capacity in seconds (how far the worker may fall behind before frames drop).
    latency
        PortAudio latency setting (``"high"``, ``"low"`` or seconds).
    samplerate
        Override the device's default sample rate.

    Attributes
    ----------
    info : DeviceInfo
    sample_rate, channels, blocksize : int
    ring : RingBuffer
    callbacks, input_overflows, status_flags : int
        Callbacks run, callbacks flagged with an input overflow, callbacks with any status flag.
    """

    def __init__(
        self,
        device: str | int | None = None,
        block_seconds: float = 0.1,
        ring_seconds: float = 4.0,
        latency: str | float = "high",
        samplerate: float | None = None,
    ) -> None:
        if not (
            isinstance(block_seconds, (int, float)) and math.isfinite(block_seconds) and 0.005 <= block_seconds <= 1.0
        ):
            raise ValueError(f"block_seconds must be in [0.005, 1] s, got {block_seconds!r}")
        if not (
            isinstance(ring_seconds, (int, float)) and math.isfinite(ring_seconds) and ring_seconds >= 4 * block_seconds
        ):
            raise ValueError(f"ring_seconds must hold at least 4 blocks, got {ring_seconds!r}")
        self._sd = import_sounddevice()
        self.info = resolve_device(device)
        try:
            self.sample_rate = validate_rate(
                samplerate if samplerate is not None else self.info.default_samplerate, "device sample rate"
            )
        except ValueError as exc:
            raise DeviceError(f"input device {self.info.name!r}: {exc}") from None
        self.channels = self.info.channels
        self.latency = latency
        self._init_buffers(block_seconds, ring_seconds)

    def _init_buffers(self, block_seconds: float, ring_seconds: float) -> None:
        """The ring, the arrival stamps and the counters, for ``sample_rate`` and ``channels`` as set;
        everything the callback and :meth:`read_block` use besides PortAudio (replays reuse it)."""
        self.blocksize = max(1, round(self.sample_rate * block_seconds))
        self.ring = RingBuffer(max(4 * self.blocksize, round(self.sample_rate * ring_seconds)), self.channels)
        # Held while no audio has come since the worker last looked: the callback releases it, the worker
        # waits on it. Only the callback releases it and only the worker takes it.
        self._arrived = threading.Lock()
        self._arrived.acquire()
        self._times = np.zeros(TIME_SLOTS, np.float64)  # arrival time of callback k at k % TIME_SLOTS
        self._ends = np.zeros(TIME_SLOTS, np.int64)  # ring.written_total after callback k
        self.callbacks = 0
        self.input_overflows = 0
        self.status_flags = 0
        self.finished = False  # PortAudio ended the stream (device lost, error)
        self._stream: Any = None
        self._cursor = 0  # consumer-side: first callback whose block may still be unread
        self._block = np.empty((self.blocksize, self.channels), np.float32)  # reused by read_block
        self._last_data = time.monotonic()
        self.exhausted = False  # a device never runs out (engine source protocol)

    # ------------------------------------------------------------------ real-time side
    def callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        """PortAudio callback: copy ``indata`` into the ring, count flags, stamp the arrival time.

        Allocates no arrays (only transient views and floats) and never blocks or logs.
        """
        if status:
            self.status_flags += 1
            if status.input_overflow:
                self.input_overflows += 1
        self.ring.write(indata)
        k = self.callbacks % TIME_SLOTS
        self._ends[k] = self.ring.written_total
        self._times[k] = time.monotonic()
        self.callbacks += 1  # publish after the slot is filled
        self._wake()

    def _wake(self) -> None:
        """Wake the worker if it waits for audio (or let it find the news when it next looks)."""
        if self._arrived.locked():  # (nothing else releases it: never a release of an unlocked lock)
            self._arrived.release()

    def _finished_callback(self) -> None:
        self.finished = True
        self._wake()  # the worker learns at once that no more audio will come

    # ------------------------------------------------------------------ consumer side
    def capture_time(self, frame_end: int) -> float:
        """Arrival time (``time.monotonic()``) of the callback that delivered ring frame ``frame_end - 1``.

        Consumer side; call with non-decreasing ``frame_end`` (the ring's read position after a read).
        """
        done = self.callbacks
        c = max(self._cursor, done - TIME_SLOTS + 1)
        while c < done and self._ends[c % TIME_SLOTS] < frame_end:
            c += 1
        self._cursor = c
        if c >= done:  # not yet stamped (cannot happen for frames already in the ring): now
            return time.monotonic()
        return float(self._times[c % TIME_SLOTS])

    def read_block(self, timeout: float) -> tuple[np.ndarray, float] | None:
        """Next ``(blocksize, channels)`` block and its capture time, or None after ``timeout`` seconds.

        Consumer side (the engine's worker). The returned array is reused by the next call. The
        worker sleeps until the callback says audio has come: one wake-up per callback, no polling.

        Raises
        ------
        DeviceError
            The stream was ended by PortAudio (device unplugged, server gone) or delivered nothing
            for :data:`STALL_TIMEOUT_S` seconds.
        """
        ring, frames = self.ring, self.blocksize
        deadline = time.monotonic() + timeout
        while ring.available < frames:
            if self.finished:
                self._check_alive()
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._arrived.acquire(timeout=remaining):
                if ring.available >= frames:
                    break
                self._check_alive()
                return None
        ring.read_into(self._block)
        self._last_data = time.monotonic()
        return self._block, self.capture_time(ring.read_total)

    def _check_alive(self) -> None:
        name = self.info.name
        if self._stream is None:
            raise DeviceError(f"input device {name!r}: the stream is not running")
        try:
            active = bool(self._stream.active)
        except self._sd.PortAudioError:
            active = False
        if self.finished or not active:
            raise DeviceError(f"input device {name!r} stopped delivering audio (unplugged or disconnected?)")
        if time.monotonic() - self._last_data > STALL_TIMEOUT_S:
            raise DeviceError(
                f"input device {name!r} delivered no audio for {STALL_TIMEOUT_S:.0f} s (unplugged or disconnected?)"
            )

    @property
    def overflows(self) -> int:
        """Frames dropped because the ring was full."""
        return self.ring.overflowed

    @property
    def active(self) -> bool:
        """The stream is open and PortAudio has not ended it."""
        return self._stream is not None and not self.finished and bool(self._stream.active)

    def source_info(self) -> SourceInfo:
        """What the engine reports as its source."""
        return SourceInfo("device", self.info.name, self.sample_rate, self.channels)

    def start(self) -> None:
        """Open and start the input stream.

        Raises
        ------
        DeviceError
            The device refuses the settings or cannot be opened.
        """
        sd = self._sd
        try:
            self._stream = sd.InputStream(
                device=self.info.index,
                samplerate=self.sample_rate,
                channels=self.channels,
                dtype="float32",
                blocksize=self.blocksize,
                latency=self.latency,
                callback=self.callback,
                finished_callback=self._finished_callback,
            )
            self._last_data = time.monotonic()
            self._stream.start()
        except (sd.PortAudioError, ValueError) as exc:
            self.close()
            raise DeviceError(
                f"cannot open input device {self.info.name!r} at {self.sample_rate} Hz, "
                f"{self.channels} ch: {' '.join(str(exc).split())}"
            ) from None

    def close(self) -> None:
        """Stop and close the stream (idempotent; errors of a lost device are ignored)."""
        stream, self._stream = self._stream, None
        if stream is None:
            return
        try:
            stream.abort(ignore_errors=True)
            stream.close(ignore_errors=True)
        except self._sd.PortAudioError:
            pass

    def __repr__(self) -> str:
        return (
            f"Capture(device={self.info.index}:{self.info.name!r}, rate={self.sample_rate}, "
            f"channels={self.channels}, blocksize={self.blocksize})"
        )
