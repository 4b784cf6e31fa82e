"""The error class of the training tools: one clear line, printed by the CLIs without a traceback."""

from __future__ import annotations

from streamgenre.errors import StreamgenreError

__all__ = ["TrainingError"]


class TrainingError(StreamgenreError):
    """Bad training or evaluation input: missing folders, empty or single classes, unusable audio,
    mismatched labels or features, incompatible checkpoints. ``str()`` is one line naming the problem."""
