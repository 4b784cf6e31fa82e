"""Exception classes of streamgenre.

Every class here is a user-facing error: its ``str()`` is one clear line that names what is wrong,
so the command line can print it as is, without a traceback.
"""

from __future__ import annotations

__all__ = ["AudioDecodeError", "ConfigError", "DeviceError", "ModelError", "StreamgenreError"]


class StreamgenreError(Exception):
    """Base class: a user-facing error whose ``str()`` is one clear line."""


class AudioDecodeError(StreamgenreError):
    """An audio file that cannot be decoded (missing, a directory, empty, corrupt, not audio, no samples).

    The message names the file and the reason.
    """


class ConfigError(StreamgenreError):
    """Bad user settings (command-line options, configuration values)."""


class ModelError(StreamgenreError):
    """A model file that is missing or invalid."""


class DeviceError(StreamgenreError):
    """An audio device problem (no such device, unsupported rate, device lost)."""
