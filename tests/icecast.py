"""Test helpers: a real Icecast server, ffmpeg source clients, and a misbehaving HTTP server.

Everything binds 127.0.0.1 on free ports; every wait is bounded. Import from tests (this is not
a conftest: ``from icecast import IcecastServer, FfmpegSource, BadServer, require_tools``).
"""

from __future__ import annotations

import contextlib
import grp
import http.client
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

SOURCE_PASSWORD = "sourcepw"
ADMIN_PASSWORD = "adminpw"


def require_tools(*names: str) -> None:
    """Skip (or fail under STREAMGENRE_REQUIRE_DATA=1) when a program is not installed."""
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        reason = f"needs {', '.join(missing)} (apt-get install icecast2 ffmpeg; ./setup.sh --dev)"
        if os.environ.get("STREAMGENRE_REQUIRE_DATA") == "1":
            pytest.fail(reason + "; STREAMGENRE_REQUIRE_DATA=1 makes this a failure", pytrace=False)
        pytest.skip(reason)


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate, timeout: float, interval: float = 0.1) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds passed; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def _status(port: int, path: str, timeout: float = 1.0, auth: str | None = None) -> int | None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Authorization": f"Basic {auth}"} if auth else {}
        conn.request("GET", path, headers=headers)
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


_CONFIG = """<icecast>
  <limits><clients>64</clients><sources>16</sources><queue-size>524288</queue-size>
    <client-timeout>30</client-timeout><header-timeout>5</header-timeout><source-timeout>30</source-timeout>
    <burst-on-connect>1</burst-on-connect><burst-size>32768</burst-size></limits>
  <authentication><source-password>{source}</source-password>
    <admin-user>admin</admin-user><admin-password>{admin}</admin-password></authentication>
  <hostname>127.0.0.1</hostname>
  <listen-socket><port>{port}</port><bind-address>127.0.0.1</bind-address></listen-socket>
  <fileserve>1</fileserve>
  <paths><basedir>{base}</basedir><logdir>{logs}</logdir><pidfile>{logs}/icecast.pid</pidfile>
    <webroot>{web}</webroot><adminroot>{admin_root}</adminroot></paths>
  <logging><accesslog>access.log</accesslog><errorlog>error.log</errorlog><loglevel>3</loglevel></logging>
  <security><chroot>0</chroot>{owner}</security>
</icecast>
"""


class IcecastServer:
    """``icecast2 -c CONFIG`` on 127.0.0.1 with its config in ``workdir`` and logs in a temp folder.

    As root, icecast refuses to run unless it drops privileges: the config then names
    ``<changeowner>`` (the ``icecast2`` user when it exists, else ``nobody``), and the log folder
    is made writable for it.
    """

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._logs = Path(tempfile.mkdtemp(prefix="streamgenre-icecast-"))
        owner = ""
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("icecast2")
            except KeyError:
                user = pwd.getpwnam("nobody")
            group = grp.getgrgid(user.pw_gid).gr_name
            owner = f"<changeowner><user>{user.pw_name}</user><group>{group}</group></changeowner>"
            os.chmod(self._logs, 0o777)
        share = Path("/usr/share/icecast2")
        web = share / "web" if (share / "web").is_dir() else self._logs
        admin_root = share / "admin" if (share / "admin").is_dir() else self._logs
        self.config = self.workdir / f"icecast-{self.port}.xml"
        self.config.write_text(
            _CONFIG.format(
                source=SOURCE_PASSWORD,
                admin=ADMIN_PASSWORD,
                port=self.port,
                base=share if share.is_dir() else self._logs,
                logs=self._logs,
                web=web,
                admin_root=admin_root,
                owner=owner,
            )
        )
        self.process: subprocess.Popen[bytes] | None = None
        self._paused = False

    def start(self, timeout: float = 10.0) -> IcecastServer:
        """Start icecast and wait until it answers HTTP (fails the test after ``timeout`` s)."""
        self.process = subprocess.Popen(
            ["icecast2", "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        if not wait_until(
            lambda: _status(self.port, "/") is not None or self.process.poll() is not None, timeout
        ):
            self.stop()
            pytest.fail(f"icecast2 did not answer on port {self.port} within {timeout:g} s")
        if self.process.poll() is not None:
            log = (
                (self._logs / "error.log").read_text(errors="replace")[-2000:]
                if (self._logs / "error.log").exists()
                else ""
            )
            pytest.fail(f"icecast2 exited with {self.process.returncode}: {log}")
        return self

    def url(self, mount: str) -> str:
        """The listener URL of ``mount``."""
        return f"http://127.0.0.1:{self.port}/{mount.lstrip('/')}"

    def source_url(self, mount: str) -> str:
        """The ``icecast://`` URL ffmpeg publishes to."""
        return f"icecast://source:{SOURCE_PASSWORD}@127.0.0.1:{self.port}/{mount.lstrip('/')}"

    def mount_ready(self, mount: str) -> bool:
        """The mount has a source (a listener request is answered 200)."""
        return _status(self.port, "/" + mount.lstrip("/"), timeout=1.0) == 200

    def set_title(self, mount: str, title: str) -> bool:
        """Set the mount's StreamTitle through the admin interface (MP3/AAC mounts)."""
        import base64

        query = urllib.parse.urlencode({"mount": "/" + mount.lstrip("/"), "mode": "updinfo", "song": title})
        auth = base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
        return _status(self.port, f"/admin/metadata?{query}", timeout=2.0, auth=auth) == 200

    def kill(self) -> None:
        """SIGKILL (a crash): listeners and sources see their connections reset."""
        if self.process is not None and self.process.poll() is None:
            if self._paused:
                self.resume()
            self.process.kill()
            self.process.wait(5)

    def pause(self) -> None:
        """SIGSTOP: connections stay open but nothing moves (a stall)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)
        self._paused = False

    def stop(self) -> None:
        """Terminate (bounded) and remove the log folder."""
        if self.process is not None and self.process.poll() is None:
            if self._paused:
                self.resume()
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self._logs, ignore_errors=True)


CODECS = {
    "mp3": (["-c:a", "libmp3lame", "-b:a", "128k", "-f", "mp3"], "audio/mpeg"),
    "aac": (["-c:a", "aac", "-b:a", "96k", "-f", "adts"], "audio/aac"),
    "vorbis": (["-c:a", "libvorbis", "-q:a", "4", "-f", "ogg"], "application/ogg"),
    "opus": (["-c:a", "libopus", "-b:a", "64k", "-f", "ogg"], "application/ogg"),
}


class FfmpegSource:
    """``ffmpeg -re -i CLIP … icecast://…``: a real-time source client (killed on :meth:`stop`)."""

    def __init__(
        self,
        server: IcecastServer,
        mount: str,
        clip: Path,
        codec: str = "mp3",
        seconds: float | None = None,
        loop: bool = False,
        name: str = "streamgenre test",
        metadata: dict[str, str] | None = None,
    ) -> None:
        args, content_type = CODECS[codec]
        cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re"]
        if loop:
            cmd += ["-stream_loop", "-1"]
        cmd += ["-i", str(clip)]
        if seconds is not None:
            cmd += ["-t", f"{seconds:g}"]
        cmd += ["-vn", *_metadata_args(metadata), *args, "-content_type", content_type, "-ice_name", name,
                server.source_url(mount)]
        self.cmd = cmd
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> FfmpegSource:
        """Start streaming."""
        self.process = subprocess.Popen(
            self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
        )
        return self

    def stop(self) -> None:
        """Kill and reap (bounded)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(5)


def _metadata_args(metadata: dict[str, str] | None) -> list[str]:
    return [arg for key, value in (metadata or {}).items() for arg in ("-metadata", f"{key}={value}")]


def encode(clip: Path, out: Path, codec: str = "mp3", seconds: float | None = None,
           metadata: dict[str, str] | None = None, start: float = 0.0) -> Path:
    """Encode (part of) a clip to a file with ffmpeg (bounded), with optional tags (title, artist)."""
    args, _ = CODECS[codec]
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-ss", f"{start:g}", "-i", str(clip)]
    if seconds is not None:
        cmd += ["-t", f"{seconds:g}"]
    subprocess.run([*cmd, *_metadata_args(metadata), *args, str(out)], check=True, timeout=60)
    return out


def concat_wav(clips: list[Path], out: Path, seconds: float) -> Path:
    """The first ``seconds`` of each clip, one after the other, as a 22050 Hz mono WAV."""
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]
    for clip in clips:
        cmd += ["-t", f"{seconds:g}", "-i", str(clip)]
    streams = "".join(f"[{i}:a]" for i in range(len(clips)))
    cmd += [
        "-filter_complex",
        f"{streams}concat=n={len(clips)}:v=0:a=1[a]",
        "-map",
        "[a]",
        "-ar",
        "22050",
        "-ac",
        "1",
        str(out),
    ]
    subprocess.run(cmd, check=True, timeout=60)
    return out


# ---------------------------------------------------------------------------------------------- bad server
class BadServer:
    """A local HTTP server that misbehaves on purpose (each path one way).

    ``/notfound`` 404 · ``/html`` a web page · ``/garbage`` audio/mpeg of random bytes ·
    ``/hugeheader`` a 100 kB icy-name header · ``/icy`` an MP3 file with ICY metadata whose titles
    come from :attr:`titles` (one per metadata block, in turn), an ID3 tag and garbage spliced in
    the middle · ``/shoutcast`` the same with an ``ICY 200 OK`` status line · ``/file.mp3`` the
    MP3 file with a Content-Length (a finite stream) · ``/redirect`` -> ``/icy``.
    Streams are paced at ``pace`` times real time and end after the file (or ``max_seconds``).
    """

    def __init__(
        self,
        mp3: Path,
        titles: list[str],
        metaint: int = 8192,
        pace: float = 2.0,
        max_seconds: float = 60.0,
        bitrate: int = 128_000,
    ) -> None:
        self.mp3 = Path(mp3).read_bytes()
        self.titles = titles
        self.metaint = metaint
        self.bytes_per_second = pace * bitrate / 8
        self.max_seconds = max_seconds
        self.stopping = threading.Event()
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                server.requests.append(self.path)
                try:
                    server.handle(self)
                except (TimeoutError, BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )

    def start(self) -> BadServer:
        self._thread.start()
        return self

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    # ------------------------------------------------------------------ routes
    def handle(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?")[0]
        if path == "/notfound":
            h.send_error(404, "Not Found")
        elif path == "/html":
            body = b"<html><body><h1>Welcome</h1><p>This is a web page, not a stream.</p></body></html>"
            h.send_response(200)
            h.send_header("Content-Type", "text/html; charset=utf-8")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
        elif path == "/garbage":
            h.send_response(200)
            h.send_header("Content-Type", "audio/mpeg")
            h.end_headers()
            self._pace(h, lambda n: os.urandom(n))
        elif path == "/hugeheader":
            h.send_response(200)
            h.send_header("Content-Type", "audio/mpeg")
            h.send_header("icy-name", "x" * 100_000)
            h.end_headers()
            self._pace(h, lambda n: os.urandom(n), limit=1.0)
        elif path == "/redirect":
            h.send_response(302)
            h.send_header("Location", "/icy")
            h.end_headers()
        elif path == "/file.mp3":
            h.send_response(200)
            h.send_header("Content-Type", "audio/mpeg")
            h.send_header("Content-Length", str(len(self.mp3)))
            h.end_headers()
            h.wfile.write(self.mp3)
        elif path in ("/icy", "/shoutcast"):
            self._icy(h, shoutcast=path == "/shoutcast")
        else:
            h.send_error(404)

    def _spliced(self) -> bytes:
        """The MP3 with an ID3v2 tag and garbage bytes in the middle (what a looping source sends)."""
        middle = len(self.mp3) // 2
        id3 = (
            b"ID3\x03\x00\x00\x00\x00\x08\x00" + b"TIT2\x00\x00\x00\x0a\x00\x00\x00loop tag!" + b"\x00" * 1000
        )
        garbage = bytes((i * 37 + 11) % 256 for i in range(3000))
        return self.mp3[:middle] + id3 + garbage + self.mp3[middle:]

    def _icy(self, h: BaseHTTPRequestHandler, shoutcast: bool) -> None:
        wants_meta = h.headers.get("Icy-MetaData") == "1"
        if shoutcast:
            h.wfile.write(b"ICY 200 OK\r\nicy-name:shoutcast test\r\ncontent-type:audio/mpeg\r\n")
            if wants_meta:
                h.wfile.write(f"icy-metaint:{self.metaint}\r\n".encode())
            h.wfile.write(b"\r\n")
        else:
            h.send_response(200)
            h.send_header("Content-Type", "audio/mpeg")
            h.send_header("icy-name", "bad server test")
            if wants_meta:
                h.send_header("icy-metaint", str(self.metaint))
            h.end_headers()
        data = self._spliced()
        out = bytearray()
        block = 0
        for pos in range(0, len(data), self.metaint):
            out += data[pos : pos + self.metaint]
            if wants_meta and pos + self.metaint < len(data):
                title = self.titles[block % len(self.titles)] if self.titles else ""
                raw = f"StreamTitle='{title}';".encode()
                raw += b"\x00" * (-len(raw) % 16)
                out += bytes([len(raw) // 16]) + raw
                block += 1
        self._pace(h, None, payload=bytes(out))

    def _pace(
        self, h: BaseHTTPRequestHandler, make, payload: bytes | None = None, limit: float | None = None
    ) -> None:
        """Send ``payload`` (or generated bytes) at the configured rate, bounded in time."""
        start = time.monotonic()
        sent = 0
        chunk = 4096
        limit = self.max_seconds if limit is None else limit
        while not self.stopping.is_set() and time.monotonic() - start < limit:
            if payload is not None:
                if sent >= len(payload):
                    return
                data = payload[sent : sent + chunk]
            else:
                data = make(chunk)
            h.wfile.write(data)
            h.wfile.flush()
            sent += len(data)
            ahead = sent / self.bytes_per_second - (time.monotonic() - start)
            if ahead > 0:
                self.stopping.wait(min(ahead, 0.5))
