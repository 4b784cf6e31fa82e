"""Radio input: ICY parsing, backoff, text escaping, and RadioSource against misbehaving HTTP servers."""

from __future__ import annotations

import logging
import random
import time

import numpy as np
import pytest
from conftest import require_shared
from icecast import BadServer, encode, require_tools, wait_until

from streamgenre.errors import ConfigError
from streamgenre.radio import (
    AudioBlock,
    Backoff,
    IcyReader,
    RadioSource,
    StreamEvent,
    display_url,
    parse_icy_metadata,
    safe_text,
)

RATE = 16000
ESCAPE_TITLE = "\x1b[2J\x1b[31mRED\x1b[0m \x9b31m [bold magenta]markup[/bold magenta] \u202eevil"
TITLES = ["Artist One - First Song", ESCAPE_TITLE, "Ünïcödé – Dash's ';Title"]


# ---------------------------------------------------------------------------------------------- ICY
def _icy_stream(audio: bytes, metaint: int, titles: list[str]) -> bytes:
    out = bytearray()
    k = 0
    for pos in range(0, len(audio), metaint):
        out += audio[pos : pos + metaint]
        if pos + metaint < len(audio):
            raw = f"StreamTitle='{titles[k % len(titles)]}';".encode() if titles[k % len(titles)] else b""
            raw += b"\x00" * (-len(raw) % 16)
            out += bytes([len(raw) // 16]) + raw
            k += 1
    return bytes(out)


class _Chunked:
    """read1 over a byte string in random-sized pieces (like a socket)."""

    def __init__(self, data: bytes, seed: int = 0) -> None:
        self.data, self.pos, self.rng = data, 0, random.Random(seed)

    def __call__(self, n: int) -> bytes:
        take = min(n, self.rng.randint(1, 700))
        out = self.data[self.pos : self.pos + take]
        self.pos += len(out)
        return out


def test_parse_icy_metadata_fields_and_quotes() -> None:
    raw = b"StreamTitle='Band - It's a ';Song';StreamUrl='http://x/y';\x00\x00\x00"
    assert parse_icy_metadata(raw) == {"StreamTitle": "Band - It's a ';Song", "StreamUrl": "http://x/y"}
    assert parse_icy_metadata(b"StreamTitle='';" + b"\x00" * 17) == {"StreamTitle": ""}
    assert parse_icy_metadata("Caf\u00e9".encode("latin-1").join([b"StreamTitle='", b"';"])) == {
        "StreamTitle": "Caf\u00e9"
    }
    assert parse_icy_metadata(b"\x00" * 32) == {}
    assert parse_icy_metadata(b"not metadata at all") == {}
    with pytest.raises(TypeError, match="bytes"):
        parse_icy_metadata("StreamTitle='x';")  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_icy_reader_strips_metadata_across_random_reads(seed: int) -> None:
    rng = np.random.default_rng(seed)
    audio = rng.integers(0, 256, 50_000, dtype=np.uint8).tobytes()
    titles = ["one", "", "two ';x", "three"]
    seen: list[str] = []
    reader = IcyReader(
        _Chunked(_icy_stream(audio, 1000, titles), seed),
        1000,
        on_metadata=lambda f: seen.append(f["StreamTitle"]),
    )
    got = bytearray()
    for _ in range(100_000):
        data = reader.read(int(rng.integers(1, 3000)))
        if not data:
            break
        got += data
    assert bytes(got) == audio
    assert reader.eof and reader.audio_bytes == len(audio)
    blocks = len(audio) // 1000 - (len(audio) % 1000 == 0)
    assert reader.metadata_blocks == sum(1 for k in range(blocks) if titles[k % 4])
    assert seen == [titles[k % 4] for k in range(blocks) if titles[k % 4]]


def test_icy_reader_rewind_replays_audio_and_check_aborts() -> None:
    audio = bytes(range(256)) * 40
    reader = IcyReader(_Chunked(_icy_stream(audio, 512, ["t"])), 512)
    first = reader.read(3000) + reader.read(3000)
    assert reader.rewind()
    again = b"".join(reader.read(600) for _ in range(20))
    assert again.startswith(first) and again == audio[: len(again)]
    boom = IcyReader(lambda n: b"x" * n, 0, check=lambda: (_ for _ in ()).throw(TimeoutError("stop")))
    with pytest.raises(TimeoutError):
        boom.read(10)
    with pytest.raises(ValueError, match="metaint"):
        IcyReader(lambda n: b"", -1)


# ---------------------------------------------------------------------------------------------- helpers
def test_backoff_grows_is_capped_and_jittered() -> None:
    b = Backoff(initial=0.5, factor=2.0, maximum=4.0, jitter=0.5)
    rng = random.Random(7)
    delays = [[b.delay(k, rng) for _ in range(200)] for k in range(8)]
    for k, ds in enumerate(delays):
        base = min(4.0, 0.5 * 2**k)
        assert min(ds) >= 0.5 * base - 1e-12 and max(ds) <= base + 1e-12
        assert max(ds) - min(ds) > 0.2 * base  # really jittered
    assert max(max(ds) for ds in delays) <= 4.0
    assert Backoff(jitter=0.0).delay(100) == 4.0
    for bad in (
        {"initial": 0},
        {"initial": 5, "maximum": 4},
        {"factor": 0.5},
        {"jitter": 1.0},
        {"maximum": float("nan")},
    ):
        with pytest.raises(ConfigError):
            Backoff(**bad)
    with pytest.raises(ValueError, match="attempt"):
        b.delay(-1)


def test_safe_text_escapes_terminal_controls_and_keeps_markup_literal() -> None:
    out = safe_text(ESCAPE_TITLE, limit=500)
    assert "\x1b" not in out and "\x9b" not in out and "\u202e" not in out
    assert out.startswith("\\x1b[2J\\x1b[31mRED") and "\\x9b31m" in out and "\\u202eevil" in out
    assert "[bold magenta]markup[/bold magenta]" in out
    assert safe_text("a\r\nb\x07") == "a\\x0d\\x0ab\\x07"
    assert safe_text("x" * 50, limit=10) == "x" * 9 + "…"
    assert safe_text("Ünïcödé – ok") == "Ünïcödé – ok"


def test_display_url_hides_credentials_and_bad_urls_fail_fast() -> None:
    assert display_url("http://user:secret@host:8000/live?x=1") == "http://host:8000/live?x=1"
    assert display_url("https://host/a") == "https://host/a"
    for bad in ("ftp://host/x", "http:///nohost", "host:8000/x", "http://host:99999/x"):
        with pytest.raises(ConfigError):
            RadioSource(bad, RATE)
    with pytest.raises(ConfigError, match="stall"):
        RadioSource("http://127.0.0.1:1/x", RATE, stall_seconds=0)


# ---------------------------------------------------------------------------------------------- real HTTP
@pytest.fixture(scope="module")
def clip_mp3(tmp_path_factory: pytest.TempPathFactory):
    require_tools("ffmpeg")
    clip = require_shared("gtzan", "hiphop", "hiphop.00001.flac")
    return encode(clip, tmp_path_factory.mktemp("radio") / "clip.mp3", "mp3", seconds=8)


@pytest.fixture(scope="module")
def bad_server(clip_mp3):
    server = BadServer(clip_mp3, TITLES, metaint=8192, pace=4.0, max_seconds=20.0).start()
    yield server
    server.stop()


def _drain(source: RadioSource, seconds: float, until=None, order: list | None = None):
    """Blocks and events read within ``seconds`` (``order`` receives every item in stream order)."""
    blocks: list[AudioBlock] = []
    events: list[StreamEvent] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for item in source.read_items():
            (blocks if isinstance(item, AudioBlock) else events).append(item)
            if order is not None:
                order.append(item)
        if until is not None and until(blocks, events):
            break
        time.sleep(0.05)
    return blocks, events


def test_icy_stream_titles_and_spliced_garbage(
    bad_server: BadServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="streamgenre")
    source = RadioSource(bad_server.url("icy"), RATE, name="icy-test", stall_seconds=3)
    source.start()
    order: list = []
    try:
        blocks, events = _drain(source, 15, lambda b, e: any(x.kind == "disconnected" for x in e), order)
    finally:
        source.close()
    first_block = next(i for i, item in enumerate(order) if isinstance(item, AudioBlock))
    connected = [
        i for i, item in enumerate(order) if isinstance(item, StreamEvent) and item.kind == "connected"
    ]
    assert connected[0] < first_block and "mp3" in order[connected[0]].detail  # the event precedes its audio
    audio = np.concatenate([b.samples for b in blocks])
    assert audio.dtype == np.float32 and np.all(np.isfinite(audio)) and np.abs(audio).max() > 0.05
    assert len(audio) / RATE > 7.0  # the whole 8 s clip despite the ID3 tag and garbage in the middle
    assert all(len(b.samples) == RATE // 10 for b in blocks)
    titles = [e.detail for e in events if e.kind == "title"]
    assert titles[:3] == TITLES  # raw titles in the events, in order
    assert source.decode_errors >= 1  # the spliced garbage was skipped and counted
    text = caplog.text
    assert "\x1b" not in text and "\x9b" not in text and "\u202e" not in text
    assert "\\x1b[31mRED" in text and "[bold magenta]markup[/bold magenta]" in text
    assert "skipped a bad packet" in text


@pytest.mark.parametrize(
    ("path", "message", "kind"),
    [
        ("notfound", "HTTP 404", "http"),
        ("html", "not an audio stream (Content-Type text/html)", "not_audio"),
        ("hugeheader", "bad HTTP response", "bad_header"),
        ("garbage", "no audio decoded within 1.5 s of connecting", "stall"),
    ],
)
def test_bad_servers_are_logged_and_retried(
    bad_server: BadServer, caplog: pytest.LogCaptureFixture, path: str, message: str, kind: str
) -> None:
    caplog.set_level(logging.INFO, logger="streamgenre")
    source = RadioSource(
        bad_server.url(path),
        RATE,
        name=f"bad-{path}",
        stall_seconds=1.5,
        connect_timeout=2.0,
        backoff=Backoff(initial=0.1, maximum=0.3),
    )
    source.start()
    try:
        assert wait_until(lambda: source.connections >= 2, 12), "no retry after the failure"
        blocks, _ = _drain(source, 0.2)
    finally:
        t0 = time.monotonic()
        source.close(timeout=1.0)
        closed_in = time.monotonic() - t0
    assert not blocks
    assert message in (source.last_error or "")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "streamgenre.radio"]
    assert warnings and message in warnings[0].getMessage() and "reconnecting in" in warnings[0].getMessage()
    assert len(warnings[0].getMessage()) < 400  # one clear line, not a dump
    assert (source.stalls >= 1) == (kind == "stall")
    assert closed_in < 2.0
    assert source.state == "closed"


def test_shoutcast_status_line_and_redirect(bad_server: BadServer) -> None:
    for path in ("shoutcast", "redirect"):
        source = RadioSource(bad_server.url(path), RATE, stall_seconds=3)
        source.start()
        try:
            blocks, events = _drain(source, 10, until=lambda b, e: len(b) >= 20)
        finally:
            source.close()
        assert len(blocks) >= 20, f"{path}: no audio"
        assert any(e.kind == "title" and e.detail == TITLES[0] for e in events)


def test_plain_file_over_http_ends_the_source_and_loses_nothing(bad_server: BadServer, clip_mp3) -> None:
    # A 1 s queue for an 8 s file read slowly: the download waits for the reader (no drops, no stall).
    source = RadioSource(bad_server.url("file.mp3"), RATE, max_buffer_seconds=1.0, stall_seconds=1.0)
    source.start()
    chunks = []
    try:
        for _ in range(1000):
            item = source.read_block(5.0)
            if item is None:
                break
            chunks.append(item[0])
            if len(chunks) % 10 == 0:
                time.sleep(0.15)  # slower than the download
        assert source.exhausted and source.read_block(0.1) is None and source.state == "ended"
    finally:
        source.close()
    seconds = sum(len(c) for c in chunks) / RATE
    assert 7.8 < seconds < 8.3
    assert source.overflows == 0 and source.stalls == 0
    assert source.connections == 1 and source.reconnects == 0
    info = source.source_info()
    assert (info.kind, info.sample_rate, info.channels) == ("url", RATE, 1)


def test_refused_connection_backs_off_and_close_is_prompt(caplog: pytest.LogCaptureFixture) -> None:
    from icecast import free_port

    caplog.set_level(logging.DEBUG, logger="streamgenre")
    source = RadioSource(
        f"http://127.0.0.1:{free_port()}/none", RATE, backoff=Backoff(initial=0.05, maximum=0.2)
    )
    source.start()
    assert wait_until(lambda: source.connections >= 4, 10)
    health = source.health()
    assert health.state in ("waiting", "connecting") and health.last_error == "connection refused"
    t0 = time.monotonic()
    source.close(timeout=1.0)
    assert time.monotonic() - t0 < 1.5
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, "a repeated failure is logged once, then at debug level"
