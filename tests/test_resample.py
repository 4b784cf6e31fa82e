"""Tests for the streaming resampler stage."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import soxr
from hypothesis import given, settings
from hypothesis import strategies as st

from streamgenre.resample import Resampler, validate_rate

OUT_RATE = 16000
TOL = 1e-6  # measured: block-by-block and one-shot soxr agree exactly (max |diff| == 0)


def _stream(resampler: Resampler, x: np.ndarray, sizes: list[int]) -> np.ndarray:
    parts, pos, i = [], 0, 0
    while pos < x.shape[0]:
        n = sizes[i % len(sizes)]
        parts.append(resampler.process(x[pos : pos + n]))
        pos += n
        i += 1
    parts.append(resampler.flush())
    for p in parts:
        assert p.dtype == np.float32 and p.ndim == 1
    return np.concatenate(parts)


def _random_sizes(rng: np.random.Generator, count: int) -> list[int]:
    """Block sizes that include 1, tiny primes, odd sizes and large blocks."""
    sizes = [1] * 50 + [2, 3, 7, 13, 101, 997, 1009, 4099, 17_011]
    sizes += rng.integers(1, 6000, count).tolist()
    rng.shuffle(sizes)
    return sizes


@pytest.fixture(scope="module")
def music_22k(gtzan_dir) -> np.ndarray:
    x, sr = sf.read(gtzan_dir / "jazz" / "jazz.00000.flac", dtype="float32")
    assert sr == 22050 and x.ndim == 1
    return x


def _chirp(rate: int, seconds: float) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    f0, f1 = 50.0, 0.45 * rate
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds))
    return (0.5 * np.sin(phase)).astype(np.float32)


@pytest.mark.parametrize("in_rate", [8000, 22050, 44100, 48000])
def test_blockwise_equals_oneshot_on_music(music_22k, in_rate):
    # Real music at 22050 Hz, and the same music resampled to the other input rates.
    x = music_22k if in_rate == 22050 else soxr.resample(music_22k, 22050, in_rate, "VHQ")
    rng = np.random.default_rng(in_rate)
    got = _stream(Resampler(in_rate, OUT_RATE), x, _random_sizes(rng, 300))
    want = soxr.resample(x, in_rate, OUT_RATE, "HQ")
    assert got.shape == want.shape
    assert abs(got.shape[0] - x.shape[0] * OUT_RATE / in_rate) <= 0.5
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL)


@pytest.mark.parametrize("in_rate", [8000, 22050, 44100, 48000])
def test_blockwise_equals_oneshot_on_chirp(in_rate):
    x = _chirp(in_rate, 3.0)
    got = _stream(Resampler(in_rate, OUT_RATE), x, _random_sizes(np.random.default_rng(7), 100))
    want = soxr.resample(x, in_rate, OUT_RATE, "HQ")
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL)


@settings(max_examples=40, deadline=None)
@given(
    in_rate=st.sampled_from([8000, 11025, 22050, 44100, 48000, 96000]),
    length=st.integers(min_value=0, max_value=20_000),
    sizes=st.lists(st.integers(min_value=1, max_value=5000), min_size=1, max_size=20),
    quality=st.sampled_from(["LQ", "HQ", "vhq"]),
)
def test_blockwise_equals_oneshot_property(in_rate, length, sizes, quality):
    x = np.random.default_rng(length).uniform(-1, 1, length).astype(np.float32)
    got = _stream(Resampler(in_rate, OUT_RATE, quality=quality), x, sizes)
    want = soxr.resample(x, in_rate, OUT_RATE, quality.upper())
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL)


def test_stereo_is_mixed_down_before_resampling(music_fixtures):
    x, sr = sf.read(music_fixtures / "madmom_stereo_sample.wav", dtype="float32")
    assert x.shape[1] == 2
    got = _stream(Resampler(sr, OUT_RATE, channels=2), x, [1000, 333, 1])
    want = soxr.resample(x.mean(axis=1, dtype=np.float32), sr, OUT_RATE)
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL)


def test_int16_and_float64_conversion():
    rng = np.random.default_rng(3)
    pcm = rng.integers(-32768, 32768, 5000).astype(np.int16)
    as_float = pcm.astype(np.float32) / 32768
    a = _stream(Resampler(44100, OUT_RATE), pcm, [512])
    b = _stream(Resampler(44100, OUT_RATE), as_float, [512])
    c = _stream(Resampler(44100, OUT_RATE), as_float.astype(np.float64), [512])
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(b, c)
    assert Resampler(16000, 16000).process(np.array([-32768, 16384], np.int16)).tolist() == [-1.0, 0.5]


def test_passthrough_is_copy_free():
    r = Resampler(16000, 16000)
    x = np.linspace(-1, 1, 100, dtype=np.float32)
    y = r.process(x)
    assert y is x
    col = np.ascontiguousarray(x[:, None])
    assert np.shares_memory(r.process(col), col)
    assert r.flush().shape == (0,)
    stereo = np.stack([x, -x], axis=1)
    np.testing.assert_array_equal(Resampler(16000, 16000, channels=2).process(stereo), np.zeros(100))


def test_flush_and_reset_start_a_new_stream():
    x = _chirp(44100, 0.5)
    fresh = _stream(Resampler(44100, OUT_RATE), x, [700])
    r = Resampler(44100, OUT_RATE)
    _stream(r, x[:5000], [700])  # ends with flush()
    np.testing.assert_array_equal(_stream(r, x, [700]), fresh)
    r.process(x[:3000])
    r.reset()
    np.testing.assert_array_equal(_stream(r, x, [700]), fresh)


def test_empty_block():
    r = Resampler(48000, OUT_RATE)
    assert r.process(np.zeros(0, np.float32)).shape == (0,)
    assert r.process(np.zeros((0, 1), np.float32)).shape == (0,)


@pytest.mark.parametrize("rate", [0, -16000, 10**9, 44100.5, True, "44100", None, float("nan")])
def test_rejects_bad_rates(rate):
    with pytest.raises(ValueError, match="sample rate"):
        Resampler(rate, OUT_RATE)
    with pytest.raises(ValueError, match="sample rate"):
        Resampler(44100, rate)


def test_accepts_integral_float_rates():
    assert validate_rate(44100.0) == 44100
    assert validate_rate(np.int64(48000)) == 48000
    assert Resampler(44100.0, 16000).in_rate == 44100


@pytest.mark.parametrize("kwargs", [{"channels": 0}, {"channels": 2.0}, {"quality": "best"}, {"quality": 3}])
def test_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError):
        Resampler(44100, OUT_RATE, **kwargs)


@pytest.mark.parametrize(
    "block",
    [np.zeros(10, np.int32), np.zeros(10, np.complex64), np.zeros(10, np.uint8), [0.0, 0.1]],
)
def test_rejects_bad_dtypes(block):
    with pytest.raises(TypeError, match="Resampler"):
        Resampler(44100, OUT_RATE).process(block)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_rejects_non_finite(bad):
    x = np.zeros((64, 2), np.float32)
    x[17, 1] = bad
    with pytest.raises(ValueError, match="NaN or Inf"):
        Resampler(44100, OUT_RATE, channels=2).process(x)
    with pytest.raises(ValueError, match="NaN or Inf"):
        Resampler(16000, OUT_RATE).process(x[:, 1].astype(np.float64))


@pytest.mark.parametrize(
    "channels, shape",
    [(2, (64,)), (2, (64, 1)), (1, (64, 2)), (2, (64, 2, 1)), (1, ())],
)
def test_rejects_wrong_channel_count(channels, shape):
    with pytest.raises(ValueError, match="Resampler expects"):
        Resampler(44100, OUT_RATE, channels=channels).process(np.zeros(shape, np.float32))
