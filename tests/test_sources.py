"""Tests for file decoding and the file source."""

from __future__ import annotations

import logging
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
import soxr

from streamgenre.errors import AudioDecodeError, StreamgenreError
from streamgenre.sources import FileSource, decode_file

SR = 16000
MP3 = "TRWJAZW128F42760DD_test.mp3"  # stereo 22050 Hz
MP3_MONO = "joram-moments_of_clarity-08-solipsism-59-88.mp3"  # mono 16000 Hz
OGG = "sorohanro_-_solo-trumpet-06.ogg"
STEREO_WAV = "madmom_stereo_sample.wav"


@pytest.fixture(scope="module")
def flac_path(gtzan_dir) -> Path:
    return gtzan_dir / "rock" / "rock.00000.flac"


def _blocks(path: Path, rate: int = SR, block_seconds: float = 0.1) -> list[np.ndarray]:
    with FileSource(path, rate, block_seconds=block_seconds) as src:
        return list(src)


def _assert_one_line(exc: pytest.ExceptionInfo, path: Path) -> None:
    message = str(exc.value)
    assert "\n" not in message
    assert path.name in message
    assert isinstance(exc.value, StreamgenreError)


@pytest.mark.parametrize("name", [MP3, MP3_MONO, OGG, STEREO_WAV, "madmom_sample.wav"])
def test_decode_real_fixtures(music_fixtures, name):
    path = music_fixtures / name
    x = decode_file(path, SR)
    info = sf.info(str(path))
    assert x.dtype == np.float32 and x.ndim == 1
    assert abs(x.shape[0] / SR - info.duration) < 0.3  # mp3 headers only estimate the duration
    assert np.all(np.isfinite(x))
    assert 1e-3 < np.sqrt(np.mean(x**2)) and np.max(np.abs(x)) < 2


@pytest.mark.parametrize("name", [MP3, MP3_MONO, OGG, STEREO_WAV])
def test_filesource_equals_decode_file(music_fixtures, name):
    path = music_fixtures / name
    whole = decode_file(path, SR)
    blocks = _blocks(path, block_seconds=0.1)
    assert all(b.shape == (1600,) and b.dtype == np.float32 for b in blocks[:-1])
    assert 0 < blocks[-1].shape[0] <= 1600
    np.testing.assert_array_equal(np.concatenate(blocks), whole)


def test_filesource_equals_decode_file_flac(flac_path):
    whole = decode_file(flac_path, SR)
    blocks = _blocks(flac_path, block_seconds=0.0625)  # 1000 samples
    assert {b.shape[0] for b in blocks[:-1]} == {1000}
    np.testing.assert_array_equal(np.concatenate(blocks), whole)


def test_flac_decode_matches_oneshot_resample(flac_path):
    raw, rate = sf.read(str(flac_path), dtype="float32")
    assert rate == 22050
    x = decode_file(flac_path, SR)
    np.testing.assert_allclose(x, soxr.resample(raw, rate, SR, "HQ"), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(decode_file(flac_path, rate), raw)  # same rate: samples unchanged


def test_stereo_is_mean_of_channels(music_fixtures):
    raw, rate = sf.read(str(music_fixtures / STEREO_WAV), dtype="float32")
    x = decode_file(music_fixtures / STEREO_WAV, SR)
    np.testing.assert_allclose(
        x, soxr.resample(raw.mean(axis=1, dtype=np.float32), rate, SR), rtol=0, atol=1e-6
    )


def test_au_file(tmp_path, flac_path):
    raw, rate = sf.read(str(flac_path), dtype="float32", frames=2 * 22050)
    path = tmp_path / "clip.au"
    sf.write(str(path), raw, rate, format="AU", subtype="PCM_16")
    np.testing.assert_allclose(decode_file(path, rate), raw, rtol=0, atol=1 / 32768)


def test_m4a_through_ffmpeg(tmp_path, flac_path):
    raw, rate = sf.read(str(flac_path), dtype="float32", frames=3 * 22050)
    path = tmp_path / "clip.m4a"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=rate, layout="mono")
        frame_size = 1024
        for start in range(0, raw.shape[0], frame_size):
            frame = av.AudioFrame.from_ndarray(raw[None, start : start + frame_size].copy(), "fltp", "mono")
            frame.sample_rate = rate
            frame.pts = start  # with timestamps the muxer records the encoder delay, which decoding skips
            frame.time_base = Fraction(1, rate)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    x = decode_file(path, rate)
    assert abs(x.shape[0] - raw.shape[0]) < 1024  # AAC pads the last frame
    n = min(x.shape[0], raw.shape[0])
    assert np.corrcoef(x[:n], raw[:n])[0, 1] > 0.9  # lossy but clearly the same music
    np.testing.assert_array_equal(np.concatenate(_blocks(path, rate)), x)


def test_mp3_with_wrong_extension(tmp_path, music_fixtures):
    path = tmp_path / "song.bin"
    path.write_bytes((music_fixtures / MP3).read_bytes())
    np.testing.assert_array_equal(decode_file(path, SR), decode_file(music_fixtures / MP3, SR))


def test_truncated_flac_gives_prefix_and_warning(tmp_path, flac_path, caplog):
    data = flac_path.read_bytes()
    path = tmp_path / "cut.flac"
    path.write_bytes(data[: len(data) // 2])
    raw, rate = sf.read(str(flac_path), dtype="float32")
    with caplog.at_level(logging.WARNING, logger="streamgenre.sources"):
        x = decode_file(path, rate)
    assert "cut.flac" in caplog.text
    assert 0.25 * raw.shape[0] < x.shape[0] < raw.shape[0]
    np.testing.assert_array_equal(x, raw[: x.shape[0]])


def test_truncated_wav_gives_prefix_and_warning(tmp_path, music_fixtures, caplog):
    data = (music_fixtures / "madmom_sample.wav").read_bytes()
    path = tmp_path / "cut.wav"
    path.write_bytes(data[: len(data) // 3])
    raw, rate = sf.read(str(music_fixtures / "madmom_sample.wav"), dtype="float32")
    with caplog.at_level(logging.WARNING, logger="streamgenre.sources"):
        x = decode_file(path, rate)
    assert "truncated" in caplog.text
    assert 0.25 * raw.shape[0] < x.shape[0] < 0.4 * raw.shape[0]
    np.testing.assert_array_equal(x, raw[: x.shape[0]])


def test_truncated_mp3_gives_prefix_and_warning(tmp_path, music_fixtures, caplog):
    data = (music_fixtures / MP3).read_bytes()
    path = tmp_path / "cut.mp3"
    path.write_bytes(data[: len(data) // 2])
    full = decode_file(music_fixtures / MP3, SR)
    with caplog.at_level(logging.WARNING, logger="streamgenre.sources"):
        x = decode_file(path, SR)
    assert "truncated" in caplog.text
    assert 0.4 * full.shape[0] < x.shape[0] < 0.6 * full.shape[0]
    # Same decoder, same resampler: identical up to the resampler's tail at the cut.
    np.testing.assert_allclose(x[: x.shape[0] - 200], full[: x.shape[0] - 200], rtol=0, atol=1e-6)


@pytest.mark.parametrize("name, keep", [("head.flac", 200), ("head.mp3", 50), ("head.ogg", 300)])
def test_file_cut_before_any_audio_is_an_error(tmp_path, music_fixtures, flac_path, name, keep):
    source = {"head.flac": flac_path, "head.mp3": music_fixtures / MP3, "head.ogg": music_fixtures / OGG}[
        name
    ]
    path = tmp_path / name
    path.write_bytes(source.read_bytes()[:keep])
    with pytest.raises(AudioDecodeError) as exc:
        decode_file(path, SR)
    _assert_one_line(exc, path)


def _bad_file(tmp_path: Path, kind: str) -> Path:
    if kind == "missing":
        return tmp_path / "nope.wav"
    if kind == "directory":
        path = tmp_path / "folder.flac"
        path.mkdir()
        return path
    if kind == "empty":
        path = tmp_path / "empty.wav"
        path.write_bytes(b"")
        return path
    if kind == "random":
        path = tmp_path / "noise.mp3"
        path.write_bytes(np.random.default_rng(0).bytes(50_000))
        return path
    if kind == "text":
        path = tmp_path / "readme.txt"
        path.write_text("This is not audio.\n" * 200)
        return path
    if kind == "zero_frames":
        path = tmp_path / "silence.wav"
        sf.write(str(path), np.zeros(0, np.float32), 22050)
        return path
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind, reason",
    [
        ("missing", "no such file"),
        ("directory", "directory"),
        ("empty", "empty"),
        ("random", "not a recognised audio format"),
        ("text", "not a recognised audio format|no audio stream"),
        ("zero_frames", "no audio samples"),
    ],
)
def test_bad_inputs_raise_audio_decode_error(tmp_path, kind, reason):
    path = _bad_file(tmp_path, kind)
    with pytest.raises(AudioDecodeError, match=reason) as exc:
        decode_file(path, SR)
    _assert_one_line(exc, path)
    with pytest.raises(AudioDecodeError, match=reason):
        list(FileSource(path, SR))


def test_non_finite_samples_are_an_error(tmp_path):
    path = tmp_path / "nan.wav"
    x = np.zeros(4000, np.float32)
    x[100] = np.nan
    sf.write(str(path), x, 16000, subtype="FLOAT")
    with pytest.raises(AudioDecodeError, match="NaN") as exc:
        decode_file(path, SR)
    _assert_one_line(exc, path)


def test_unsupported_file_rate_is_an_error(tmp_path):
    path = tmp_path / "slow.wav"
    sf.write(str(path), np.zeros(1000, np.float32), 500)
    with pytest.raises(AudioDecodeError, match="sample rate") as exc:
        decode_file(path, SR)
    _assert_one_line(exc, path)


def test_filesource_properties_and_close(music_fixtures):
    path = music_fixtures / OGG
    src = FileSource(str(path), 22050, block_seconds=0.05)
    assert src.path == path
    assert src.sample_rate == 22050
    assert src.block_size == round(22050 * 0.05)
    assert src.duration == pytest.approx(sf.info(str(path)).duration)
    first = next(src)
    assert first.shape == (src.block_size,)
    src.close()
    src.close()  # idempotent
    with pytest.raises(StopIteration):
        next(src)


def test_filesource_realtime_pacing(tmp_path):
    path = tmp_path / "half_second.wav"
    t = np.arange(8000) / 16000
    sf.write(str(path), (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000)
    start = time.monotonic()
    with FileSource(path, SR, block_seconds=0.1, realtime=True) as src:
        blocks = list(src)
    elapsed = time.monotonic() - start
    assert sum(b.shape[0] for b in blocks) == 8000
    assert elapsed >= 0.4  # lower bound only: paced at wall-clock speed


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sample_rate": 0},
        {"sample_rate": -16000},
        {"sample_rate": 16000.5},
        {"sample_rate": SR, "block_seconds": 0},
        {"sample_rate": SR, "block_seconds": -0.1},
        {"sample_rate": SR, "block_seconds": float("nan")},
        {"sample_rate": SR, "block_seconds": 1e-6},
    ],
)
def test_filesource_rejects_bad_settings(music_fixtures, kwargs):
    with pytest.raises(ValueError):
        FileSource(music_fixtures / OGG, **kwargs)


def test_decode_file_rejects_bad_rate_and_path_type(music_fixtures):
    with pytest.raises(ValueError, match="sample_rate"):
        decode_file(music_fixtures / OGG, 0)
    with pytest.raises(TypeError):
        decode_file(12345, SR)  # type: ignore[arg-type]
