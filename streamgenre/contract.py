"""The model contract: what every ONNX model carries in its metadata so the runtime can trust it.

A model stores one JSON document under the metadata key ``streamgenre``. It names the input
(``mel``: ``(batch, window_frames, n_mels)`` float32), the full :class:`MelConfig` the model was
trained with, every output's kind and labels, which output and which of its labels are genres,
where the weights came from, and a format version. The runtime builds its front end from this
document, so features and model cannot disagree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from streamgenre.errors import ModelError
from streamgenre.features import MelConfig

METADATA_KEY = "streamgenre"
FORMAT_VERSION = 3
OUTPUT_KINDS = ("softmax", "sigmoid", "logits", "embedding")


@dataclass(frozen=True)
class OutputSpec:
    """One model output: its kind and, for class outputs, one label per unit."""

    name: str
    kind: str
    labels: tuple[str, ...] = ()
    size: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        out: dict[str, Any] = {"kind": self.kind}
        if self.labels:
            out["labels"] = list(self.labels)
        if self.size is not None:
            out["size"] = self.size
        return out


@dataclass(frozen=True)
class FeaturePart:
    """One group of a streaming model's per-frame features.

    The model maps ``input`` (``(batch, n, n_mels)`` mel frames) to ``output``
    (``(batch, channels, n - before - after)``): the features of frames ``[before, n - after)``,
    each depending only on the frames ``before`` ahead of and ``after`` behind it. And it maps
    ``left_input`` (a window's first ``before + after`` frames) to ``left_output``
    (``(batch, channels, before)``): the features of the window's first ``before`` frames, which
    see the window's zero padding.

    A part with a partial (``partial_input`` given) lets a stream sum, before a window is
    complete, what the frames it already has contribute to the window's last frames:
    ``partial_input`` (the ``before + after`` frames preceding the window's last ``fresh``
    frames, with the spec's ``fresh_input``) -> ``partial_output``, a 2-D array batched along its
    last axis (each item's columns after the previous item's), which the window computation takes
    as ``partial_window_input``. Without one, the window computes those frames from the mel window
    itself.
    """

    input: str
    output: str
    left_input: str
    left_output: str
    channels: int
    before: int
    after: int
    partial_input: str | None = None
    partial_output: str | None = None
    partial_window_input: str | None = None

    @property
    def has_partial(self) -> bool:
        """Whether the window takes this part's last frames' known terms as an input."""
        return self.partial_input is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        out = {"input": self.input, "output": self.output, "left_input": self.left_input,
               "left_output": self.left_output, "channels": self.channels, "before": self.before,
               "after": self.after}
        if self.has_partial:
            out |= {"partial_input": self.partial_input, "partial_output": self.partial_output,
                    "partial_window_input": self.partial_window_input}
        return out


@dataclass(frozen=True)
class MidendSpec:
    """How a streaming model takes its mid end's first frames from before the window was complete.

    ``prefix_output`` (``(batch, channels, n)``) is computed from ``prefix_input``, the window's
    first ``n`` front-end columns (``(batch, cache channels, n)``): for each of ``layers`` layers
    ``j`` (1-based, ``channels / layers`` rows each) its outputs of frames ``[0, n - context * j)``.
    The window computation takes those frames from ``cache_input`` when ``known_input`` (int64
    scalar) is ``n``, and computes everything when it is 0.
    """

    cache_input: str
    known_input: str
    prefix_input: str
    prefix_output: str
    channels: int
    layers: int
    context: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {"cache_input": self.cache_input, "known_input": self.known_input, "prefix_input": self.prefix_input,
                "prefix_output": self.prefix_output, "channels": self.channels, "layers": self.layers,
                "context": self.context}


@dataclass(frozen=True)
class StreamingSpec:
    """How a model lets a stream compute each frame's front-end features once (optional).

    Besides its window outputs (from the mel window and ``cache_input``), the graph has
    independent computations per :class:`FeaturePart` (a stream's frames, a window's first
    frames, and the partial of a window's last frames). ``cache_input`` is ``(batch, channels,
    window_frames)``: the parts' features stacked in order, column ``i`` belonging to frame ``i``
    of the window; a part's columns are read for frames ``[0, window_frames - fresh - after)``
    (the first ``before`` from ``left_output``, the rest from ``output``), where ``fresh`` is the
    int64 scalar ``fresh_input`` (≥ 1): the window's newest frames. The window computation adds
    each part's last ``fresh + after`` frames itself, so the result is the full model's, and it
    also outputs ``fresh_output`` (``(batch, channels, fresh)``): each part's features of frames
    ``[window_frames - fresh - after, window_frames - after)``, complete now, for the stream to keep.
    """

    cache_input: str
    parts: tuple[FeaturePart, ...]
    mid: MidendSpec
    fresh_input: str = "fresh"
    fresh_output: str = "fresh_features"

    @property
    def channels(self) -> int:
        """Rows of ``cache_input``."""
        return sum(part.channels for part in self.parts)

    @property
    def partial_parts(self) -> tuple[FeaturePart, ...]:
        """The parts with a partial, in order (the window takes their partials in this order)."""
        return tuple(part for part in self.parts if part.has_partial)

    @property
    def window_inputs(self) -> list[str]:
        """Inputs of the window computation besides the mel window."""
        return [self.cache_input, self.mid.cache_input, self.mid.known_input, self.fresh_input,
                *(part.partial_window_input for part in self.partial_parts)]

    @property
    def feature_inputs(self) -> list[str]:
        """Inputs of the feature computations: every part's frames and left edge, the partials' frames, ``fresh``."""
        return [*(part.input for part in self.parts), *(part.left_input for part in self.parts),
                *(part.partial_input for part in self.partial_parts), self.fresh_input]

    @property
    def feature_outputs(self) -> list[str]:
        """Outputs of the feature computations, in the order of :attr:`feature_inputs`."""
        return [*(part.output for part in self.parts), *(part.left_output for part in self.parts),
                *(part.partial_output for part in self.partial_parts)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {"cache_input": self.cache_input, "parts": [part.to_dict() for part in self.parts],
                "mid": self.mid.to_dict(), "fresh_input": self.fresh_input, "fresh_output": self.fresh_output}


@dataclass(frozen=True)
class ModelContract:
    """Everything the runtime needs to know about a model, parsed and validated.

    Attributes
    ----------
    name
        Short model name, e.g. ``"msd_musicnn"``.
    input_name
        Name of the single mel input.
    window_frames
        Frames per window the model takes (187 for musicnn: 3 s at 16 kHz, hop 256).
    mel_config
        The front-end settings the model was trained with.
    outputs
        Output specs by name.
    genre_output
        Which output holds genre scores.
    genre_labels
        The labels of ``genre_output`` that are genres (all of them for a genre classifier;
        a subset for a tagger whose tags also include moods and decades).
    provenance
        Source, license, training data, conversion details (free-form, JSON-safe).
    metrics
        Evaluation results recorded at export time (free-form, JSON-safe).
    """

    name: str
    input_name: str
    window_frames: int
    mel_config: MelConfig
    outputs: dict[str, OutputSpec]
    genre_output: str
    genre_labels: tuple[str, ...]
    provenance: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    tag_output: str | None = None
    streaming: StreamingSpec | None = None

    @property
    def genre_indices(self) -> tuple[int, ...]:
        """Positions of :attr:`genre_labels` within the genre output's labels."""
        labels = self.outputs[self.genre_output].labels
        return tuple(labels.index(label) for label in self.genre_labels)

    def to_json(self) -> str:
        """Serialise for the ONNX metadata (inverse of :func:`parse_contract`)."""
        document = {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "input": {"name": self.input_name, "window_frames": self.window_frames,
                      "n_mels": self.mel_config.n_mels},
            "mel_config": self.mel_config.to_dict(),
            "outputs": {name: spec.to_dict() for name, spec in self.outputs.items()},
            "genre_output": self.genre_output,
            "genre_labels": list(self.genre_labels),
            "tag_output": self.tag_output,
            "provenance": self.provenance,
            "metrics": self.metrics,
        }
        if self.streaming is not None:
            document["streaming"] = self.streaming.to_dict()
        return json.dumps(document, sort_keys=True)


def _require(document: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    if key not in document:
        raise ModelError(f"model metadata lacks {key!r}")
    value = document[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise ModelError(f"model metadata {key!r} has the wrong type ({type(value).__name__})")
    return value


def _labels(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ModelError(f"model metadata {where} must be a list of non-empty strings")
    if len(set(value)) != len(value):
        raise ModelError(f"model metadata {where} has duplicate labels")
    return tuple(value)


def parse_contract(text: str | None) -> ModelContract:
    """Parse and validate the JSON stored under :data:`METADATA_KEY`.

    Raises
    ------
    ModelError
        With a one-line reason when anything is missing, malformed or inconsistent.
    """
    if text is None:
        raise ModelError(f"no {METADATA_KEY!r} metadata (not a streamgenre model; convert it with training/)")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelError(f"{METADATA_KEY!r} metadata is not valid JSON ({exc.msg})") from None
    if not isinstance(document, dict):
        raise ModelError(f"{METADATA_KEY!r} metadata must be a JSON object")
    version = _require(document, "format_version", int)
    if version != FORMAT_VERSION:
        hint = " (re-export it with python -m training.import_musicnn or training.train)" if version < FORMAT_VERSION \
            else " (upgrade streamgenre)"
        raise ModelError(f"model format version {version} is not supported (this runtime reads {FORMAT_VERSION}){hint}")
    name = _require(document, "name", str)
    spec_in = _require(document, "input", dict)
    input_name = _require(spec_in, "name", str)
    window_frames = _require(spec_in, "window_frames", int)
    if window_frames <= 0:
        raise ModelError(f"model metadata window_frames must be positive, got {window_frames}")
    try:
        mel_config = MelConfig.from_dict(_require(document, "mel_config", dict))
    except (TypeError, ValueError) as exc:
        raise ModelError(f"model metadata mel_config is invalid: {exc}") from None
    if spec_in.get("n_mels", mel_config.n_mels) != mel_config.n_mels:
        raise ModelError("model metadata input n_mels disagrees with its mel_config")
    outputs: dict[str, OutputSpec] = {}
    for out_name, raw in _require(document, "outputs", dict).items():
        if not isinstance(raw, dict):
            raise ModelError(f"model metadata output {out_name!r} must be an object")
        kind = _require(raw, "kind", str)
        if kind not in OUTPUT_KINDS:
            raise ModelError(f"model output {out_name!r} has unknown kind {kind!r} (expected one of {OUTPUT_KINDS})")
        labels = _labels(raw["labels"], f"outputs.{out_name}.labels") if "labels" in raw else ()
        if kind in ("softmax", "sigmoid") and not labels:
            raise ModelError(f"model output {out_name!r} is {kind} but has no labels")
        outputs[out_name] = OutputSpec(out_name, kind, labels, raw.get("size"))
    if not outputs:
        raise ModelError("model metadata lists no outputs")
    genre_output = _require(document, "genre_output", str)
    if genre_output not in outputs or not outputs[genre_output].labels:
        raise ModelError(f"model metadata genre_output {genre_output!r} is not a labelled output")
    genre_labels = _labels(_require(document, "genre_labels", list), "genre_labels")
    unknown = [g for g in genre_labels if g not in outputs[genre_output].labels]
    if unknown or not genre_labels:
        raise ModelError(f"model metadata genre_labels not among {genre_output!r} labels: {unknown or 'empty'}")
    tag_output = document.get("tag_output")
    if tag_output is not None and (tag_output not in outputs or not outputs[tag_output].labels):
        raise ModelError(f"model metadata tag_output {tag_output!r} is not a labelled output")
    provenance = _require(document, "provenance", dict)
    for key in ("source", "license", "training_data"):
        _require(provenance, key, str)
    return ModelContract(
        name=name, input_name=input_name, window_frames=window_frames, mel_config=mel_config,
        outputs=outputs, genre_output=genre_output, genre_labels=genre_labels,
        provenance=provenance, metrics=document.get("metrics") or {}, tag_output=tag_output,
        streaming=_parse_streaming(document.get("streaming"), window_frames),
    )


def _parse_streaming(raw: Any, window_frames: int) -> StreamingSpec | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ModelError("model metadata 'streaming' must be an object")
    cache_input = _require(raw, "cache_input", str)
    raw_parts = _require(raw, "parts", list)
    if not raw_parts:
        raise ModelError("model metadata 'streaming' lists no feature parts")
    parts = []
    for item in raw_parts:
        if not isinstance(item, dict):
            raise ModelError("model metadata 'streaming.parts' entries must be objects")
        names = [_require(item, key, str) for key in ("input", "output", "left_input", "left_output")]
        channels, before, after = (_require(item, key, int) for key in ("channels", "before", "after"))
        if channels < 1 or before < 0 or after < 0 or before + after >= window_frames:
            raise ModelError(f"model metadata streaming part {names[1]!r} has invalid channels/before/after "
                             f"({channels}, {before}, {after})")
        partial_keys = ("partial_input", "partial_output", "partial_window_input")
        partial = [_require(item, key, str) for key in partial_keys] if "partial_input" in item else [None] * 3
        parts.append(FeaturePart(*names, channels, before, after, *partial))
    mid = _require(raw, "mid", dict)
    mid_names = [_require(mid, key, str) for key in ("cache_input", "known_input", "prefix_input", "prefix_output")]
    mid_channels, layers, context = (_require(mid, key, int) for key in ("channels", "layers", "context"))
    if layers < 1 or mid_channels < layers or mid_channels % layers or context < 1:
        raise ModelError(f"model metadata 'streaming.mid' is invalid (channels {mid_channels}, layers {layers}, "
                         f"context {context})")
    fresh = [_require(raw, key, str) for key in ("fresh_input", "fresh_output")]
    return StreamingSpec(cache_input, tuple(parts), MidendSpec(*mid_names, mid_channels, layers, context), *fresh)
