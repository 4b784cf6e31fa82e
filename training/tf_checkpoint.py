"""A small, dependency-free reader for TensorFlow V2 checkpoints (the TensorBundle format).

TensorFlow is never needed to convert the musicnn weights: a checkpoint is an ``.index`` file
(a LevelDB-style sorted table mapping tensor names to ``BundleEntryProto`` records) and one or
more ``.data-NNNNN-of-NNNNN`` shards holding the raw little-endian tensor bytes. This module
parses both with the standard library and numpy, and verifies each tensor's masked CRC32C so a
damaged or mismatched file is an error, never silently wrong weights (the original musicnn
extractor swallows a failed restore and runs on random weights).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48
_BLOCK_TRAILER_SIZE = 5
# tensorflow/core/framework/types.proto DataType -> numpy dtype (only numeric types).
_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8, 9: np.int64,
           10: np.bool_, 17: np.uint16, 19: np.float16, 22: np.uint32, 23: np.uint64}


class CheckpointError(ValueError):
    """The checkpoint files are missing, damaged or not in the TensorBundle format."""


@dataclass(frozen=True)
class TensorEntry:
    """Where one tensor lives in the data shards."""

    name: str
    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int | None


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise CheckpointError("truncated varint in checkpoint index")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise CheckpointError("malformed varint in checkpoint index")


def _proto_fields(buf: bytes) -> list[tuple[int, int, int | bytes]]:
    """Decode a protobuf message into (field number, wire type, value) triples."""
    fields = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value = struct.unpack_from("<Q", buf, pos)[0]
            pos += 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value = bytes(buf[pos:pos + length])
            pos += length
        elif wire == 5:
            value = struct.unpack_from("<I", buf, pos)[0]
            pos += 4
        else:
            raise CheckpointError(f"unsupported protobuf wire type {wire} in checkpoint index")
        fields.append((field, wire, value))
    if pos != len(buf):
        raise CheckpointError("truncated protobuf message in checkpoint index")
    return fields


def _parse_shape(buf: bytes) -> tuple[int, ...]:
    dims = []
    for field, _, value in _proto_fields(buf):
        if field == 2:  # Dim
            size = 0
            for dim_field, _, dim_value in _proto_fields(value):
                if dim_field == 1:
                    size = dim_value
            dims.append(int(size))
        elif field == 3 and value:
            raise CheckpointError("tensor of unknown rank in checkpoint")
    return tuple(dims)


def _parse_entry(name: str, buf: bytes) -> TensorEntry:
    dtype, shape, shard_id, offset, size, crc = 0, (), 0, 0, 0, None
    for field, _, value in _proto_fields(buf):
        if field == 1:
            dtype = int(value)
        elif field == 2:
            shape = _parse_shape(value)
        elif field == 3:
            shard_id = int(value)
        elif field == 4:
            offset = int(value)
        elif field == 5:
            size = int(value)
        elif field == 6:
            crc = int(value)
        elif field == 7:
            raise CheckpointError(f"partitioned (sliced) tensor {name!r} is not supported")
    return TensorEntry(name, dtype, shape, shard_id, offset, size, crc)


def _block_entries(data: bytes, offset: int, size: int) -> list[tuple[bytes, bytes]]:
    """Decode one table block (uncompressed) into (key, value) pairs."""
    if offset + size + _BLOCK_TRAILER_SIZE > len(data):
        raise CheckpointError("checkpoint index block points past the end of the file")
    if data[offset + size] != 0:
        raise CheckpointError("compressed checkpoint index blocks are not supported")
    block = data[offset:offset + size]
    num_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end = len(block) - 4 - 4 * num_restarts
    entries = []
    pos = 0
    key = b""
    while pos < end:
        shared, pos = _varint(block, pos)
        non_shared, pos = _varint(block, pos)
        value_len, pos = _varint(block, pos)
        key = key[:shared] + block[pos:pos + non_shared]
        pos += non_shared
        entries.append((key, block[pos:pos + value_len]))
        pos += value_len
    return entries


_CRC_TABLE: list[int] = []


def _crc32c(data: bytes) -> int:
    if not _CRC_TABLE:
        for i in range(256):
            crc = i
            for _ in range(8):
                crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
            _CRC_TABLE.append(crc)
    table = _CRC_TABLE
    crc = 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked_crc32c(data: bytes) -> int:
    crc = _crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


class CheckpointReader:
    """Read tensors from a TensorFlow checkpoint given its prefix.

    Parameters
    ----------
    prefix
        The path prefix: ``prefix + ".index"`` and ``prefix + ".data-00000-of-00001"`` must exist
        (for musicnn's checkpoints the prefix is the model folder plus a trailing slash).
    """

    def __init__(self, prefix: str | Path) -> None:
        self.prefix = str(prefix)
        index_path = Path(self.prefix + ".index")
        if not index_path.is_file():
            raise CheckpointError(f"{index_path}: checkpoint index not found")
        data = index_path.read_bytes()
        if len(data) < _FOOTER_SIZE:
            raise CheckpointError(f"{index_path}: too short to be a checkpoint index")
        footer = data[-_FOOTER_SIZE:]
        if struct.unpack_from("<Q", footer, 40)[0] != _TABLE_MAGIC:
            raise CheckpointError(f"{index_path}: not a TensorFlow checkpoint index (bad magic)")
        _, pos = _varint(footer, 0)  # metaindex offset
        _, pos = _varint(footer, pos)  # metaindex size
        index_offset, pos = _varint(footer, pos)
        index_size, _ = _varint(footer, pos)
        self.entries: dict[str, TensorEntry] = {}
        self.num_shards = 1
        for _, handle in _block_entries(data, index_offset, index_size):
            block_offset, hpos = _varint(handle, 0)
            block_size, _ = _varint(handle, hpos)
            for key, value in _block_entries(data, block_offset, block_size):
                if key == b"":  # BundleHeaderProto
                    for field, _, header_value in _proto_fields(value):
                        if field == 1:
                            self.num_shards = int(header_value)
                    continue
                name = key.decode("utf-8")
                self.entries[name] = _parse_entry(name, value)

    def variables(self) -> dict[str, tuple[int, ...]]:
        """Map every tensor name to its shape."""
        return {name: entry.shape for name, entry in sorted(self.entries.items())}

    def read(self, name: str, verify: bool = True) -> np.ndarray:
        """Return one tensor as a numpy array (a copy), checking size and CRC32C.

        Raises
        ------
        KeyError
            When the checkpoint has no tensor of that name.
        CheckpointError
            When the tensor's bytes are missing or damaged.
        """
        entry = self.entries[name]
        if entry.dtype not in _DTYPES:
            raise CheckpointError(f"tensor {name!r} has unsupported dtype code {entry.dtype}")
        dtype = np.dtype(_DTYPES[entry.dtype]).newbyteorder("<")
        expected = dtype.itemsize * int(np.prod(entry.shape, dtype=np.int64))
        if expected != entry.size:
            raise CheckpointError(f"tensor {name!r}: {entry.size} bytes stored, {expected} expected")
        shard = Path(f"{self.prefix}.data-{entry.shard_id:05d}-of-{self.num_shards:05d}")
        if not shard.is_file():
            raise CheckpointError(f"{shard}: checkpoint data shard not found")
        with shard.open("rb") as handle:
            handle.seek(entry.offset)
            raw = handle.read(entry.size)
        if len(raw) != entry.size:
            raise CheckpointError(f"{shard}: truncated while reading tensor {name!r}")
        if verify and entry.crc32c is not None and _masked_crc32c(raw) != entry.crc32c:
            raise CheckpointError(f"{shard}: CRC mismatch for tensor {name!r} (damaged checkpoint)")
        return np.frombuffer(raw, dtype=dtype).reshape(entry.shape).astype(dtype.newbyteorder("="))
