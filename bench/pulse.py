"""A PulseAudio null sink to play into and capture from: a real audio device for tests and benchmarks.

:func:`null_sink` uses a running PulseAudio server when there is one (it adds its own null sink and
points only the caller's subprocesses at it with ``PULSE_SINK``/``PULSE_SOURCE``); otherwise it starts a
private daemon with its own ``PULSE_RUNTIME_PATH`` and stops it afterwards. Either way it checks that
PortAudio sees the ALSA ``pulse`` device that ``streamgenre live --device default`` will capture from.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench.common import REPO_ROOT

START_TIMEOUT_S = 10.0


class PulseUnavailableError(RuntimeError):
    """No usable PulseAudio/PortAudio setup here (the message says what is missing)."""


def run(cmd: list[str], env: dict[str, str], timeout: float = 15.0) -> subprocess.CompletedProcess[str]:
    """``cmd`` to completion with captured text output (never raises on a non-zero exit)."""
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False, cwd=REPO_ROOT)


def cli(*args: str) -> list[str]:
    """The ``streamgenre`` command line of this interpreter."""
    return [sys.executable, "-m", "streamgenre", *args]


def default_sigint() -> None:
    """``preexec_fn`` for a child that is to be stopped with Ctrl-C (SIGINT): undo an inherited SIG_IGN
    (a shell starts background jobs with SIGINT ignored, and Python then installs no handler for it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, exited but not yet reaped by its parent, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def start_daemon(runtime: Path, sink: str, env: dict[str, str]) -> int:
    """Start a private PulseAudio daemon with one null sink; return its PID."""
    runtime.mkdir(parents=True, exist_ok=True)
    cmd = ["pulseaudio", "--daemonize=yes", "-n", "--exit-idle-time=-1", "--disable-shm=yes",
           "--load=module-native-protocol-unix", f"--load=module-null-sink sink_name={sink} rate=48000 channels=2"]
    proc = run(cmd, env)
    pid_file = runtime / "pid"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if pid_file.exists() and run(["pactl", "info"], env).returncode == 0:
            return int(pid_file.read_text().split()[0])
        time.sleep(0.1)
    raise PulseUnavailableError(f"could not start PulseAudio: {proc.stderr.strip()[-300:]}")


def stop_daemon(pid: int) -> None:
    """SIGTERM a daemon and wait (up to 5 s) until it is gone."""
    if not alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.05)


def private_env(runtime: Path, sink: str) -> dict[str, str]:
    """This process's environment pointed at a private daemon in ``runtime`` and its null sink ``sink``."""
    return dict(os.environ) | {"PULSE_RUNTIME_PATH": str(runtime), "PULSE_SERVER": f"unix:{runtime}/native",
                               "PULSE_SINK": sink, "PULSE_SOURCE": f"{sink}.monitor", "PYTHONUNBUFFERED": "1"}


@contextlib.contextmanager
def null_sink(sink: str) -> Iterator[tuple[dict[str, str], int | None]]:
    """``(environment, daemon PID or None)`` for subprocesses that play into / capture from a null sink.

    Raises
    ------
    PulseUnavailableError
        PulseAudio's tools, PortAudio or the ALSA ``pulse`` device are missing, or the daemon does not start.
    """
    missing = [tool for tool in ("pulseaudio", "pactl", "paplay") if shutil.which(tool) is None]
    if missing:
        raise PulseUnavailableError(f"PulseAudio tools not installed ({', '.join(missing)}): "
                               "apt-get install pulseaudio pulseaudio-utils libasound2-plugins")
    ambient = dict(os.environ) | {"PULSE_SINK": sink, "PULSE_SOURCE": f"{sink}.monitor", "PYTHONUNBUFFERED": "1"}
    module_id = daemon_pid = None
    with tempfile.TemporaryDirectory(prefix="streamgenre-pulse-") as tmp:
        if run(["pactl", "info"], ambient).returncode == 0:  # a server is running: add our own sink to it
            loaded = run(["pactl", "load-module", "module-null-sink", f"sink_name={sink}", "rate=48000",
                          "channels=2"], ambient)
            if loaded.returncode != 0:
                raise PulseUnavailableError(f"pactl load-module failed: {loaded.stderr.strip()}")
            module_id, env = loaded.stdout.strip(), ambient
        else:
            runtime = Path(tmp) / "pulse"
            env = private_env(runtime, sink)
            daemon_pid = start_daemon(runtime, sink, env)
            run(["pactl", "set-default-sink", sink], env)
            run(["pactl", "set-default-source", f"{sink}.monitor"], env)
        try:
            listed = run(cli("devices", "--json"), env, timeout=30)
            if listed.returncode != 0:
                raise PulseUnavailableError(f"no PortAudio: {listed.stderr.strip()}")
            names = [json.loads(line)["name"] for line in listed.stdout.splitlines()]
            if "pulse" not in names:
                raise PulseUnavailableError(f"ALSA has no 'pulse' device (install libasound2-plugins); inputs: {names}")
            yield env, daemon_pid
        finally:
            if module_id:
                run(["pactl", "unload-module", module_id], ambient)
            if daemon_pid is not None:
                stop_daemon(daemon_pid)
