"""Conversion of the original musicnn checkpoints: our checkpoint reader, PyTorch port and ONNX export."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from conftest import REPO_ROOT, require_shared

from training.tf_checkpoint import CheckpointError, CheckpointReader

torch = pytest.importorskip("torch", reason="conversion needs the train extra (pip install -e '.[train]')")
pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def musicnn_dir():
    from training.import_musicnn import find_musicnn_dir

    try:
        return find_musicnn_dir()
    except SystemExit as exc:
        pytest.skip(str(exc))


def model_variables(path) -> dict[str, list[int]]:
    out = {}
    for line in path.read_text().splitlines():
        name, shape, _dtype = line.split("\t")
        out[name] = [int(d) for d in shape.strip("[]").split(",") if d.strip()]
    return out


@pytest.mark.parametrize("key", ["MSD", "MTT"])
def test_reader_finds_exactly_the_reference_variables(musicnn_dir, key):
    reader = CheckpointReader(f"{musicnn_dir}/{key}_musicnn/")
    expected = model_variables(require_shared("musicnn_ref", f"{key}_musicnn_variables_model_only.txt"))
    from training.import_musicnn import read_weights

    weights = read_weights(musicnn_dir / f"{key}_musicnn")
    assert {name: list(w.shape) for name, w in weights.items()} == expected
    assert sum(w.size for w in weights.values()) == 792_079
    assert len(reader.entries) > len(expected)  # optimizer slots are there but not read


def test_damaged_checkpoint_is_an_error_not_random_weights(musicnn_dir, tmp_path):
    source = musicnn_dir / "MSD_musicnn"
    copy = tmp_path / "ckpt"
    copy.mkdir()
    for name in (".index", ".data-00000-of-00001"):
        shutil.copy(source / name, copy / name)
    data = bytearray((copy / ".data-00000-of-00001").read_bytes())
    reader = CheckpointReader(f"{copy}/")
    entry = reader.entries["conv2d/kernel"]
    data[entry.offset + 100] ^= 0xFF
    (copy / ".data-00000-of-00001").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="CRC mismatch"):
        CheckpointReader(f"{copy}/").read("conv2d/kernel")
    (copy / ".data-00000-of-00001").write_bytes(bytes(data[: entry.offset]))
    with pytest.raises(CheckpointError, match="truncated"):
        CheckpointReader(f"{copy}/").read("conv2d/kernel")


def test_not_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        CheckpointReader(tmp_path / "missing")
    (tmp_path / "x.index").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="bad magic"):
        CheckpointReader(tmp_path / "x")


def test_torch_port_reproduces_intermediate_and_final_layers(musicnn_dir):
    from training.import_musicnn import read_weights
    from training.musicnn_port import Musicnn, load_musicnn_weights

    ref = np.load(require_shared("musicnn_ref", "blues.00000.npz"))
    model = Musicnn().eval()
    load_musicnn_weights(model, read_weights(musicnn_dir / "MSD_musicnn"))
    with torch.no_grad():
        patches = torch.from_numpy(ref["patches"])
        x = model.input_bn(patches.unsqueeze(1))
        timbral = torch.cat([block(x) for block in model.timbral], 1).permute(0, 2, 1).numpy()
        temporal = torch.cat([block(x) for block in model.temporal], 1).permute(0, 2, 1).numpy()
        tags, embedding, max_pool, _ = model(patches)
    np.testing.assert_allclose(timbral, ref["MSD_timbral"], atol=2e-4 * np.abs(ref["MSD_timbral"]).max())
    np.testing.assert_allclose(temporal, ref["MSD_temporal"], atol=2e-4 * np.abs(ref["MSD_temporal"]).max())
    np.testing.assert_allclose(tags.numpy(), ref["MSD_taggram"], atol=1e-4)
    penultimate = ref["MSD_penultimate"]
    np.testing.assert_allclose(embedding.numpy(), penultimate, atol=1e-3 * np.abs(penultimate).max())
    np.testing.assert_allclose(max_pool.numpy(), ref["MSD_max_pool"], atol=1e-3 * np.abs(ref["MSD_max_pool"]).max())


def test_import_command_reproduces_the_shipped_models(musicnn_dir, tmp_path):
    from streamgenre.model import load_model
    from training.import_musicnn import main

    reference = require_shared("musicnn_ref")
    assert main(["--musicnn-dir", str(musicnn_dir), "--out", str(tmp_path), "--check", str(reference)]) == 0
    patches = np.load(reference / "rock.00000.npz")["patches"]
    for name in ("msd_musicnn", "mtt_musicnn"):
        fresh = load_model(tmp_path / f"{name}.onnx", provider="cpu")
        shipped = load_model(REPO_ROOT / "models" / f"{name}.onnx", provider="cpu")
        assert fresh.contract == shipped.contract
        np.testing.assert_allclose(fresh.predict(patches)["tags"], shipped.predict(patches)["tags"], atol=1e-6)
        assert fresh.contract.metrics["parity_with_original_tensorflow"]["tags_abs"] < 1e-4


def _musicnn_with_constant_filters(seed: int) -> tuple[torch.nn.Module, list[list[int]]]:
    """A randomly weighted musicnn whose front-end blocks each have some all-zero (constant) filters."""
    from training.musicnn_port import Musicnn

    generator = torch.Generator().manual_seed(seed)
    model = Musicnn().eval()
    constant = []
    with torch.no_grad():
        for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
            if name.endswith(("weight", "bias", "shift")):
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.05)
            elif name.endswith("scale"):  # some negative: the blocks fold the sign into their weights
                tensor.copy_(torch.randn(tensor.shape, generator=generator))
        for block in [*model.timbral, *model.temporal]:
            count = block.conv.out_channels
            rows = torch.randperm(count, generator=generator)[: count * 3 // 4].sort().values
            block.conv.weight[rows] = 0.0
            constant.append(rows.tolist())
    return model, constant


@pytest.mark.parametrize("frames", [187, 40])
def test_pruning_constant_filters_keeps_every_output(frames):
    import copy

    from training.import_musicnn import streaming_spec
    from training.musicnn_port import StreamingMusicnn

    full, constant = _musicnn_with_constant_filters(seed=frames)
    pruned = copy.deepcopy(full)
    kept = pruned.prune_constant_filters()
    blocks = [*full.timbral, *full.temporal]
    assert list(kept.values()) == [b.conv.out_channels - len(rows) for b, rows in zip(blocks, constant, strict=True)]
    patches = torch.randn(3, frames, 96, generator=torch.Generator().manual_seed(1)) * 2 + 1
    with torch.no_grad():
        for name, a, b in zip(["tags", "embedding", "max_pool", "mean_pool"], full(patches), pruned(patches),
                              strict=True):
            assert a.shape == b.shape, name
            np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-5 * float(a.abs().max()), err_msg=name)
        # the mid-end prefix (the window's first frames, computed ahead) on the kept channels only
        x = full.input_bn(patches.unsqueeze(1))
        front_full = torch.cat([b(x) for b in blocks], dim=1)
        front_kept = torch.cat([b(pruned.input_bn(patches.unsqueeze(1))) for b in [*pruned.timbral, *pruned.temporal]],
                               dim=1)
        assert front_kept.shape[1] == sum(kept.values())
        expected = full.midend_prefix(front_full[:, :, :30]).numpy()
        np.testing.assert_allclose(pruned.midend_prefix(front_kept[:, :, :30]).numpy(), expected, rtol=1e-5,
                                   atol=1e-5 * np.abs(expected).max())
    spec = streaming_spec(StreamingMusicnn(pruned))
    assert spec.channels == sum(kept.values())
    assert [p.channels for p in spec.parts] == [kept["timbral38"] + kept["timbral67"], kept["temporal128"],
                                               kept["temporal64"], kept["temporal32"]]
    with pytest.raises(ValueError, match="already pruned"):
        pruned.prune_constant_filters()


def test_msd_musicnn_computes_64_of_its_561_front_end_channels(musicnn_dir):
    from streamgenre.model import load_model
    from training.import_musicnn import build_backbone, read_weights

    weights = read_weights(musicnn_dir / "MSD_musicnn")
    full, pruned = build_backbone(weights, prune=False), build_backbone(weights)
    assert [b.conv.out_channels for b in [*pruned.timbral, *pruned.temporal]] == [23, 14, 3, 7, 17]
    patches = torch.from_numpy(np.load(require_shared("musicnn_ref", "jazz.00000.npz"))["patches"])
    with torch.no_grad():
        for name, a, b in zip(["tags", "embedding", "max_pool", "mean_pool"], full(patches), pruned(patches),
                              strict=True):
            np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-5 * float(a.abs().max()), err_msg=name)
    for name in ("msd_musicnn", "gtzan_musicnn"):
        assert load_model(REPO_ROOT / "models" / f"{name}.onnx", provider="cpu", warmup=False).contract.streaming \
            .channels == 64


def test_a_block_whose_filters_are_all_constant_keeps_one():
    import copy

    full, _ = _musicnn_with_constant_filters(seed=5)
    with torch.no_grad():
        full.temporal[0].conv.weight.zero_()
    pruned = copy.deepcopy(full)
    assert pruned.prune_constant_filters()["temporal128"] == 1
    patches = torch.randn(2, 60, 96, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        np.testing.assert_allclose(pruned(patches)[0].numpy(), full(patches)[0].numpy(), rtol=1e-5, atol=1e-6)
