"""Tests for the SPSC capture ring buffer."""

from __future__ import annotations

import collections
import sys
import threading
import time
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamgenre.ringbuffer import RingBuffer


class ReferenceRing:
    """Plain-Python model: a bounded FIFO that drops the newest frames that do not fit."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.frames: collections.deque[tuple[float, ...]] = collections.deque()
        self.overflowed = 0
        self.written = 0
        self.read = 0

    def write(self, frames: list[tuple[float, ...]]) -> int:
        k = min(len(frames), self.capacity - len(self.frames))
        self.frames.extend(frames[:k])
        self.overflowed += len(frames) - k
        self.written += k
        return k

    def take(self, n: int) -> list[tuple[float, ...]] | None:
        if len(self.frames) < n:
            return None
        self.read += n
        return [self.frames.popleft() for _ in range(n)]


ops_strategy = st.lists(
    st.tuples(st.sampled_from(["write", "read", "read_into"]), st.integers(min_value=0, max_value=1000)),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(
    capacity=st.integers(min_value=1, max_value=40),
    channels=st.integers(min_value=1, max_value=3),
    flat_mono=st.booleans(),
    ops=ops_strategy,
)
def test_matches_reference_model(capacity, channels, flat_mono, ops):
    ring = RingBuffer(capacity, channels)
    ref = ReferenceRing(capacity)
    counter = 0
    for kind, size in ops:
        if kind == "write":
            n = size % (2 * capacity + 2)  # includes 0 and sizes beyond the capacity (overflow)
            values = np.arange(counter, counter + n * channels, dtype=np.float32).reshape(n, channels)
            counter += n * channels
            block = values[:, 0].copy() if (channels == 1 and flat_mono) else values
            got = ring.write(block)
            want = ref.write([tuple(row) for row in values.tolist()])
            assert got == want
        else:
            n = 1 + size % capacity
            expected = ref.take(n)
            if kind == "read":
                out = ring.read(n)
                if expected is None:
                    assert out is None
                else:
                    assert out.dtype == np.float32
                    assert out.shape == ((n,) if channels == 1 else (n, channels))
                    np.testing.assert_array_equal(out.reshape(n, channels), np.array(expected, np.float32))
            else:
                shape = (n,) if (channels == 1 and flat_mono) else (n, channels)
                out = np.full(shape, -1.0, dtype=np.float32)
                ok = ring.read_into(out)
                assert ok == (expected is not None)
                if expected is None:
                    assert np.all(out == -1.0)  # untouched
                else:
                    np.testing.assert_array_equal(out.reshape(n, channels), np.array(expected, np.float32))
        assert ring.available == len(ref.frames)
        assert ring.free == capacity - len(ref.frames)
        assert ring.overflowed == ref.overflowed
        assert ring.written_total == ref.written
        assert ring.read_total == ref.read


def test_wraparound_and_overflow_by_hand():
    ring = RingBuffer(5)
    assert ring.write(np.array([1, 2, 3], np.float32)) == 3
    np.testing.assert_array_equal(ring.read(2), [1, 2])
    # 1 frame in the ring, 4 free: 4..7 fit (wrapping past the end), 8 and 9 are dropped
    assert ring.write(np.array([4, 5, 6, 7, 8, 9], np.float32)) == 4
    assert ring.overflowed == 2
    np.testing.assert_array_equal(ring.read(5), [3, 4, 5, 6, 7])
    assert ring.read(1) is None
    assert ring.available == 0
    assert ring.free == 5


def test_two_threads_ramp_minus_drops():
    capacity, block = 2048, 256
    total = 200_000  # float32 represents these integers exactly
    ramp = np.arange(total, dtype=np.float32)
    ring = RingBuffer(capacity)
    kept: list[np.ndarray] = []  # what the producer managed to write, in order
    primed = threading.Event()
    producer_done = threading.Event()
    errors: list[BaseException] = []

    def producer() -> None:
        try:
            rng = np.random.default_rng(1)
            pos = 0
            deadline = time.monotonic() + 20
            while pos < total and time.monotonic() < deadline:
                n = int(rng.integers(1, 700))
                chunk = ramp[pos : pos + n]
                k = ring.write(chunk)
                kept.append(chunk[:k])
                pos += chunk.shape[0]
                if pos >= 2 * capacity:
                    primed.set()  # the consumer has read nothing yet: frames were surely dropped
                if rng.random() < 0.05:
                    time.sleep(0.0005)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            primed.set()
            producer_done.set()

    out: list[np.ndarray] = []

    def consumer() -> None:
        try:
            primed.wait(10)
            buf = np.empty(block, dtype=np.float32)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if ring.wait_available(block, timeout=0.05):
                    assert ring.read_into(buf)
                    out.append(buf.copy())
                elif producer_done.is_set() and ring.available < block:
                    break
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # force frequent thread switches to shake out races
    try:
        threads = [threading.Thread(target=producer), threading.Thread(target=consumer)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not any(t.is_alive() for t in threads), "producer/consumer did not finish in time"
    finally:
        sys.setswitchinterval(old_interval)
    assert not errors, errors

    expected = np.concatenate(kept)
    got = np.concatenate(out)
    dropped = total - expected.shape[0]
    assert ring.overflowed == dropped > 0
    assert ring.written_total == expected.shape[0]
    assert 0 <= expected.shape[0] - got.shape[0] < block  # only a partial last block stays unread
    np.testing.assert_array_equal(got, expected[: got.shape[0]])
    assert np.all(np.diff(got) > 0)  # the ramp stays in order across drops


def test_write_does_not_allocate():
    ring = RingBuffer(8192, 2)
    block = np.ones((512, 2), dtype=np.float32)  # 4 KiB: any temporary copy would show
    out = np.empty((1000, 2), dtype=np.float32)
    ring.write(block)
    ring.read_into(out[:512])
    tracemalloc.start()
    try:
        # Sanity check that tracemalloc sees numpy buffers at all.
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        tmp = block * 2.0
        _, peak = tracemalloc.get_traced_memory()
        del tmp
        assert peak - base >= block.nbytes

        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for i in range(3000):  # wraps around many times, and overflows (reads lag behind writes)
            ring.write(block)
            if i % 2 == 0:
                ring.read_into(out)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert ring.overflowed > 0
    assert peak - base < 1024
    assert current - base < 256


def test_reset_and_properties():
    ring = RingBuffer(8, 2)
    assert (ring.capacity, ring.channels, ring.available, ring.free) == (8, 2, 0, 8)
    ring.write(np.ones((10, 2), np.float32))
    assert (ring.available, ring.overflowed, ring.written_total) == (8, 2, 8)
    ring.reset()
    assert (ring.available, ring.free, ring.overflowed, ring.written_total, ring.read_total) == (
        0,
        8,
        0,
        0,
        0,
    )
    assert "RingBuffer(" in repr(ring)


def test_wait_available():
    ring = RingBuffer(16)
    assert ring.wait_available(4, timeout=0.0) is False
    assert ring.wait_available(4, timeout=0.01) is False
    ring.write(np.zeros(4, np.float32))
    assert ring.wait_available(4, timeout=0.0) is True

    timer = threading.Timer(0.02, ring.write, args=(np.zeros(4, np.float32),))
    timer.start()
    try:
        assert ring.wait_available(8, timeout=5.0) is True
    finally:
        timer.cancel()
        timer.join(5)


@pytest.mark.parametrize(
    "block, exc",
    [
        (np.zeros(4, np.float64), TypeError),
        (np.zeros(4, np.int16), TypeError),
        ([0.0, 1.0], TypeError),
        (np.zeros((4, 3), np.float32), ValueError),
        (np.zeros((4, 2, 1), np.float32), ValueError),
        (np.zeros((), np.float32), ValueError),
    ],
)
def test_write_rejects_bad_blocks(block, exc):
    ring = RingBuffer(8, 2)
    with pytest.raises(exc, match="RingBuffer"):
        ring.write(block)
    assert ring.available == 0


def test_write_rejects_1d_for_stereo():
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        RingBuffer(8, 2).write(np.zeros(4, np.float32))


@pytest.mark.parametrize("n", [0, -1, 9, 2.0, True])
def test_read_rejects_bad_sizes(n):
    ring = RingBuffer(8)
    with pytest.raises(ValueError, match="frame count"):
        ring.read(n)
    with pytest.raises(ValueError, match="frame count"):
        ring.wait_available(n, 0.0)


def test_read_into_rejects_bad_arrays():
    ring = RingBuffer(8, 2)
    with pytest.raises(TypeError):
        ring.read_into(np.zeros((2, 2), np.float64))
    with pytest.raises(ValueError):
        ring.read_into(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError):
        ring.read_into(np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="frame count"):
        ring.read_into(np.zeros((9, 2), np.float32))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"capacity": 0},
        {"capacity": -5},
        {"capacity": 4.0},
        {"capacity": 8, "channels": 0},
        {"capacity": 8, "poll_interval": 0},
        {"capacity": 8, "poll_interval": 5},
    ],
)
def test_constructor_validation(kwargs):
    with pytest.raises(ValueError):
        RingBuffer(**kwargs)


@pytest.mark.parametrize("timeout", [-1.0, float("nan"), float("inf"), "1"])
def test_wait_available_rejects_bad_timeout(timeout):
    with pytest.raises(ValueError, match="timeout"):
        RingBuffer(8).wait_available(1, timeout)
