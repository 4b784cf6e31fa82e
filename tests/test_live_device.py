"""``streamgenre live`` against a REAL audio device: a PulseAudio null sink and its monitor source.

A clip from ../shared/data/gtzan is played into the null sink with ``paplay`` while ``streamgenre
live --device default`` (PortAudio → ALSA ``pulse`` plugin → PulseAudio) captures the sink's
monitor in a subprocess. Skipped when PulseAudio, paplay, the ALSA pulse plugin or PortAudio are
missing (a failure under ``STREAMGENRE_REQUIRE_DATA=1``, as in CI).

The fixture uses a running PulseAudio server when there is one (adding its own null sink and
pointing only the test's processes at it with ``PULSE_SINK``/``PULSE_SOURCE``), otherwise it starts
a private daemon with its own ``PULSE_RUNTIME_PATH`` and kills it afterwards.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO_ROOT

pytestmark = pytest.mark.audio

SINK = "streamgenre_test_sink"
CLIP = ("jazz", "jazz.00001.flac")  # 15-20 s of real music
LIVE_SECONDS = 10.0


def _unavailable(reason: str) -> None:
    if os.environ.get("STREAMGENRE_REQUIRE_DATA") == "1":
        pytest.fail(f"{reason}; STREAMGENRE_REQUIRE_DATA=1 makes this a failure", pytrace=False)
    pytest.skip(reason)


def _run(cmd: list[str], env: dict[str, str], timeout: float = 15.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def _start_daemon(runtime: Path, sink: str, env: dict[str, str]) -> int:
    """Start a private PulseAudio daemon with one null sink; return its PID."""
    runtime.mkdir(parents=True, exist_ok=True)
    cmd = [
        "pulseaudio",
        "--daemonize=yes",
        "-n",
        "--exit-idle-time=-1",
        "--disable-shm=yes",
        "--load=module-native-protocol-unix",
        f"--load=module-null-sink sink_name={sink} rate=48000 channels=2",
    ]
    proc = _run(cmd, env)
    pid_file = runtime / "pid"
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        if pid_file.exists() and _run(["pactl", "info"], env).returncode == 0:
            return int(pid_file.read_text().split()[0])
        time.sleep(0.1)
    pytest.fail(f"could not start PulseAudio: {proc.stderr.strip()[-300:]}", pytrace=False)


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, exited but not yet reaped by its parent, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _stop_daemon(pid: int) -> None:
    if not _alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)


def _private_env(runtime: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PULSE_RUNTIME_PATH=str(runtime),
        PULSE_SERVER=f"unix:{runtime}/native",
        PULSE_SINK=SINK,
        PULSE_SOURCE=f"{SINK}.monitor",
        PYTHONUNBUFFERED="1",
    )
    return env


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "streamgenre", *args]


@pytest.fixture(scope="session")
def pulse_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Environment for subprocesses that play into / capture from a PulseAudio null sink."""
    missing = [tool for tool in ("pulseaudio", "pactl", "paplay") if shutil.which(tool) is None]
    if missing:
        _unavailable(
            f"PulseAudio tools not installed ({', '.join(missing)}): "
            "apt-get install pulseaudio pulseaudio-utils libasound2-plugins"
        )
    ambient = dict(os.environ) | {"PULSE_SINK": SINK, "PULSE_SOURCE": f"{SINK}.monitor", "PYTHONUNBUFFERED": "1"}
    module_id = None
    daemon_pid = None
    if _run(["pactl", "info"], ambient).returncode == 0:  # a server is running: add our own sink to it
        loaded = _run(
            ["pactl", "load-module", "module-null-sink", f"sink_name={SINK}", "rate=48000", "channels=2"], ambient
        )
        if loaded.returncode != 0:
            pytest.fail(f"pactl load-module failed: {loaded.stderr.strip()}", pytrace=False)
        module_id = loaded.stdout.strip()
        env = ambient
    else:
        runtime = tmp_path_factory.mktemp("pulse")
        env = _private_env(runtime)
        daemon_pid = _start_daemon(runtime, SINK, env)
        _run(["pactl", "set-default-sink", SINK], env)
        _run(["pactl", "set-default-source", f"{SINK}.monitor"], env)
    try:
        listed = _run(_cli("devices", "--json"), env, timeout=30)
        if listed.returncode != 0:
            _unavailable(f"no PortAudio: {listed.stderr.strip()}")
        names = [json.loads(line)["name"] for line in listed.stdout.splitlines()]
        if "pulse" not in names:
            _unavailable(f"ALSA has no 'pulse' device (install libasound2-plugins); inputs: {names}")
        yield env
    finally:
        if module_id:
            _run(["pactl", "unload-module", module_id], ambient)
        if daemon_pid is not None:
            _stop_daemon(daemon_pid)


class _Lines:
    """Read a subprocess's stdout on a thread so the test can wait with timeouts."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(proc,), daemon=True)
        self._thread.start()

    def _pump(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.put(line)

    def first(self, timeout: float) -> str:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no output within {timeout} s", pytrace=False)

    def rest(self) -> list[str]:
        self._thread.join(5.0)
        out = []
        while not self.lines.empty():
            out.append(self.lines.get_nowait())
        return out


def _dominant(records: list[dict]) -> str | None:
    counts = collections.Counter(r["genre"] for r in records if r["genre"] is not None and r["state"] != "silence")
    return counts.most_common(1)[0][0] if counts else None


def _popen(cmd: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(cmd, env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_devices_lists_a_default_input(pulse_env: dict[str, str]) -> None:
    listed = _run(_cli("devices", "--json"), pulse_env, timeout=30)
    records = [json.loads(line) for line in listed.stdout.splitlines()]
    assert sum(r["default"] for r in records) == 1
    assert all(r["max_input_channels"] > 0 and r["default_samplerate"] > 0 for r in records)


def test_live_capture_of_played_clip_matches_file_mode(pulse_env: dict[str, str], gtzan_dir: Path) -> None:
    clip = gtzan_dir.joinpath(*CLIP)
    live = _popen(_cli("live", "--device", "default", "--duration", str(LIVE_SECONDS), "--no-ui", "--json"), pulse_env)
    player = None
    try:
        reader = _Lines(live)
        first = json.loads(reader.first(timeout=60.0))  # stream open and running: start the music
        player = subprocess.Popen(
            ["paplay", f"--device={SINK}", str(clip)], env=pulse_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        rc = live.wait(timeout=LIVE_SECONDS + 30)
        records = [first] + [json.loads(line) for line in reader.rest()]
        stderr = live.stderr.read() if live.stderr else ""
    finally:
        for proc in (player, live):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=5)
    assert rc == 0, stderr
    assert "Traceback" not in stderr and "flips/min" in stderr  # the one-line summary
    assert first["source"]["kind"] == "device" and first["provisional"] is True
    assert first["t"] <= 1.0
    music = [r for r in records if r["state"] != "silence"]
    assert len(music) >= 12, f"too little music captured: {[r['state'] for r in records]}"
    assert max(r["level_dbfs"] for r in music) > -40.0
    last = records[-1]
    assert last["overflows"] == 0 and last["input_overflows"] == 0
    assert all(r["latency_ms"] is not None and r["latency_ms"] > 0 for r in records)

    filed = _run(_cli("file", str(clip), "--json", "--duration", str(LIVE_SECONDS - 1)), pulse_env, timeout=120)
    assert filed.returncode == 0, filed.stderr
    file_records = [json.loads(line) for line in filed.stdout.splitlines()]
    assert _dominant(music) == _dominant(file_records) is not None


def test_ctrl_c_exits_cleanly_with_summary(pulse_env: dict[str, str]) -> None:
    live = _popen(_cli("live", "--device", "default", "--no-ui"), pulse_env)
    try:
        reader = _Lines(live)
        reader.first(timeout=60.0)
        live.send_signal(signal.SIGINT)
        rc = live.wait(timeout=15)
        stderr = live.stderr.read() if live.stderr else ""
    finally:
        if live.poll() is None:
            live.kill()
            live.wait(timeout=5)
    assert rc == 0, stderr
    assert "Traceback" not in stderr
    summary = [line for line in stderr.splitlines() if line.startswith("streamgenre:")]
    assert len(summary) == 1 and "flips/min" in summary[0] and "latency p50" in summary[0]


def test_device_lost_mid_run_is_one_line_error(pulse_env: dict[str, str], tmp_path: Path) -> None:
    runtime = tmp_path / "pulse-lost"
    env = _private_env(runtime) | {"PULSE_SINK": "lost_sink", "PULSE_SOURCE": "lost_sink.monitor"}
    pid = _start_daemon(runtime, "lost_sink", env)
    live = _popen(_cli("live", "--device", "default", "--duration", "60", "--no-ui"), env)
    try:
        reader = _Lines(live)
        reader.first(timeout=60.0)
        _stop_daemon(pid)  # the audio server (and with it the device) goes away
        rc = live.wait(timeout=20)
        stderr = live.stderr.read() if live.stderr else ""
    finally:
        _stop_daemon(pid)
        if live.poll() is None:
            live.kill()
            live.wait(timeout=5)
    assert rc == 2, stderr
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("streamgenre: error: input device") and (
        "stopped delivering audio" in last or "delivered no audio" in last
    ), stderr
