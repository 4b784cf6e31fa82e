"""Lock-free single-producer/single-consumer float32 ring buffer for the capture path.

The producer is the audio driver's callback thread (sounddevice), which must never block, allocate
arrays or log; the consumer is the analysis worker, which reads exact-size blocks.
"""

from __future__ import annotations

import math
import time

import numpy as np

__all__ = ["RingBuffer"]


class RingBuffer:
    """Preallocated SPSC ring of float32 audio frames.

    Parameters
    ----------
    capacity : int
        Size of the ring in frames (one frame = one sample per channel).
    channels : int, optional
        Number of channels per frame (default 1).
    poll_interval : float, optional
        Sleep step in seconds used by :meth:`wait_available` (default 2 ms).

    Notes
    -----
    **Thread safety.** Exactly one producer thread calls :meth:`write` and exactly one consumer
    thread calls :meth:`read`, :meth:`read_into`, :meth:`wait_available` and :meth:`reset`.
    The two sides share two monotonically increasing frame counters: ``_w`` (frames ever written) is
    only stored by the producer and ``_r`` (frames ever read) only by the consumer. Each side copies
    the audio first and publishes its counter afterwards with a single attribute store, which is atomic
    under the GIL. So the consumer never reads frames the producer has not finished copying (it only
    looks below ``_w``) and the producer never overwrites frames the consumer has not finished copying
    out (it only writes at most ``capacity - (_w - _r)`` frames). Python ints never overflow, so the
    counters are used directly; positions in storage are the counters modulo ``capacity``.

    **Overflow policy.** When the ring is full, :meth:`write` keeps the oldest data and DROPS the newest
    frames that do not fit (counted in :attr:`overflowed`); the producer never waits for the consumer.

    **Waiting.** The ring itself has no signal: :meth:`wait_available` polls with short sleeps (at most
    ``poll_interval`` each, bounded by the timeout), for consumers whose producer cannot tell them that data
    came. A producer that can should wake its consumer itself, as :class:`~streamgenre.capture.Capture`'s
    callback does by releasing a plain lock (which neither blocks nor allocates, unlike setting a
    ``threading.Event``): on this VM every poll's sleep costs tens of microseconds of CPU.
    """

    def __init__(self, capacity: int, channels: int = 1, poll_interval: float = 0.002) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)) or capacity < 1:
            raise ValueError(f"RingBuffer capacity must be a positive int (frames), got {capacity!r}")
        if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) or channels < 1:
            raise ValueError(f"RingBuffer channels must be a positive int, got {channels!r}")
        if not (isinstance(poll_interval, (int, float)) and 0 < poll_interval <= 1):
            raise ValueError(f"RingBuffer poll_interval must be in (0, 1] seconds, got {poll_interval!r}")
        self._capacity = int(capacity)
        self._channels = int(channels)
        self._poll = float(poll_interval)
        self._buf = np.zeros((self._capacity, self._channels), dtype=np.float32)
        self._buf1 = self._buf[:, 0]  # 1-D view used for mono (n,) blocks
        self._w = 0  # frames ever written (producer-owned)
        self._r = 0  # frames ever read (consumer-owned)
        self._overflowed = 0  # frames dropped because the ring was full (producer-owned)

    # ------------------------------------------------------------------ properties
    @property
    def capacity(self) -> int:
        """Ring size in frames."""
        return self._capacity

    @property
    def channels(self) -> int:
        """Channels per frame."""
        return self._channels

    @property
    def available(self) -> int:
        """Frames ready to be read."""
        return self._w - self._r

    @property
    def free(self) -> int:
        """Frames that can be written without dropping."""
        return self._capacity - (self._w - self._r)

    @property
    def overflowed(self) -> int:
        """Total frames dropped by :meth:`write` because the ring was full."""
        return self._overflowed

    @property
    def written_total(self) -> int:
        """Total frames stored by :meth:`write` (dropped frames excluded)."""
        return self._w

    @property
    def read_total(self) -> int:
        """Total frames consumed by :meth:`read` / :meth:`read_into`."""
        return self._r

    # ------------------------------------------------------------------ producer
    def write(self, x: np.ndarray) -> int:
        """Copy as many frames of ``x`` as fit; drop the rest. Producer side, real-time safe.

        Never blocks, never allocates an array (at most two slice copies into the preallocated
        storage), never logs.

        Parameters
        ----------
        x : numpy.ndarray
            float32 block shaped ``(n, channels)``, or ``(n,)`` when ``channels == 1``.

        Returns
        -------
        int
            Frames written; ``n - written`` frames were dropped and added to :attr:`overflowed`.

        Raises
        ------
        TypeError
            If ``x`` is not a float32 ndarray (the callback must never convert).
        ValueError
            If ``x`` has the wrong number of dimensions or channels.
        """
        if type(x) is not np.ndarray or x.dtype != np.float32:
            raise TypeError(
                f"RingBuffer.write needs a float32 numpy array, got {getattr(x, 'dtype', type(x).__name__)}"
            )
        if x.ndim == 2:
            if x.shape[1] != self._channels:
                raise ValueError(
                    f"RingBuffer.write: block has {x.shape[1]} channels, the ring has {self._channels}"
                )
            dst = self._buf
        elif x.ndim == 1 and self._channels == 1:
            dst = self._buf1
        else:
            raise ValueError(
                f"RingBuffer.write: block shape {x.shape} is not (n, {self._channels})"
                + (" or (n,)" if self._channels == 1 else "")
            )
        n = x.shape[0]
        cap = self._capacity
        w = self._w
        k = cap - (w - self._r)  # free frames
        if n < k:
            k = n
        if k < n:
            self._overflowed += n - k
        if k == 0:
            return 0
        start = w % cap
        first = cap - start
        if k <= first:
            dst[start : start + k] = x[:k]
        else:
            dst[start:] = x[:first]
            dst[: k - first] = x[first:k]
        self._w = w + k  # publish after the copy
        return k

    # ------------------------------------------------------------------ consumer
    def _check_n(self, n: int) -> int:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise ValueError(f"RingBuffer: frame count must be an int, got {n!r}")
        if not 0 < n <= self._capacity:
            raise ValueError(f"RingBuffer: frame count must be in [1, {self._capacity}], got {n}")
        return int(n)

    def read_into(self, out: np.ndarray) -> bool:
        """Fill ``out`` with the next ``len(out)`` frames, without allocating. Consumer side.

        Parameters
        ----------
        out : numpy.ndarray
            Writable float32 array shaped ``(n, channels)``, or ``(n,)`` when ``channels == 1``,
            with ``1 <= n <= capacity``.

        Returns
        -------
        bool
            True if ``out`` was filled; False (``out`` untouched, nothing consumed) when fewer than
            ``n`` frames are available.
        """
        if type(out) is not np.ndarray or out.dtype != np.float32:
            raise TypeError(
                "RingBuffer.read_into needs a float32 numpy array, "
                f"got {getattr(out, 'dtype', type(out).__name__)}"
            )
        if out.ndim == 2 and out.shape[1] == self._channels:
            src = self._buf
        elif out.ndim == 1 and self._channels == 1:
            src = self._buf1
        else:
            raise ValueError(
                f"RingBuffer.read_into: out shape {out.shape} is not (n, {self._channels})"
                + (" or (n,)" if self._channels == 1 else "")
            )
        n = self._check_n(out.shape[0])
        r = self._r
        if self._w - r < n:
            return False
        cap = self._capacity
        start = r % cap
        first = cap - start
        if n <= first:
            out[:] = src[start : start + n]
        else:
            out[:first] = src[start:]
            out[first:] = src[: n - first]
        self._r = r + n  # publish after the copy: the producer may now reuse these frames
        return True

    def read(self, n: int) -> np.ndarray | None:
        """Return exactly ``n`` frames, or None when fewer than ``n`` are available. Consumer side.

        Parameters
        ----------
        n : int
            Frames to read, ``1 <= n <= capacity``.

        Returns
        -------
        numpy.ndarray or None
            New float32 array shaped ``(n,)`` when ``channels == 1`` else ``(n, channels)``.
        """
        n = self._check_n(n)
        if self._w - self._r < n:
            return None
        out = np.empty((n,) if self._channels == 1 else (n, self._channels), dtype=np.float32)
        self.read_into(out)
        return out

    def wait_available(self, n: int, timeout: float) -> bool:
        """Wait until at least ``n`` frames are available or ``timeout`` seconds pass. Consumer side.

        Polls with sleeps of at most ``poll_interval`` (see the class notes for why no Event).

        Parameters
        ----------
        n : int
            Frames needed, ``1 <= n <= capacity``.
        timeout : float
            Maximum wait in seconds (finite, >= 0).

        Returns
        -------
        bool
            True when ``n`` frames are available, False on timeout.
        """
        n = self._check_n(n)
        if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout >= 0):
            raise ValueError(
                f"RingBuffer.wait_available: timeout must be a finite number >= 0, got {timeout!r}"
            )
        if self._w - self._r >= n:
            return True
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return self._w - self._r >= n
            time.sleep(min(self._poll, remaining))
            if self._w - self._r >= n:
                return True

    def reset(self) -> None:
        """Empty the ring and zero all counters. Consumer side.

        Not thread-safe against a running producer: call it only while the producer is stopped
        (e.g. before starting or after stopping the audio stream).
        """
        self._w = 0
        self._r = 0
        self._overflowed = 0

    def __repr__(self) -> str:
        return (
            f"RingBuffer(capacity={self._capacity}, channels={self._channels}, "
            f"available={self.available}, overflowed={self._overflowed})"
        )
