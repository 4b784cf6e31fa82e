"""Ogg radio titles: comment headers sniffed from the raw bytes, offline and through a real icecast2."""

from __future__ import annotations

import struct
import time

import pytest
from conftest import require_shared
from icecast import FfmpegSource, IcecastServer, encode, require_tools, wait_until

from streamgenre.oggtags import OggTagSniffer, now_playing, parse_comment_header
from streamgenre.radio import RadioSource, StreamEvent

SONGS = [{"artist": "Band A", "title": "First Song"}, {"artist": "Bänd B", "title": "Second ';Song"}]


@pytest.fixture(scope="module")
def clip():
    require_tools("ffmpeg")
    return require_shared("gtzan", "jazz", "jazz.00000.flac")


@pytest.fixture(scope="module", params=["vorbis", "opus"])
def chained(request, clip, tmp_path_factory) -> bytes:
    """Two songs as one chained Ogg stream, as an Ogg radio mount sends them."""
    tmp = tmp_path_factory.mktemp(f"ogg_{request.param}")
    parts = [encode(clip, tmp / f"{i}.ogg", request.param, seconds=2, metadata=song, start=4 * i)
             for i, song in enumerate(SONGS)]
    return b"".join(p.read_bytes() for p in parts)


@pytest.mark.parametrize("chunk", [1, 13, 4096, 1 << 20])
def test_titles_of_chained_streams_in_any_chunking(chained: bytes, chunk: int) -> None:
    seen: list[str | None] = []
    sniffer = OggTagSniffer(seen.append)
    for i in range(0, len(chained), chunk):
        sniffer.feed(chained[i:i + chunk])
    assert seen == ["Band A - First Song", "Bänd B - Second ';Song"]
    assert sniffer.active and sniffer.headers == 2


def test_other_streams_and_broken_headers_give_no_titles(clip, tmp_path) -> None:
    seen: list[str | None] = []
    mp3 = encode(clip, tmp_path / "clip.mp3", "mp3", seconds=2, metadata=SONGS[0]).read_bytes()
    sniffer = OggTagSniffer(seen.append)
    for i in range(0, len(mp3), 500):
        sniffer.feed(mp3[i:i + 500])
    assert not sniffer.active and seen == []
    broken = OggTagSniffer(seen.append)  # impossible lengths, then a header cut short
    broken.feed(b"OggS" + b"\x03vorbis" + b"\xff\xff\xff\xff" + b"x" * 100)
    comment = b"TITLE=Late"
    header = b"OpusTags" + struct.pack("<I", 3) + b"abc" + struct.pack("<I", 1) + struct.pack("<I", len(comment))
    broken.feed(header + comment[:4])
    assert seen == []
    broken.feed(comment[4:])
    assert seen == ["Late"]
    assert parse_comment_header(header) is None  # incomplete: wait for more bytes
    with pytest.raises(ValueError):
        parse_comment_header(b"not a header")
    assert now_playing({"title": " T "}) == "T" and now_playing({"encoder": "x"}) is None


def test_ogg_mount_title_reaches_the_radio_source(clip, tmp_path) -> None:
    require_tools("icecast2", "ffmpeg")
    server = IcecastServer(tmp_path / "ice").start()
    source_client = FfmpegSource(server, "song.ogg", clip, "vorbis", seconds=20, metadata=SONGS[1]).start()
    radio = None
    try:
        assert wait_until(lambda: server.mount_ready("song.ogg"), 15), "the ffmpeg source never mounted"
        radio = RadioSource(server.url("song.ogg"), 16000, stall_seconds=5)
        radio.start()
        events: list[StreamEvent] = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not any(e.kind == "title" for e in events):
            events += [item for item in radio.read_items() if isinstance(item, StreamEvent)]
            time.sleep(0.05)
        assert [e.detail for e in events if e.kind == "title"][:1] == ["Bänd B - Second ';Song"]
        assert radio.title == "Bänd B - Second ';Song"
    finally:
        if radio is not None:
            radio.close()
        source_client.stop()
        server.stop()
