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
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO_ROOT

from bench.pulse import (
    PulseUnavailableError,
    cli,
    default_sigint,
    null_sink,
    private_env,
    run,
    start_daemon,
    stop_daemon,
)

pytestmark = pytest.mark.audio

SINK = "streamgenre_test_sink"
CLIP = ("jazz", "jazz.00001.flac")  # 15-20 s of real music
LIVE_SECONDS = 10.0


def _unavailable(reason: str) -> None:
    if os.environ.get("STREAMGENRE_REQUIRE_DATA") == "1":
        pytest.fail(f"{reason}; STREAMGENRE_REQUIRE_DATA=1 makes this a failure", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pulse_env() -> Iterator[dict[str, str]]:
    """Environment for subprocesses that play into / capture from a PulseAudio null sink."""
    try:
        with null_sink(SINK) as (env, _):
            yield env
    except PulseUnavailableError as exc:
        _unavailable(str(exc))


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
    return subprocess.Popen(cmd, env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)  # the Ctrl-C test needs SIGINT handled


def test_devices_lists_a_default_input(pulse_env: dict[str, str]) -> None:
    listed = run(cli("devices", "--json"), pulse_env, timeout=30)
    records = [json.loads(line) for line in listed.stdout.splitlines()]
    assert sum(r["default"] for r in records) == 1
    assert all(r["max_input_channels"] > 0 and r["default_samplerate"] > 0 for r in records)


def test_live_capture_of_played_clip_matches_file_mode(pulse_env: dict[str, str], gtzan_dir: Path) -> None:
    clip = gtzan_dir.joinpath(*CLIP)
    live = _popen(cli("live", "--device", "default", "--duration", str(LIVE_SECONDS), "--no-ui", "--json"), pulse_env)
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

    filed = run(cli("file", str(clip), "--json", "--duration", str(LIVE_SECONDS - 1)), pulse_env, timeout=120)
    assert filed.returncode == 0, filed.stderr
    file_records = [json.loads(line) for line in filed.stdout.splitlines()]
    assert _dominant(music) == _dominant(file_records) is not None


def test_ctrl_c_exits_cleanly_with_summary(pulse_env: dict[str, str]) -> None:
    live = _popen(cli("live", "--device", "default", "--no-ui"), pulse_env)
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
    env = private_env(runtime, "lost_sink")
    pid = start_daemon(runtime, "lost_sink", env)
    live = _popen(cli("live", "--device", "default", "--duration", "60", "--no-ui"), env)
    try:
        reader = _Lines(live)
        reader.first(timeout=60.0)
        stop_daemon(pid)  # the audio server (and with it the device) goes away
        rc = live.wait(timeout=20)
        stderr = live.stderr.read() if live.stderr else ""
    finally:
        stop_daemon(pid)
        if live.poll() is None:
            live.kill()
            live.wait(timeout=5)
    assert rc == 2, stderr
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("streamgenre: error: input device") and (
        "stopped delivering audio" in last or "delivered no audio" in last
    ), stderr
