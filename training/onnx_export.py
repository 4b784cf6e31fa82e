"""Export a PyTorch module to ONNX with the streamgenre model contract in its metadata."""

from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import torch

from streamgenre.contract import METADATA_KEY, ModelContract, parse_contract

OPSET = 17


def export_with_contract(module: torch.nn.Module, contract: ModelContract, output_names: list[str],
                         path: str | Path) -> Path:
    """Trace ``module`` on one window, write ONNX with a dynamic batch axis, and embed the contract.

    Parameters
    ----------
    module
        Inference-mode module taking ``(batch, window_frames, n_mels)`` (plus, for a contract with a
        streaming section, the cache and one frames input per feature part) and returning a tuple of
        tensors in the order of ``output_names``.
    contract
        The metadata to embed; it is re-parsed before writing, so an invalid contract never ships.
    output_names
        Names of the module's outputs, which must all be described in ``contract.outputs``.
    path
        Destination ``.onnx`` file (its folder is created).
    """
    parse_contract(contract.to_json())  # validate before exporting
    missing = [name for name in contract.outputs if name not in output_names]
    if missing:
        raise ValueError(f"contract describes outputs the module does not produce: {missing}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    example: tuple[torch.Tensor, ...] = (torch.zeros(1, contract.window_frames, contract.mel_config.n_mels),)
    input_names = [contract.input_name]
    dynamic = {contract.input_name: {0: "batch"}} | {name: {0: "batch"} for name in output_names}
    spec = contract.streaming
    if spec is not None:
        missing_parts = [name for part in spec.parts for name in (part.output, part.left_output)
                         if name not in output_names]
        if missing_parts:
            raise ValueError(f"streaming model must output its feature parts {missing_parts}")
        n_mels = contract.mel_config.n_mels
        mid = spec.mid
        if mid.prefix_output not in output_names:
            raise ValueError(f"streaming model must output its mid-end prefix {mid.prefix_output!r}")
        frames = contract.window_frames
        example += (torch.zeros(1, spec.channels, frames), torch.zeros(1, mid.channels, frames),
                    torch.tensor(frames // 2, dtype=torch.int64), torch.zeros(1, spec.channels, frames // 2))
        example += tuple(torch.zeros(1, frames, n_mels) for _ in spec.parts)
        example += tuple(torch.zeros(1, part.before + part.after, n_mels) for part in spec.parts)
        input_names += [spec.cache_input, mid.cache_input, mid.known_input, mid.prefix_input,
                        *(p.input for p in spec.parts), *(p.left_input for p in spec.parts)]
        dynamic[spec.cache_input] = dynamic[mid.cache_input] = {0: "batch"}
        dynamic[mid.prefix_input] = dynamic[mid.prefix_output] = {0: "prefix_batch", 2: "prefix_length"}
        for part in spec.parts:
            dynamic[part.input] = {0: "chunk_batch", 1: f"{part.input}_length"}  # each part its own length
            dynamic[part.output] = {0: "chunk_batch", 2: f"{part.output}_length"}
            dynamic[part.left_input] = dynamic[part.left_output] = {0: "left_batch"}
    module = module.eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, example, str(path), input_names=input_names,
                          output_names=output_names, dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)
    return save_with_contract(onnx.load(str(path)), contract, path)


def save_with_contract(model: onnx.ModelProto, contract: ModelContract, path: str | Path) -> Path:
    """Replace the metadata of ``model`` with ``contract``, check the graph and write it to ``path``."""
    parse_contract(contract.to_json())
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, contract.to_json()
    model.producer_name = "streamgenre"
    model.doc_string = f"{contract.name}: {contract.provenance.get('source', '')}"
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
