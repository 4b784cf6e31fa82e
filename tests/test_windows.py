"""The window stage: exact windows at the hop, provisional repeat-padded windows, any block cutting."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamgenre.windows import MelWindower


def frames(n: int, n_mels: int = 4) -> np.ndarray:
    return np.arange(n * n_mels, dtype=np.float32).reshape(n, n_mels)


def reference_windows(data: np.ndarray, window: int, hop: int) -> list[tuple[int, np.ndarray]]:
    return [(end, data[end - window:end]) for end in range(window, len(data) + 1, hop)]


@settings(max_examples=60, deadline=None)
@given(window=st.integers(1, 20), hop=st.integers(1, 30), total=st.integers(0, 120),
       cuts=st.lists(st.integers(0, 40), max_size=40))
def test_windows_equal_slicing_for_any_block_cutting(window, hop, total, cuts):
    data = frames(total)
    windower = MelWindower(window, 4, hop)
    got, position = [], 0
    for size in [*cuts, total]:
        batch = windower.process(data[position:position + size])
        position += len(data[position:position + size])
        got.extend(zip(batch.end_frames.tolist(), batch.windows, strict=True))
        assert not batch.provisional.any()
    expected = reference_windows(data, window, hop)
    assert [end for end, _ in got] == [end for end, _ in expected]
    for (_, a), (_, b) in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)


def test_provisional_windows_repeat_the_frames_seen_until_the_window_is_full():
    windower = MelWindower(10, 4, hop_frames=3, first_after_frames=4)
    data = frames(16)
    batch = windower.process(data)
    assert batch.end_frames.tolist() == [4, 7, 10, 13, 16]
    assert batch.provisional.tolist() == [True, True, False, False, False]
    first = batch.windows[0]
    np.testing.assert_array_equal(first, np.concatenate([data[:4], data[:4], data[:2]]))
    np.testing.assert_array_equal(batch.windows[2], data[:10])
    np.testing.assert_array_equal(batch.windows[4], data[6:16])


def test_provisional_cadence_lands_exactly_on_the_full_window():
    windower = MelWindower(10, 4, hop_frames=4, first_after_frames=3)
    batch = windower.process(frames(20))
    assert batch.end_frames.tolist() == [3, 7, 10, 14, 18]
    assert batch.provisional.tolist() == [True, True, False, False, False]


def test_flush_partial_pads_a_short_stream_once():
    windower = MelWindower(10, 4, hop_frames=10)
    assert len(windower.process(frames(6))) == 0
    tail = windower.flush_partial()
    assert len(tail) == 1 and tail.provisional.tolist() == [True] and tail.end_frames.tolist() == [6]
    full = MelWindower(10, 4, hop_frames=10)
    full.process(frames(12))
    assert len(full.flush_partial()) == 0
    assert len(MelWindower(10, 4, 10).flush_partial()) == 0


def test_reset_starts_a_new_stream():
    windower = MelWindower(5, 4, hop_frames=5)
    windower.process(frames(7))
    windower.reset()
    batch = windower.process(frames(5) + 100)
    np.testing.assert_array_equal(batch.windows[0], frames(5) + 100)


@pytest.mark.parametrize("kwargs", [dict(window_frames=0, n_mels=4, hop_frames=1),
                                    dict(window_frames=4, n_mels=4, hop_frames=0),
                                    dict(window_frames=4, n_mels=4, hop_frames=1, first_after_frames=5)])
def test_bad_settings(kwargs):
    with pytest.raises(ValueError):
        MelWindower(**kwargs)


def test_bad_frames_shape():
    with pytest.raises(ValueError, match=r"\(n, 4\)"):
        MelWindower(4, 4, 1).process(np.zeros((3, 5), np.float32))
