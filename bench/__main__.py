"""``python -m bench [--quick] [--json FILE] [--tf-python PYTHON] [--only NAME ...]``: every benchmark, one table.

Each section runs in its own subprocess (``python -m bench.<module> ... --json TMP``), one after
the other so they never compete with each other: a fresh process per section keeps the peak-RSS,
thread-pool and numba-cache measurements of one section free of another's. The rows are gathered
into one rich table (long explanations as numbered notes below it) and one JSON document::

    {"machine": {...}, "rows": [{"section", "metric", "value", "unit", "target", "met", "note"}, ...],
     "sections": {name: {"seconds", "returncode", "extra"}}}

``target`` and ``met`` are null where there is no target. ``--quick`` shortens every section
(about 2–3 minutes in all, each row says what was shortened); the full run takes about 15–20.
The machines are shared and noisy: the 1-minute load average at start and end is recorded.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import REPO_ROOT, RESULTS_DIR, loadavg, machine_info
from streamgenre.model import cuda_device_count

DEFAULT_JSON = RESULTS_DIR / "bench.json"


@dataclass(frozen=True)
class Section:
    """One benchmark module run as a subprocess."""

    name: str
    module: str
    full: tuple[str, ...]
    quick: tuple[str, ...]
    timeout_s: float


def sections(tf_python: str, png: Path) -> list[Section]:
    """The benchmarks, in the order they run."""
    return [
        Section("frontend", "bench.frontend", ("--seconds", "60"), ("--seconds", "10"), 600),
        Section(
            "model", "bench.model", ("--tf-python", tf_python), ("--repeats", "8", "--min-repeats", "3", "--no-tf"), 900
        ),
        Section(
            "e2e",
            "bench.e2e",
            ("--part", "latency", "--png", str(png)),
            ("--part", "latency", "--quick", "--png", str(png)),
            1200,
        ),
        Section("memory", "bench.e2e", ("--part", "memory"), ("--part", "memory", "--quick"), 1500),
        Section("throughput", "bench.throughput", (), ("--quick",), 900),
        Section("startup", "bench.startup", (), ("--quick",), 600),
        Section("scale", "bench.scale", (), ("--quick",), 1200),
        Section("device", "bench.device", (), ("--seconds", "10", "--warm", "6"), 600),
    ]


def run_section(section: Section, quick: bool, workdir: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run one section's subprocess; its rows (a failure becomes one row saying so) and its record."""
    out = workdir / f"{section.name}.json"
    cmd = [sys.executable, "-m", section.module, *(section.quick if quick else section.full), "--json", str(out)]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=section.timeout_s)
        code, err = proc.returncode, proc.stderr
    except subprocess.TimeoutExpired as exc:
        code, err = None, f"timed out after {section.timeout_s:g} s {exc.stderr or ''}"
    seconds = time.perf_counter() - start
    record: dict[str, Any] = {"seconds": round(seconds, 1), "returncode": code, "command": " ".join(cmd[1:])}
    if code == 0 and out.is_file():
        document = json.loads(out.read_text())
        rows = [row | {"section": section.name} for row in document["rows"]]
        record["extra"] = {k: v for k, v in document.items() if k not in ("machine", "rows")}
        return rows, record
    last = [line for line in str(err).strip().splitlines() if line.strip()][-1:] or ["no output"]
    record["stderr_tail"] = str(err)[-2000:]
    failure = {
        "section": section.name,
        "metric": f"{section.name} benchmark",
        "value": None,
        "unit": "",
        "target": None,
        "met": None,
        "note": f"FAILED (exit {code}): {last[0][:300]}",
    }
    return [failure], record


def finite(obj: Any) -> Any:
    """``obj`` with every NaN/inf float replaced by None (strict JSON)."""
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def _load(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _value(value: float | None) -> str:
    if value is None:
        return "—"
    if value != value:
        return "nan"
    return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.3e}"


def print_table(rows: list[dict[str, Any]], machine: dict[str, Any], title: str) -> None:
    """One rich table; notes are numbered and listed below it."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(120, Console().width))
    table = Table(title=title, show_lines=False)
    for column, justify in (
        ("section", "left"),
        ("metric", "left"),
        ("value", "right"),
        ("unit", "left"),
        ("target", "left"),
        ("met", "center"),
        ("note", "right"),
    ):
        table.add_column(column, justify=justify, overflow="fold")
    notes: list[str] = []
    previous = None
    for row in rows:
        if previous is not None and row["section"] != previous:
            table.add_section()
        previous = row["section"]
        ref = ""
        if row.get("note"):
            notes.append(row["note"])
            ref = f"[{len(notes)}]"
        met = "" if row["met"] is None else ("[green]yes[/]" if row["met"] else "[bold red]NO[/]")
        table.add_row(row["section"], row["metric"], _value(row["value"]), row["unit"], row["target"] or "", met, ref)
    console.print(table)
    console.print(
        f"machine: {machine['cpu']}, {machine['cores']} cores, {machine['platform']}, Python "
        f"{machine['python']}, onnxruntime {machine['onnxruntime']}, numba {machine['numba']}; "
        f"load average (1 min) {_load(machine['loadavg_start'])} at start, "
        f"{_load(machine['loadavg_end'])} at end; "
        f"{machine['time']}",
        highlight=False,
    )
    for i, note in enumerate(notes, 1):
        console.print(f"[{i}] {note}", highlight=False, markup=False)
    targets = [r for r in rows if r["met"] is not None]
    missed = [r for r in targets if not r["met"]]
    console.print(
        f"targets met: {len(targets) - len(missed)} of {len(targets)}"
        + (f"; missed: {', '.join(r['metric'] for r in missed)}" if missed else ""),
        highlight=False,
    )


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs of every section (~2-3 minutes)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"output JSON (default {DEFAULT_JSON})")
    parser.add_argument(
        "--tf-python",
        default=sys.executable,
        help="interpreter with TensorFlow + tf_keras for the original musicnn (default: this one)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        default=None,
        help="run only these sections: frontend model e2e memory throughput startup scale device",
    )
    args = parser.parse_args(argv)
    png = args.json.resolve().parent / "e2e_latency.png"
    chosen = sections(args.tf_python, png)
    if args.only:
        unknown = sorted(set(args.only) - {s.name for s in chosen})
        if unknown:
            parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(s.name for s in chosen)}")
        chosen = [s for s in chosen if s.name in args.only]
    machine = machine_info() | {"loadavg_start": loadavg()}
    rows: list[dict[str, Any]] = []
    records: dict[str, Any] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for i, section in enumerate(chosen, 1):
            print(f"[{i}/{len(chosen)}] {section.name} ...", file=sys.stderr, flush=True)
            section_rows, record = run_section(section, args.quick, Path(tmp))
            rows += section_rows
            records[section.name] = record
            print(f"      {section.name}: {record['seconds']:.0f} s", file=sys.stderr, flush=True)
    machine |= {
        "loadavg_end": loadavg(),
        "total_seconds": round(time.perf_counter() - started, 1),
        "mode": "quick" if args.quick else "full",
        "cuda_devices": cuda_device_count(),
    }
    mode = "--quick" if args.quick else "full run"
    print_table(rows, machine, f"streamgenre benchmarks ({mode}, {machine['total_seconds']:.0f} s)")
    document = finite({"machine": machine, "rows": rows, "sections": records})
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n")
    print(f"wrote {args.json}" + (f" and {png}" if any(s.name == "e2e" for s in chosen) else ""), file=sys.stderr)
    return 0 if all(record["returncode"] == 0 for record in records.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
