"""Shared helpers of the benchmarks: machine description, robust timing, result table and JSON.

Every benchmark prints a rich table and writes ``{"machine": {...}, "rows": [{"metric", "value",
"unit", "target", "met"}, ...]}``. Compare ratios measured side by side in one run: these machines
are shared and noisy, so absolute numbers move from run to run.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Row:
    """One measured quantity; ``met`` is None where there is no target."""

    metric: str
    value: float | None
    unit: str
    target: str | None = None
    met: bool | None = None
    note: str = ""


def machine_info() -> dict[str, Any]:
    """Where the numbers were measured."""
    import numba
    import onnxruntime

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"platform": platform.platform(), "cpu": cpu, "cores": os.cpu_count(),
            "python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__,
            "onnxruntime": onnxruntime.__version__, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def stat_cpu_seconds(stat: Path) -> float:
    """User + system CPU seconds in a Linux ``/proc/<pid>/stat`` or ``/proc/<pid>/task/<tid>/stat`` file."""
    fields = stat.read_text().rsplit(")", 1)[1].split()  # (the command name may hold spaces and ")")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def shared_data_dir() -> Path:
    """``$STREAMGENRE_SHARED_DATA`` or ``../shared/data`` beside the repository."""
    override = os.environ.get("STREAMGENRE_SHARED_DATA")
    return Path(override) if override else REPO_ROOT.parent / "shared" / "data"


def gtzan_clips(limit: int | None = None) -> list[Path]:
    """The GTZAN clips of the shared data, genres interleaved (blues.00000, classical.00000, ...).

    Raises
    ------
    FileNotFoundError
        The shared data set is absent (benchmarks of real audio cannot run without it).
    """
    root = shared_data_dir() / "gtzan"
    clips = sorted(root.glob("*/*.flac"), key=lambda p: (p.stem.split(".")[-1], p.stem))
    if not clips:
        raise FileNotFoundError(f"no GTZAN clips under {root} (place the shared data set at ../shared/data)")
    return clips if limit is None else clips[:limit]


def _proc_status_mb(key: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return None


def rss_mb() -> float | None:
    """Resident set size of this process in MiB (None where /proc is unavailable)."""
    return _proc_status_mb("VmRSS")


def peak_rss_mb() -> float | None:
    """Peak resident set size since start or the last :func:`reset_peak_rss` (MiB)."""
    return _proc_status_mb("VmHWM")


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux ``clear_refs``); False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def loadavg() -> float | None:
    """1-minute load average (these machines are shared: note it beside timings)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def stop_worker(proc: subprocess.Popen[Any], timeout: float) -> None:
    """End a helper process fed on stdin: close its input, wait ``timeout`` seconds, then kill it."""
    if proc.stdin is not None:
        proc.stdin.close()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def time_call(fn: Callable[[], object], repeats: int, warmup: int = 3) -> np.ndarray:
    """Wall-clock seconds of ``repeats`` calls after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    samples = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter()
        fn()
        samples[i] = time.perf_counter() - start
    return samples


def report(title: str, rows: list[Row], json_path: Path | None, extra: dict[str, Any] | None = None) -> None:
    """Print the table and write the JSON document."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in ("metric", "value", "unit", "target", "met", "note"):
        table.add_column(column, overflow="fold")
    for row in rows:
        value = "—" if row.value is None else f"{row.value:.4g}"
        met = "" if row.met is None else ("[green]yes[/]" if row.met else "[red]NO[/]")
        table.add_row(row.metric, value, row.unit, row.target or "", met, row.note)
    Console().print(table)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        document = {"machine": machine_info(), "rows": [asdict(r) for r in rows]} | (extra or {})
        json_path.write_text(json.dumps(document, indent=2) + "\n")
        Console(stderr=True).print(f"wrote {json_path}")
