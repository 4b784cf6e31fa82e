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
        Inference-mode module taking ``(batch, window_frames, n_mels)`` and returning a tuple of
        tensors in the order of ``output_names``. For a contract with a streaming section it also
        takes, in this order, the front-end cache, the mid-end cache, the mid-end known count, the
        fresh count, the mid-end prefix input, one frames input per feature part, one left-edge
        input per part, one partial input per part that has one, and the window's partial inputs;
        and it has ``partial_example(fresh)`` giving example tensors of those last ones.
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
        example, names = _streaming_example(module, contract, output_names)
        input_names += names
        dynamic |= _streaming_axes(contract)
    module = module.eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, example, str(path), input_names=input_names,
                          output_names=output_names, dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)
    graph = onnx.load(str(path))
    if spec is not None:
        _keep_empty_batches(graph, [p.partial_output for p in spec.partial_parts])
    return save_with_contract(graph, contract, path)


def _keep_empty_batches(model: onnx.ModelProto, outputs: list[str]) -> None:
    """Set ``allowzero`` on the Reshapes that produce ``outputs``: a size computed as 0 (an empty batch,
    which the runtime feeds for computations it does not need) must mean 0, not "keep that axis"."""
    for node in model.graph.node:
        if node.op_type == "Reshape" and node.output[0] in outputs:
            for attribute in node.attribute:
                if attribute.name == "allowzero":
                    attribute.i = 1
                    break
            else:
                node.attribute.append(onnx.helper.make_attribute("allowzero", 1))


def _streaming_example(module: torch.nn.Module, contract: ModelContract, output_names: list[str]
                       ) -> tuple[tuple[torch.Tensor, ...], list[str]]:
    """Example inputs (the mel window first) and the names of the inputs after ``mel`` of a streaming model."""
    spec = contract.streaming
    mid = spec.mid
    partials = spec.partial_parts
    required = [spec.fresh_output, mid.prefix_output, *spec.feature_outputs]
    missing = [name for name in required if name not in output_names]
    if missing:
        raise ValueError(f"streaming model must output its feature parts, partials and mid-end prefix: {missing}")
    n_mels, frames, fresh = contract.mel_config.n_mels, contract.window_frames, 2
    example = (torch.zeros(1, frames, n_mels), torch.zeros(1, spec.channels, frames),
               torch.zeros(1, mid.channels, frames), torch.tensor(frames // 2, dtype=torch.int64),
               torch.tensor(fresh, dtype=torch.int64), torch.zeros(1, spec.channels, frames // 2))
    example += tuple(torch.zeros(1, frames, n_mels) for _ in spec.parts)
    example += tuple(torch.zeros(1, part.before + part.after, n_mels) for part in spec.parts)
    example += tuple(torch.zeros(1, part.before + part.after, n_mels) for part in partials)
    example += tuple(module.partial_example(fresh))  # the window's partial inputs, shaped as the partial outputs
    return example, [spec.cache_input, mid.cache_input, mid.known_input, spec.fresh_input, mid.prefix_input,
                     *(p.input for p in spec.parts), *(p.left_input for p in spec.parts),
                     *(p.partial_input for p in partials), *(p.partial_window_input for p in partials)]


def _streaming_axes(contract: ModelContract) -> dict[str, dict[int, str]]:
    """Dynamic axes of a streaming model's extra inputs and outputs (each part its own lengths)."""
    spec = contract.streaming
    mid = spec.mid
    axes = {spec.cache_input: {0: "batch"}, mid.cache_input: {0: "batch"}, spec.fresh_output: {0: "batch", 2: "fresh"},
            mid.prefix_input: {0: "prefix_batch", 2: "prefix_length"},
            mid.prefix_output: {0: "prefix_batch", 2: "prefix_length"}}
    for part in spec.parts:
        axes[part.input] = {0: "chunk_batch", 1: f"{part.input}_length"}
        axes[part.output] = {0: "chunk_batch", 2: f"{part.output}_length"}
        axes[part.left_input] = axes[part.left_output] = {0: "left_batch"}
        if part.has_partial:  # partials are batched along their last axis
            axes[part.partial_input] = {0: "partial_batch"}
            axes[part.partial_output] = {0: f"{part.partial_output}_rows", 1: "partial_columns"}
            axes[part.partial_window_input] = {0: f"{part.partial_window_input}_rows", 1: "columns"}
    return axes


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
