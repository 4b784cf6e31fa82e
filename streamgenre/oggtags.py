"""Now-playing titles of Ogg radio streams (Vorbis and Opus comment headers).

Icecast sends no ICY metadata for Ogg mounts: a new song starts a new logical Ogg stream whose
comment header carries ``ARTIST=`` and ``TITLE=``. :class:`OggTagSniffer` watches the raw bytes
as they arrive (before the demuxer) and reports each comment header it finds, so Ogg feeds get
titles like MP3/AAC feeds do. It reads nothing itself and never blocks: bytes are only scanned.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

MARKERS = (b"\x03vorbis", b"OpusTags")  # a comment header packet starts with one of these
MAX_HEADER_BYTES = 1 << 16  # a comment header larger than this is skipped (cover art, abuse)
MAX_COMMENTS = 1024
_KEEP = max(len(m) for m in MARKERS) - 1  # bytes kept between chunks so a split marker is found


def parse_comment_header(packet: bytes) -> tuple[dict[str, str], int] | None:
    """``({key (lower case): value}, bytes used)`` of a Vorbis/Opus comment header at the start of
    ``packet``, or None when ``packet`` ends before the header does.

    Raises
    ------
    ValueError
        The bytes after the marker cannot be a comment header (lengths out of range).
    """
    marker = next((m for m in MARKERS if packet.startswith(m)), None)
    if marker is None:
        raise ValueError("not a comment header")
    pos = len(marker)

    def take(n: int) -> bytes | None:
        nonlocal pos
        if n < 0 or pos + n > MAX_HEADER_BYTES:
            raise ValueError("comment header too large")
        if pos + n > len(packet):
            return None
        chunk = packet[pos:pos + n]
        pos += n
        return chunk

    raw = take(4)
    if raw is None:
        return None
    if take(struct.unpack("<I", raw)[0]) is None:  # vendor string
        return None
    raw = take(4)
    if raw is None:
        return None
    count = struct.unpack("<I", raw)[0]
    if count > MAX_COMMENTS:
        raise ValueError("too many comments")
    fields: dict[str, str] = {}
    for _ in range(count):
        raw = take(4)
        if raw is None:
            return None
        entry = take(struct.unpack("<I", raw)[0])
        if entry is None:
            return None
        key, sep, value = entry.decode("utf-8", "replace").partition("=")
        if sep:
            fields[key.strip().lower()] = value
    return fields, pos


def now_playing(fields: dict[str, str]) -> str | None:
    """``"artist - title"`` (or whichever of the two exists) from comment fields."""
    artist, title = fields.get("artist", "").strip(), fields.get("title", "").strip()
    return " - ".join(part for part in (artist, title) if part) or None


class OggTagSniffer:
    """Feed it a stream's raw bytes; it calls ``on_title`` with each comment header's title.

    The stream must start with an Ogg page (``OggS``); any other stream switches the sniffer off
    after its first bytes, so non-Ogg feeds pay nothing. A comment header is read from the bytes
    as they come, which holds for the short headers radio servers send (one page).
    """

    def __init__(self, on_title: Callable[[str | None], None]) -> None:
        self._on_title = on_title
        self._buffer = b""
        self._seen = 0
        self.active = True
        self.headers = 0

    def feed(self, data: bytes) -> None:
        """Scan the next bytes of the stream."""
        if not self.active or not data:
            return
        if self._seen < 4:
            head = (self._buffer + data)[:4]
            if not b"OggS".startswith(head):
                self.active = False
                self._buffer = b""
                return
        self._seen += len(data)
        buffer = self._buffer + data
        while True:
            found = [(buffer.find(m), m) for m in MARKERS]
            starts = [i for i, _ in found if i >= 0]
            if not starts:
                self._buffer = buffer[-_KEEP:]
                return
            start = min(starts)
            try:
                parsed = parse_comment_header(buffer[start:])
            except ValueError:
                buffer = buffer[start + 1:]  # not a header after all: look further
                continue
            if parsed is None:  # incomplete: wait for more bytes (bounded by MAX_HEADER_BYTES)
                self._buffer = buffer[start:]
                return
            fields, used = parsed
            self.headers += 1
            self._on_title(now_playing(fields))
            buffer = buffer[start + used:]
