"""The shipped ONNX ports of musicnn: parity with the original TensorFlow models, contract, runtime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT, require_shared

from streamgenre.contract import METADATA_KEY, parse_contract
from streamgenre.errors import ConfigError, ModelError
from streamgenre.features import MelConfig
from streamgenre.model import bundled_model_path, load_model

MODELS = {"MSD": REPO_ROOT / "models" / "msd_musicnn.onnx", "MTT": REPO_ROOT / "models" / "mtt_musicnn.onnx"}


@pytest.fixture(scope="module")
def ported() -> dict[str, object]:
    return {prefix: load_model(path, provider="cpu", threads=2) for prefix, path in MODELS.items()}


def reference_files() -> list[Path]:
    return sorted(require_shared("musicnn_ref").glob("*.npz"))


@pytest.mark.parametrize("prefix", ["MSD", "MTT"])
def test_onnx_port_matches_original_tensorflow_on_every_reference_patch(ported, prefix):
    model = ported[prefix]
    files = reference_files()
    assert len(files) == 13
    patches_checked = 0
    for file in files:
        ref = np.load(file)
        out = model.predict(ref["patches"])
        np.testing.assert_allclose(out["tags"], ref[f"{prefix}_taggram"], rtol=0, atol=1e-4, err_msg=file.name)
        for name, ref_name in (("embedding", "penultimate"), ("max_pool", "max_pool"), ("mean_pool", "mean_pool")):
            expected = ref[f"{prefix}_{ref_name}"]
            got = out[name]
            # 1e-3 relative, per patch (L2) and per element against the patch's scale.
            rel = np.linalg.norm(got - expected, axis=1) / np.linalg.norm(expected, axis=1)
            assert rel.max() < 1e-3, (file.name, name, rel.max())
            scale = np.abs(expected).max(axis=1, keepdims=True)
            assert np.all(np.abs(got - expected) <= 1e-3 * scale), (file.name, name)
        patches_checked += len(ref["patches"])
    assert patches_checked == 10 * 10 + 44 + 10 + 9


def test_default_model_is_bundled_and_describes_itself():
    model = load_model(provider="cpu")
    assert model.path == bundled_model_path() and model.path.name == "gtzan_musicnn.onnx"
    assert model.path.is_file()
    assert model.provider == "CPUExecutionProvider"
    assert model.window_frames == 187
    assert model.mel_config == MelConfig(sample_rate=16000, n_fft=512, hop_length=256, n_mels=96,
                                         log="log10p", log_scale=10000.0)
    assert model.labels == ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop",
                            "reggae", "rock")
    assert model.genre_kind == "softmax" and model.streaming is not None
    assert model.contract.tag_output == "tags"  # the backbone's 50 MSD tags come with every estimate
    assert model.describe()["provider"] == "CPUExecutionProvider"
    assert model.contract.provenance["license"].startswith("ISC")
    assert model.contract.metrics["track_accuracy"] >= 0.9  # grouped 2-fold CV on the 100 shared clips


def test_msd_tagger_separates_genres_from_other_tags(ported):
    labels = set(ported["MSD"].labels)
    assert {"rock", "jazz", "metal", "blues", "Hip-Hop", "country", "electronic", "pop"} <= labels
    assert not {"80s", "female vocalists", "happy", "sad"} & labels  # moods/decades are tags


def test_predict_shapes_single_window_and_batches(ported):
    model = ported["MSD"]
    rng = np.random.default_rng(0)
    batch = rng.random((5, 187, 96), dtype=np.float32) * 3
    out = model.predict(batch)
    assert out["tags"].shape == (5, 50) and out["embedding"].shape == (5, 200)
    assert out["max_pool"].shape == (5, 753) and out["mean_pool"].shape == (5, 753)
    one = model.predict(batch[2])
    np.testing.assert_allclose(one["tags"][0], out["tags"][2], atol=1e-6)
    assert model.genre_scores(batch).shape == (5, len(model.labels))
    np.testing.assert_allclose(model.predict(batch.astype(np.float64))["tags"], out["tags"], atol=1e-6)


@pytest.mark.parametrize(("windows", "error"), [
    (np.zeros((1, 100, 96), np.float32), ValueError),
    (np.zeros((1, 187, 128), np.float32), ValueError),
    (np.zeros((0, 187, 96), np.float32), ValueError),
    (np.zeros((1, 187, 96), np.int16), TypeError),
    (np.zeros((2, 2, 187, 96), np.float32), ValueError),
])
def test_predict_rejects_wrong_windows(ported, windows, error):
    with pytest.raises(error):
        ported["MSD"].predict(windows)


def _rewrite_metadata(src: Path, dst: Path, value: str | None) -> Path:
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(src))
    del model.metadata_props[:]
    if value is not None:
        entry = model.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, value
    onnx.save(model, str(dst))
    return dst


def _contract_json() -> dict:
    return json.loads(load_model(MODELS["MSD"], provider="cpu", warmup=False).contract.to_json())


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: None, "no 'streamgenre' metadata"),
    (lambda d: "{not json", "not valid JSON"),
    (lambda d: d | {"format_version": 99}, "format version 99 is not supported (this runtime reads 3) (upgrade"),
    (lambda d: d | {"format_version": 2}, "version 2 is not supported (this runtime reads 3) (re-export it"),
    (lambda d: {k: v for k, v in d.items() if k != "mel_config"}, "lacks 'mel_config'"),
    (lambda d: d | {"mel_config": d["mel_config"] | {"n_fft": -1}}, "mel_config is invalid"),
    (lambda d: d | {"input": d["input"] | {"window_frames": 200}}, "does not match metadata"),
    (lambda d: d | {"input": d["input"] | {"window_frames": 100}}, "invalid channels/before/after"),
    (lambda d: d | {"streaming": d["streaming"] | {"parts": []}}, "lists no feature parts"),
    (lambda d: d | {"streaming": d["streaming"] | {"mid": d["streaming"]["mid"] | {"layers": 5}}},
     "'streaming.mid' is invalid"),
    (lambda d: d | {"streaming": {k: v for k, v in d["streaming"].items() if k != "fresh_input"}},
     "lacks 'fresh_input'"),
    (lambda d: d | {"streaming": d["streaming"] | {"parts": [
        {k: v for k, v in part.items() if k != "partial_window_input"} for part in d["streaming"]["parts"]]}},
     "lacks 'partial_window_input'"),
    (lambda d: d | {"streaming": d["streaming"] | {"parts": [
        part | ({"partial_output": "nope"} if "partial_output" in part else {}) for part in d["streaming"]["parts"]]}},
     "the graph lacks"),
    (lambda d: d | {"genre_labels": ["polka"]}, "genre_labels not among"),
    (lambda d: d | {"outputs": d["outputs"] | {"tags": d["outputs"]["tags"] | {
        "labels": d["outputs"]["tags"]["labels"][:-1]}}}, "has 50 units but metadata describes 49"),
    (lambda d: d | {"outputs": d["outputs"] | {"extra": {"kind": "embedding"}}}, "graph lacks"),
    (lambda d: d | {"outputs": d["outputs"] | {"tags": {"kind": "magic", "labels": ["a"]}}}, "unknown kind"),
])
def test_invalid_metadata_is_refused_with_one_line_naming_the_file(tmp_path, mutate, message):
    document = _contract_json()
    changed = mutate(document)
    value = changed if changed is None or isinstance(changed, str) else json.dumps(changed)
    path = _rewrite_metadata(MODELS["MSD"], tmp_path / "bad.onnx", value)
    with pytest.raises(ModelError) as info:
        load_model(path, provider="cpu")
    text = str(info.value)
    assert message in text and str(path) in text and "\n" not in text


def test_non_onnx_missing_and_directory_are_refused(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a protobuf at all" * 10)
    for path, message in ((junk, "not a loadable ONNX model"), (tmp_path / "nope.onnx", "not found"),
                          (tmp_path, "is a directory")):
        with pytest.raises(ModelError, match=message) as info:
            load_model(path, provider="cpu")
        assert "\n" not in str(info.value)


def test_provider_selection_reports_what_is_really_used(monkeypatch):
    import streamgenre.model as runtime

    monkeypatch.setattr(runtime, "cuda_device_count", lambda: 0)
    model = load_model(provider="auto", warmup=False)
    assert model.provider == "CPUExecutionProvider"  # CUDA listed as available proves nothing
    with pytest.raises(ConfigError, match="no usable CUDA device"):
        load_model(provider="cuda", warmup=False)
    with pytest.raises(ConfigError, match="unknown provider"):
        load_model(provider="tpu", warmup=False)
    with pytest.raises(ConfigError, match="threads"):
        load_model(provider="cpu", threads=0, warmup=False)


def test_shared_session_holds_no_stream_state(ported):
    model = ported["MSD"]
    rng = np.random.default_rng(1)
    a, b = rng.random((2, 187, 96), dtype=np.float32)
    first = model.predict(a)["tags"]
    model.predict(b)
    np.testing.assert_array_equal(model.predict(a)["tags"], first)


def test_contract_round_trips(ported):
    contract = ported["MTT"].contract
    assert parse_contract(contract.to_json()) == contract
    assert "classical" in contract.genre_labels and "piano" not in contract.genre_labels


def test_incremental_stream_inference_equals_full_windows(ported):
    """Computing each stream frame's features once (between windows too) gives the full windows' outputs."""
    from streamgenre.model import StreamCache

    model = ported["MSD"]
    spec = model.streaming
    assert spec is not None and [(p.before, p.after) for p in spec.parts] == [(3, 3), (63, 64), (31, 32), (15, 16)]
    frames = np.load(require_shared("musicnn_ref", "jazz.00000.npz"))["patches"].reshape(-1, 96)
    window = model.window_frames
    cache = StreamCache()
    ends, hops = [], [31, 31, 7, 1, 180, 60, 31, 250]  # 180 and 250 leave gaps: the cache starts again
    end = window
    for hop in [0, *hops]:
        end += hop
        ends.append(end)
    previous = 0
    for i, end in enumerate(ends):
        # between windows, blocks of frames that are not multiples of anything arrive
        for block_end in range(previous + 5, end, 13):
            model.prepare_stream(cache, frames[max(0, block_end - window):block_end], block_end,
                                 end if i % 2 else None)  # knowing the next window's end, or not
        if i % 2 and previous + 5 < end:  # its first frames' features were ready before it ended
            assert cache.left_start == end - window
            if any(0 < end - b <= 16 for b in range(previous + 5, end, 13)):  # ... and its mid end's first frames
                assert cache.mid_start == end - window and cache.mid_known >= 24
                assert cache.partial_end == end and cache.partial_fresh > 1  # ... and its last frames' partials
        win = frames[end - window:end][None]
        streamed = model.predict_stream(win, np.array([end]), [cache], [True])
        full = model.predict(win)
        for name in ("tags", "embedding", "max_pool"):
            np.testing.assert_allclose(streamed[name], full[name], atol=2e-5, rtol=1e-5, err_msg=f"{name} #{i}")
        previous = end
    # a provisional (repeat-padded) window neither uses nor changes the cache
    held = cache.features.copy(), list(cache.valid), cache.left_start
    padded = np.tile(frames[:40], (5, 1))[:window][None]
    alone = model.predict_stream(padded, np.array([40]), [cache], [False])
    np.testing.assert_allclose(alone["tags"], model.predict(padded)["tags"], atol=2e-5)
    assert np.array_equal(cache.features, held[0]) and (cache.valid, cache.left_start) == held[1:]
    # the same stream twice in one call, and several streams in one call
    one = StreamCache()
    seq = np.stack([frames[:window], frames[31:31 + window]])
    both_same = model.predict_stream(seq, np.array([window, window + 31]), [one, one], [True, True])
    np.testing.assert_allclose(both_same["tags"], model.predict(seq)["tags"], atol=2e-5)
    caches = [StreamCache(), StreamCache()]
    wins = np.stack([frames[:window], frames[100:100 + window]])
    both = model.predict_stream(wins, np.array([window, window + 100]), caches, [True, True])
    np.testing.assert_allclose(both["tags"], model.predict(wins)["tags"], atol=2e-5)
    with pytest.raises(ValueError, match="frames must be shaped"):
        model.prepare_stream(cache, frames[:10, :50], 10)
    with pytest.raises(ValueError, match="one end frame"):
        model.predict_stream(wins, np.array([1]), caches, [True, True])
