"""Convert the pretrained musicnn checkpoints (from the ``musicnn`` wheel) to ONNX.

Usage::

    pip install --no-deps musicnn==0.1.0
    python -m training.import_musicnn [--musicnn-dir DIR] [--out models/] [--check ../shared/data/musicnn_ref]

Reads the TensorFlow checkpoints with our own reader (no TensorFlow needed), loads them into our
PyTorch re-implementation, exports ONNX with the model contract, and — when reference outputs of
the original TensorFlow models are available — verifies the exported graphs against every
reference patch with onnxruntime before declaring success.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np

from streamgenre.contract import FeaturePart, MidendSpec, ModelContract, OutputSpec, StreamingSpec
from streamgenre.features import MelConfig
from training.musicnn_port import (
    MIDEND_CONTEXT,
    Musicnn,
    StreamingMusicnn,
    load_musicnn_weights,
)
from training.tf_checkpoint import CheckpointReader

MUSICNN_MEL = MelConfig(sample_rate=16000, n_fft=512, hop_length=256, n_mels=96, log="log10p", log_scale=10000.0)
WINDOW_FRAMES = 187
FRESH_OUTPUT = "fresh_features"
MID_PREFIX_OUTPUT = "mid_prefix"


def streaming_spec(module: StreamingMusicnn) -> StreamingSpec:
    """The contract's streaming section of a (pruned or full) musicnn: its feature parts' inputs,
    outputs and channel counts, and its mid end."""
    return StreamingSpec(
        cache_input="front_cache",
        parts=tuple(
            FeaturePart(f"{name}_frames", f"{name}_features", f"{name}_left_frames", f"{name}_left_features",
                        channels, before, after,
                        *((f"{name}_known_frames", f"{name}_partial", f"{name}_window_partial") if partial else ()))
            for name, channels, (before, after), partial in module.parts()
        ),
        mid=MidendSpec("mid_cache", "mid_known", "front_prefix", MID_PREFIX_OUTPUT, channels=3 * 64, layers=3,
                       context=MIDEND_CONTEXT),
        fresh_input="fresh",
        fresh_output=FRESH_OUTPUT,
    )


def output_names(spec: StreamingSpec) -> list[str]:
    """The graph outputs of an exported streaming musicnn, in the order its ``forward`` returns them."""
    return ["tags", "embedding", "max_pool", "mean_pool", spec.fresh_output, *spec.feature_outputs,
            spec.mid.prefix_output]


def build_backbone(weights: dict[str, np.ndarray], prune: bool = True) -> Musicnn:
    """musicnn with a checkpoint's weights, its constant front-end filters pruned (see
    :meth:`Musicnn.prune_constant_filters`) unless ``prune`` is False."""
    backbone = Musicnn().eval()
    load_musicnn_weights(backbone, weights)
    if prune:
        backbone.prune_constant_filters()
    return backbone


MSD_TAGS = ['rock', 'pop', 'alternative', 'indie', 'electronic', 'female vocalists', 'dance', '00s',
            'alternative rock', 'jazz', 'beautiful', 'metal', 'chillout', 'male vocalists', 'classic rock', 'soul',
            'indie rock', 'Mellow', 'electronica', '80s', 'folk', '90s', 'chill', 'instrumental', 'punk', 'oldies',
            'blues', 'hard rock', 'ambient', 'acoustic', 'experimental', 'female vocalist', 'guitar', 'Hip-Hop',
            '70s', 'party', 'country', 'easy listening', 'sexy', 'catchy', 'funk', 'electro', 'heavy metal',
            'Progressive rock', '60s', 'rnb', 'indie pop', 'sad', 'House', 'happy']
MTT_TAGS = ['guitar', 'classical', 'slow', 'techno', 'strings', 'drums', 'electronic', 'rock', 'fast', 'piano',
            'ambient', 'beat', 'violin', 'vocal', 'synth', 'female', 'indian', 'opera', 'male', 'singing', 'vocals',
            'no vocals', 'harpsichord', 'loud', 'quiet', 'flute', 'woman', 'male vocal', 'no vocal', 'pop', 'soft',
            'sitar', 'solo', 'man', 'classic', 'choir', 'voice', 'new age', 'dance', 'male voice', 'female vocal',
            'beats', 'harp', 'cello', 'no voice', 'weird', 'country', 'metal', 'female voice', 'choral']
# Tags that name a genre or style; moods, decades, instruments and voices are tags, not genres.
MSD_GENRES = ['rock', 'pop', 'alternative', 'indie', 'electronic', 'dance', 'alternative rock', 'jazz', 'metal',
              'classic rock', 'soul', 'indie rock', 'electronica', 'folk', 'punk', 'blues', 'hard rock', 'ambient',
              'experimental', 'Hip-Hop', 'country', 'easy listening', 'funk', 'electro', 'heavy metal',
              'Progressive rock', 'rnb', 'indie pop', 'House']
MTT_GENRES = ['classical', 'techno', 'electronic', 'rock', 'ambient', 'indian', 'opera', 'pop', 'new age', 'dance',
              'country', 'metal']
MODELS = {
    "MSD_musicnn": ("msd_musicnn", MSD_TAGS, MSD_GENRES,
                    "Million Song Dataset (Last.fm top-50 tags), ~200k 30 s previews"),
    "MTT_musicnn": ("mtt_musicnn", MTT_TAGS, MTT_GENRES, "MagnaTagATune (top-50 tags), ~26k 29 s clips"),
}


def find_musicnn_dir() -> Path:
    """Locate the installed ``musicnn`` package without importing it (importing pulls TensorFlow)."""
    spec = importlib.util.find_spec("musicnn")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("musicnn is not installed: pip install --no-deps musicnn==0.1.0 (or pass --musicnn-dir)")
    return Path(next(iter(spec.submodule_search_locations)))


def read_weights(checkpoint_dir: Path) -> dict[str, np.ndarray]:
    """Read the model variables (not the optimizer slots) of one musicnn checkpoint."""
    reader = CheckpointReader(str(checkpoint_dir) + "/")
    skip = ("/Adam", "/Adam_1", "beta1_power", "beta2_power", "global_step")
    return {name: reader.read(name) for name in reader.entries if not any(s in name for s in skip)}


def build_contract(key: str, parameters: int, streaming: StreamingSpec) -> ModelContract:
    """The metadata of one converted musicnn model."""
    name, tags, genres, data = MODELS[key]
    outputs = {
        "tags": OutputSpec("tags", "sigmoid", tuple(tags)),
        "embedding": OutputSpec("embedding", "embedding", size=200),
        "max_pool": OutputSpec("max_pool", "embedding", size=753),
        "mean_pool": OutputSpec("mean_pool", "embedding", size=753),
    }
    provenance = {
        "source": f"musicnn 0.1.0 {key} checkpoint (Pons & Serra 2019, github.com/jordipons/musicnn), "
                  "converted by training/import_musicnn.py",
        "license": "ISC (musicnn); see models/README.md",
        "training_data": data,
        "parameters": parameters,
        "architecture": "musicnn: timbral (7x38, 7x67) + temporal (128/64/32) front end, 3-layer dense mid end, "
                        "max+mean pooled 200-unit back end",
    }
    return ModelContract(name=name, input_name="mel", window_frames=WINDOW_FRAMES, mel_config=MUSICNN_MEL,
                         outputs=outputs, genre_output="tags", genre_labels=tuple(genres), tag_output="tags",
                         provenance=provenance, streaming=streaming)


def check_against_reference(path: Path, key: str, reference_dir: Path) -> dict[str, float]:
    """Run the exported ONNX on every reference patch; return the worst errors (raises if out of bounds)."""
    from streamgenre.model import load_model

    model = load_model(path, provider="cpu")
    prefix = key.split("_")[0]
    worst = {"tags_abs": 0.0, "embedding_rel": 0.0, "max_pool_rel": 0.0, "mean_pool_rel": 0.0}
    files = sorted(reference_dir.glob("*.npz"))
    for file in files:
        ref = np.load(file)
        out = model.predict(ref["patches"])
        worst["tags_abs"] = max(worst["tags_abs"], float(np.abs(out["tags"] - ref[f"{prefix}_taggram"]).max()))
        for name, ref_name in (("embedding", "penultimate"), ("max_pool", "max_pool"), ("mean_pool", "mean_pool")):
            expected = ref[f"{prefix}_{ref_name}"]
            rel = np.linalg.norm(out[name] - expected, axis=1) / np.linalg.norm(expected, axis=1)
            worst[f"{name}_rel"] = max(worst[f"{name}_rel"], float(rel.max()))
    if worst["tags_abs"] > 1e-4 or max(v for k, v in worst.items() if k.endswith("_rel")) > 1e-3:
        raise SystemExit(f"{path}: parity with the original musicnn FAILED: {worst}")
    worst["reference_files"] = len(files)
    return worst


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    import onnx

    from training.onnx_export import export_with_contract

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--musicnn-dir", type=Path, help="folder of the musicnn package (default: the installed one)")
    parser.add_argument("--out", type=Path, default=Path("models"), help="output folder (default: models/)")
    parser.add_argument("--check", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data"
                        / "musicnn_ref", help="reference outputs of the original models (skipped if absent)")
    args = parser.parse_args(argv)
    source = args.musicnn_dir or find_musicnn_dir()
    for key, (name, *_rest) in MODELS.items():
        weights = read_weights(source / key)
        torch_model = StreamingMusicnn(build_backbone(weights)).eval()
        spec = streaming_spec(torch_model)
        parameters = int(sum(w.size for w in weights.values()))
        names = output_names(spec)
        path = export_with_contract(torch_model, build_contract(key, parameters, spec), names,
                                    args.out / f"{name}.onnx")
        if args.check.is_dir():
            worst = check_against_reference(path, key, args.check)
            contract = build_contract(key, parameters, spec)
            contract.metrics.update({"parity_with_original_tensorflow": worst})
            export_with_contract(torch_model, contract, names, path)
            print(f"{path}: {parameters} parameters, {spec.channels} of 561 front-end channels computed; parity vs "
                  f"original TF on {worst['reference_files']} files: tags max abs {worst['tags_abs']:.2e}, "
                  f"embedding max rel {worst['embedding_rel']:.2e}")
        else:
            print(f"{path}: {parameters} parameters (no reference outputs at {args.check}: parity not checked)")
        onnx.checker.check_model(str(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
