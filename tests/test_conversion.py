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
