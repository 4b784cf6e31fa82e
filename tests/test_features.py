"""Tests of the mel front end (streamgenre.features) against librosa, real music and bad input."""

from __future__ import annotations

import functools
import json
import warnings

import librosa
import numpy as np
import pytest
import soundfile as sf
import soxr
from conftest import require_shared
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamgenre import _melkernels
from streamgenre.features import MelConfig, StreamingMel, compute_mel, mel_frames_for, warmup

TOL = 1e-4  # absolute, in the log domain

MUSICNN = MelConfig(sample_rate=16000, n_fft=512, hop_length=256, n_mels=96, log="log10p", log_scale=10000.0)
CONFIGS = {
    "musicnn": MUSICNN,
    "db_22k_2048": MelConfig(sample_rate=22050, n_fft=2048, hop_length=512, n_mels=128, log="db"),
    "htk_db": MelConfig(sample_rate=16000, n_fft=1024, hop_length=320, n_mels=64, htk=True, log="db"),
    "norm_none": MelConfig(sample_rate=16000, n_fft=512, hop_length=160, n_mels=40, norm=None, log="log10p"),
    "fmin_fmax": MelConfig(sample_rate=22050, n_fft=1024, hop_length=256, n_mels=80, fmin=60.0, fmax=7600.0, log="db"),
    "power1": MelConfig(sample_rate=16000, n_fft=512, hop_length=256, n_mels=96, power=1.0, log="log10p"),
    "hamming_dft400": MelConfig(sample_rate=16000, n_fft=400, hop_length=160, n_mels=40, window="hamming", log="db"),
    "hop_gt_nfft": MelConfig(sample_rate=16000, n_fft=256, hop_length=400, n_mels=32, log="db", amin=1e-8),
    "power1_5_blackman": MelConfig(
        sample_rate=22050, n_fft=512, hop_length=128, n_mels=48, power=1.5, window="blackman", log="log10p"
    ),
}


# ----------------------------------------------------------------------------- references
def librosa_log_mel(y: np.ndarray, cfg: MelConfig, center: bool = False) -> np.ndarray:
    """librosa.feature.melspectrogram + the configured log, as (frames, n_mels) float64."""
    mel = librosa.feature.melspectrogram(
        y=y,
        sr=cfg.sample_rate,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        window=cfg.window,
        center=center,
        power=cfg.power,
        n_mels=cfg.n_mels,
        fmin=cfg.fmin,
        fmax=cfg.fmax,
        htk=cfg.htk,
        norm=cfg.norm,
    ).T.astype(np.float64)
    if cfg.log == "log10p":
        return np.log10(1.0 + cfg.log_scale * mel)
    if cfg.log == "db":
        return librosa.power_to_db(mel, ref=1.0, amin=cfg.amin, top_db=None)
    return mel


def synthetic(kind: str, sr: int, seconds: float = 1.5) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    rng = np.random.default_rng(7)
    if kind == "sine":
        y = 0.5 * np.sin(2 * np.pi * 440.0 * t)
    elif kind == "low_sine_full_scale":  # loud tone, near-empty high bands: worst case for rounding
        y = 0.999 * np.sin(2 * np.pi * 50.0 * t)
    elif kind == "chirp":
        y = 0.9 * np.sin(2 * np.pi * (50.0 + 0.25 * sr / seconds * t) * t)
    elif kind == "noise_full_scale":
        y = rng.uniform(-1.0, 1.0, t.size)
    elif kind == "quiet_noise":
        y = 1e-4 * rng.standard_normal(t.size)
    elif kind == "silence":
        y = np.zeros(t.size)
    elif kind == "clicks":
        y = np.zeros(t.size)
        y[:: sr // 7] = 1.0
    elif kind == "square":
        y = 0.8 * np.sign(np.sin(2 * np.pi * 220.0 * t))
    else:
        raise ValueError(kind)
    return y.astype(np.float32)


SYNTHETIC = ["sine", "low_sine_full_scale", "chirp", "noise_full_scale", "quiet_noise", "silence", "clicks", "square"]


@functools.cache
def gtzan_clip(genre: str, sr: int, seconds: float = 4.0) -> np.ndarray:
    path = require_shared("gtzan", genre, f"{genre}.00000.flac")
    y, file_sr = sf.read(path, dtype="float32", frames=int(seconds * 22050))
    y = y if file_sr == sr else soxr.resample(y, file_sr, sr)
    return np.ascontiguousarray(y, dtype=np.float32)


@functools.cache
def fixture_clip(name: str, sr: int, seconds: float = 3.0) -> np.ndarray:
    path = require_shared("fixtures", "music", name)
    y, file_sr = sf.read(path, dtype="float32", always_2d=True, frames=int(seconds * sf.info(path).samplerate))
    y = y.mean(axis=1)
    return np.ascontiguousarray(soxr.resample(y, file_sr, sr) if file_sr != sr else y, dtype=np.float32)


def signal(name: str, sr: int) -> np.ndarray:
    if name.startswith("gtzan:"):
        return gtzan_clip(name.split(":", 1)[1], sr)
    if name.startswith("fixture:"):
        return fixture_clip(name.split(":", 1)[1], sr)
    return synthetic(name, sr)


REAL = [
    "gtzan:blues",
    "gtzan:metal",
    "gtzan:classical",
    "fixture:madmom_sample.wav",
    "fixture:Karissa_Hobbs_-_Lets_Go_Fishin.ogg",
]


def assert_log_close(ours: np.ndarray, ref: np.ndarray, cfg: MelConfig) -> None:
    assert ours.dtype == np.float32
    assert ours.shape == ref.shape
    if cfg.log == "none":
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-12 * max(ref.max(), 1.0))
    else:
        err = np.abs(ours.astype(np.float64) - ref).max(initial=0.0)
        assert err <= TOL, f"max abs log-domain error {err:.3g} > {TOL}"


def stream(mel: StreamingMel, y: np.ndarray, sizes: list[int]) -> np.ndarray:
    """Feed ``y`` cut into blocks of the given sizes (cycled) and stack the frames."""
    out, pos, i = [], 0, 0
    while pos < y.size:
        n = sizes[i % len(sizes)]
        out.append(mel.process(y[pos : pos + n]))
        pos += n
        i += 1
    return np.concatenate(out) if out else np.zeros((0, mel.config.n_mels), np.float32)


@pytest.fixture(scope="module", autouse=True)
def _compiled():
    warmup()


# ----------------------------------------------------------------------------- parity with librosa
@pytest.mark.parametrize("center", [False, True])
@pytest.mark.parametrize("cfg_name", sorted(CONFIGS))
@pytest.mark.parametrize("sig", REAL[:2] + SYNTHETIC)
def test_compute_mel_matches_librosa(cfg_name: str, sig: str, center: bool) -> None:
    cfg = CONFIGS[cfg_name]
    y = signal(sig, cfg.sample_rate)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # librosa: empty mel filters for some configs
        ref = librosa_log_mel(y, cfg, center)
        ours = compute_mel(y, cfg, center=center)
    assert ours.shape == (mel_frames_for(y.size, cfg, center), cfg.n_mels)
    assert_log_close(ours, ref, cfg)


@pytest.mark.parametrize("n_fft", [2, 4, 8, 16, 32, 64, 128, 31, 100, 4096])
@pytest.mark.parametrize("log", ["log10p", "db"])
def test_fft_sizes(n_fft: int, log: str) -> None:
    """Every radix-2²/radix-2 pass combination of the FFT, the DFT path (odd, even) and tiny sizes."""
    cfg = MelConfig(
        sample_rate=16000, n_fft=n_fft, hop_length=max(1, n_fft // 3), n_mels=max(1, min(40, n_fft // 4)), log=log
    )
    y = synthetic("chirp", 16000, seconds=0.5) + 0.05 * synthetic("noise_full_scale", 16000, seconds=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # librosa: empty mel filters
        ref = librosa_log_mel(y, cfg)
    assert_log_close(compute_mel(y, cfg), ref, cfg)
    np.testing.assert_array_equal(stream(StreamingMel(cfg), y, [333, 1, 4000]), compute_mel(y, cfg))


@pytest.mark.parametrize("sig", REAL)
def test_musicnn_front_end_on_real_music(sig: str) -> None:
    y = signal(sig, 16000)
    assert_log_close(compute_mel(y, MUSICNN), librosa_log_mel(y, MUSICNN), MUSICNN)
    assert_log_close(compute_mel(y, MUSICNN, center=True), librosa_log_mel(y, MUSICNN, True), MUSICNN)


def test_musicnn_reference_npz() -> None:
    ref = np.load(require_shared("musicnn_ref", "blues.00000.npz"))
    audio = ref["audio16k"]
    ours = compute_mel(audio, MUSICNN, center=True)
    assert ours.shape == ref["logmel"].shape == ref["mel_power"].shape
    # The reference's own mel power, compressed in float64: our front end agrees to 1e-4.
    expected = np.log10(1.0 + MUSICNN.log_scale * ref["mel_power"].astype(np.float64))
    assert np.abs(ours - expected).max() <= TOL
    # `logmel` (and `patches`) were computed from mel power rounded to float16 first (musicnn's
    # astype(float16)), so they sit up to half a float16 step (2.2e-4 in the log domain) from
    # the exact values. The same rounding of our mel power reproduces them, except for rare
    # values next to a rounding boundary that land one float16 step (<= 4.3e-4) away.
    power = compute_mel(audio, MelConfig.from_dict({**MUSICNN.to_dict(), "log": "none"}), center=True)
    rounded = np.log10(np.float32(MUSICNN.log_scale) * power.astype(np.float16).astype(np.float32) + np.float32(1))
    diff = np.abs(rounded - ref["logmel"])
    assert (diff <= 1e-6).mean() >= 0.999
    assert diff.max() <= 4.3e-4
    patches = ref["patches"]
    assert np.abs(ours[: patches.shape[0] * 187].reshape(patches.shape) - patches).max() <= 2.2e-4


@pytest.mark.parametrize("sig", ["gtzan:blues", "chirp", "noise_full_scale"])
@pytest.mark.parametrize("size", [1, 2, 255, 256, 257, 511, 512, 513, 1000, 1600, 4097, 48000])
def test_fixed_block_sizes_equal_whole_signal(size: int, sig: str) -> None:
    y = signal(sig, 16000)[:40000]
    whole = compute_mel(y, MUSICNN)
    streamed = stream(StreamingMel(MUSICNN), y, [size])
    np.testing.assert_array_equal(streamed, whole)  # one kernel: bit-identical frames
    assert_log_close(streamed, librosa_log_mel(y, MUSICNN), MUSICNN)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cfg_name=st.sampled_from(["musicnn", "db_22k_2048", "hamming_dft400", "hop_gt_nfft"]),
    sizes=st.lists(st.integers(min_value=1, max_value=20000), min_size=1, max_size=12),
)
def test_random_partitions_equal_whole_signal(cfg_name: str, sizes: list[int]) -> None:
    cfg = CONFIGS[cfg_name]
    y = synthetic("chirp", cfg.sample_rate, seconds=1.2) + 0.1 * synthetic("noise_full_scale", cfg.sample_rate, 1.2)
    mel = StreamingMel(cfg)
    streamed = stream(mel, y, sizes)
    np.testing.assert_array_equal(streamed, compute_mel(y, cfg))
    assert mel.frames_emitted == streamed.shape[0] == mel_frames_for(y.size, cfg)
    mel.reset()  # and again after reset(), now cut differently
    np.testing.assert_array_equal(stream(mel, y, sizes[::-1]), streamed)


def test_real_music_random_blocks_match_librosa() -> None:
    y = signal("gtzan:jazz", 16000)
    rng = np.random.default_rng(3)
    sizes = [int(s) for s in rng.integers(1, 6000, size=50)]
    assert_log_close(stream(StreamingMel(MUSICNN), y, sizes), librosa_log_mel(y, MUSICNN), MUSICNN)


def test_reset_and_properties() -> None:
    y = synthetic("noise_full_scale", 16000)
    mel = StreamingMel(MUSICNN)
    assert mel.config is MUSICNN
    assert (mel.frames_emitted, mel.pending_samples) == (0, 0)
    first = mel.process(y[:1000])
    assert first.shape == (2, 96)  # frames at 0 and 256 end before sample 1000
    assert (mel.frames_emitted, mel.pending_samples) == (2, 1000 - 512)
    assert mel.process(y[1000:1010]).shape == (0, 96)
    assert mel.pending_samples == 498
    mel.reset()
    assert (mel.frames_emitted, mel.pending_samples) == (0, 0)
    np.testing.assert_array_equal(mel.process(y[:1000]), first)


def test_independent_streams_do_not_share_state() -> None:
    a, b = StreamingMel(MUSICNN), StreamingMel(MUSICNN)
    y = synthetic("chirp", 16000)
    z = synthetic("square", 16000)
    out_a = np.concatenate([a.process(y[:3000]), a.process(y[3000:])])
    b.process(z[:5000])
    np.testing.assert_array_equal(out_a, compute_mel(y, MUSICNN))


# ----------------------------------------------------------------------------- input handling
def test_empty_input() -> None:
    mel = StreamingMel(MUSICNN)
    mel.process(np.ones(300, np.float32))
    for empty in (np.zeros(0, np.float32), np.zeros(0, np.float64), np.zeros(0, np.int16), []):
        out = mel.process(empty)
        assert out.shape == (0, 96) and out.dtype == np.float32
    assert mel.pending_samples == 300
    for center in (False, True):
        assert compute_mel(np.zeros(0, np.float32), MUSICNN, center=center).shape == (0, 96)
        assert mel_frames_for(0, MUSICNN, center) == 0


def test_short_signals() -> None:
    y = synthetic("sine", 16000)[:300]
    assert compute_mel(y, MUSICNN).shape == (0, 96)  # librosa center=False raises; we return 0 frames
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # librosa: n_fft too large for the input
        ref = librosa_log_mel(y, MUSICNN, True)
    assert_log_close(compute_mel(y, MUSICNN, center=True), ref, MUSICNN)


def test_nan_and_inf_rejected_without_touching_state() -> None:
    y = synthetic("chirp", 16000)
    mel = StreamingMel(MUSICNN)
    first = mel.process(y[:5000])
    for bad_value in (np.nan, np.inf, -np.inf):
        for size in (100, 20000):  # fits the buffer / needs several chunks
            bad = np.zeros(size, np.float32)
            bad[size // 2] = bad_value
            with pytest.raises(ValueError, match="NaN or Inf"):
                mel.process(bad)
    rest = mel.process(y[5000:])
    np.testing.assert_array_equal(np.concatenate([first, rest]), compute_mel(y, MUSICNN))
    with pytest.raises(ValueError, match="NaN or Inf"):
        compute_mel(np.array([0.0, np.nan] * 600), MUSICNN)


def test_int16_is_scaled_by_1_over_32768() -> None:
    pcm = (synthetic("chirp", 16000) * 32767).astype(np.int16)
    ours = compute_mel(pcm, MUSICNN)
    np.testing.assert_array_equal(ours, compute_mel(pcm.astype(np.float32) / 32768, MUSICNN))
    np.testing.assert_array_equal(stream(StreamingMel(MUSICNN), pcm, [777]), ours)


def test_float64_and_other_float_layouts_are_converted() -> None:
    y = synthetic("chirp", 16000)
    want = compute_mel(y, MUSICNN)
    y64 = y.astype(np.float64)
    np.testing.assert_array_equal(compute_mel(y64, MUSICNN), want)
    np.testing.assert_array_equal(stream(StreamingMel(MUSICNN), y64, [1600]), want)
    np.testing.assert_array_equal(compute_mel(y.astype(">f4"), MUSICNN), want)  # big-endian
    np.testing.assert_array_equal(compute_mel(list(y), MUSICNN), want)  # a Python list
    strided = np.repeat(y, 2)[::2]
    assert not strided.flags.c_contiguous
    np.testing.assert_array_equal(stream(StreamingMel(MUSICNN), strided, [1600]), want)
    frozen = y.copy()
    frozen.flags.writeable = False
    np.testing.assert_array_equal(stream(StreamingMel(MUSICNN), frozen, [1600]), want)
    assert_log_close(
        compute_mel(y.astype(np.float16), MUSICNN),
        librosa_log_mel(y.astype(np.float16).astype(np.float32), MUSICNN),
        MUSICNN,
    )


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros(100, np.complex64),
        np.array(["a", "b"]),
        np.array([object(), object()], dtype=object),
        np.zeros(100, np.int32),
        np.zeros(100, np.uint8),
        np.zeros(100, bool),
        "not audio",
        None,
    ],
    ids=["complex", "str", "object", "int32", "uint8", "bool", "string", "none"],
)
def test_wrong_dtypes_raise_type_error(bad) -> None:
    mel = StreamingMel(MUSICNN)
    with pytest.raises(TypeError) as info:
        mel.process(bad)
    assert "numba" not in str(info.value).lower() and "matching definition" not in str(info.value)
    with pytest.raises(TypeError):
        compute_mel(bad, MUSICNN)
    assert (mel.frames_emitted, mel.pending_samples) == (0, 0)


@pytest.mark.parametrize("shape", [(1600, 2), (2, 1600), (1,) * 0, (10, 10, 10)])
def test_non_1d_input_raises_value_error(shape) -> None:
    x = np.zeros(shape, np.float32)
    with pytest.raises(ValueError, match="1-D mono") as info:
        StreamingMel(MUSICNN).process(x)
    if len(shape) == 2:
        assert "mix down" in str(info.value)
    with pytest.raises(ValueError, match="1-D mono"):
        compute_mel(x, MUSICNN)


def test_bad_cfg_arguments() -> None:
    with pytest.raises(TypeError, match="MelConfig"):
        StreamingMel({"sample_rate": 16000})
    with pytest.raises(TypeError, match="MelConfig"):
        compute_mel(np.zeros(1000, np.float32), MUSICNN.to_dict())


# ----------------------------------------------------------------------------- MelConfig
def test_config_round_trip_through_json() -> None:
    for cfg in CONFIGS.values():
        d = json.loads(json.dumps(cfg.to_dict()))
        back = MelConfig.from_dict(d)
        assert back == cfg and hash(back) == hash(cfg)
        assert back.to_dict() == cfg.to_dict()
    assert MUSICNN.to_dict() == {
        "sample_rate": 16000, "n_fft": 512, "hop_length": 256, "n_mels": 96, "fmin": 0.0, "fmax": None,
        "window": "hann", "power": 2.0, "htk": False, "norm": "slaney", "log": "log10p",
        "log_scale": 10000.0, "amin": 1e-10, "top_db": None,
    }  # fmt: skip


def test_config_normalises_numeric_types() -> None:
    cfg = MelConfig(sample_rate=np.int64(16000), n_fft=512, hop_length=256, n_mels=96, fmin=0, power=np.float32(2))
    assert type(cfg.sample_rate) is int and type(cfg.fmin) is float and type(cfg.power) is float
    assert cfg == MUSICNN and json.dumps(cfg.to_dict())


def test_from_dict_rejects_unknown_and_missing_keys() -> None:
    with pytest.raises(ValueError, match=r"unknown keys.*'hop'"):
        MelConfig.from_dict({**MUSICNN.to_dict(), "hop": 256})
    d = MUSICNN.to_dict()
    del d["n_mels"]
    with pytest.raises(ValueError, match=r"missing required keys.*n_mels"):
        MelConfig.from_dict(d)
    with pytest.raises(ValueError, match="mapping"):
        MelConfig.from_dict([("n_fft", 512)])
    minimal = MelConfig.from_dict({"sample_rate": 16000, "n_fft": 512, "hop_length": 256, "n_mels": 96})
    assert minimal == MUSICNN


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sample_rate": 0}, "sample_rate"),
        ({"sample_rate": 16000.5}, "sample_rate must be an integer"),
        ({"n_fft": 1}, "n_fft"),
        ({"n_fft": True}, "n_fft must be an integer"),
        ({"hop_length": 0}, "hop_length"),
        ({"n_mels": -3}, "n_mels"),
        ({"fmin": -1.0}, "fmin"),
        ({"fmax": 9000.0}, "exceeds sample_rate / 2"),
        ({"fmin": 5000.0, "fmax": 4000.0}, "fmin"),
        ({"fmax": float("nan")}, "fmax"),
        ({"window": "no-such-window"}, "window"),
        ({"window": "kaiser"}, "window"),
        ({"window": 3}, "window"),
        ({"power": 0.0}, "power"),
        ({"htk": "yes"}, "htk"),
        ({"norm": "l2"}, "norm"),
        ({"log": "ln"}, "log must be one of"),
        ({"log_scale": 0.0}, "log_scale"),
        ({"amin": 0.0}, "amin"),
        ({"amin": 1e-320}, "amin"),
        ({"top_db": 80.0}, "top_db must be None"),
        ({"n_mels": "96"}, "n_mels must be an integer"),
    ],
)
def test_config_validation(kwargs: dict, match: str) -> None:
    base = MUSICNN.to_dict()
    base.update(kwargs)
    with pytest.raises(ValueError, match=match):
        MelConfig(**base)


def test_config_is_frozen() -> None:
    with pytest.raises(AttributeError):
        MUSICNN.n_fft = 1024  # type: ignore[misc]


@pytest.mark.parametrize("n", [0, 1, 255, 256, 511, 512, 513, 767, 768, 10000])
@pytest.mark.parametrize("center", [False, True])
def test_mel_frames_for_matches_librosa(n: int, center: bool) -> None:
    if n == 0:
        assert mel_frames_for(n, MUSICNN, center) == 0
        return
    if not center and n < MUSICNN.n_fft:
        assert mel_frames_for(n, MUSICNN, center) == 0  # librosa raises instead
        return
    y = np.zeros(n, np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        frames = librosa.stft(y, n_fft=512, hop_length=256, center=center).shape[1]
    assert mel_frames_for(n, MUSICNN, center) == frames
    assert compute_mel(y, MUSICNN, center=center).shape[0] == frames


def test_mel_frames_for_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="num_samples"):
        mel_frames_for(-1, MUSICNN)
    with pytest.raises(TypeError, match="num_samples"):
        mel_frames_for(1.5, MUSICNN)
    with pytest.raises(TypeError, match="MelConfig"):
        mel_frames_for(1000, MUSICNN.to_dict())


# ----------------------------------------------------------------------------- kernels
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_vector_log10_accuracy(dtype) -> None:
    info = np.finfo(dtype)
    x = np.concatenate(
        [
            np.geomspace(float(info.tiny), float(info.max) / 4, 4000),
            np.linspace(0.5, 2.0, 4000),
            1.0 + np.arange(1, 800) * info.eps,
            [1.0, 10.0, np.sqrt(0.5), np.sqrt(2.0), info.tiny, info.max, np.inf, np.nan],
        ]
    ).astype(dtype)
    x = np.concatenate([x, np.ones(-x.size % 8, dtype)])
    out = np.empty_like(x)
    _melkernels.log10_vectors(x, out)
    want = np.log10(x.astype(np.float64))
    finite = np.isfinite(x)
    tol = 2e-11 if dtype == np.float64 else 4e-7
    err = np.abs(out[finite] - want[finite])
    assert (err <= tol * np.maximum(1.0, np.abs(want[finite]))).all(), err.max()
    assert np.isposinf(out[x == np.inf]).all() and np.isnan(out[np.isnan(x)]).all()


def test_precision_choice() -> None:
    """musicnn's front end takes the float32 transform; dB and magnitude configs keep float64."""
    from streamgenre.features import _plan_for

    assert _plan_for(MUSICNN).float32
    for name in ("db_22k_2048", "htk_db", "power1", "hamming_dft400", "norm_none"):
        assert not _plan_for(CONFIGS[name]).float32, name


def test_warmup_is_idempotent() -> None:
    warmup()
    StreamingMel.warmup()
    assert StreamingMel(MUSICNN).process(np.zeros(512, np.float32)).shape == (1, 96)


@pytest.mark.parametrize(("sr", "n_fft", "n_mels", "fmin", "fmax", "htk", "norm"), [
    (16000, 512, 96, 0.0, None, False, "slaney"), (22050, 2048, 128, 0.0, None, False, "slaney"),
    (44100, 1024, 40, 50.0, 8000.0, True, None), (8000, 256, 32, 20.0, None, True, "slaney"),
    (16000, 400, 80, 0.0, 7600.0, False, None),
])
def test_mel_basis_is_librosas_without_importing_it(sr, n_fft, n_mels, fmin, fmax, htk, norm):
    from streamgenre.features import mel_basis

    cfg = MelConfig(sample_rate=sr, n_fft=n_fft, hop_length=128, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk,
                    norm=norm)
    expected = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk, norm=norm)
    np.testing.assert_array_equal(mel_basis(cfg), expected)
