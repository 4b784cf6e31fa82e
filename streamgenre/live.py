"""The ``live``, ``file`` and ``devices`` commands: run an :class:`~streamgenre.engine.Engine` and show it.

Front ends pull: the dashboard reads :meth:`Engine.snapshot` at its own pace; plain and JSON
output drain a bounded subscription queue. The pipeline never waits for a front end (except in
``file`` mode without ``--realtime``, where nothing is real time and every estimate is printed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import sys
import time
from typing import Any, TextIO

from streamgenre.engine import BLOCK_SECONDS, Engine, startup_objects_frozen
from streamgenre.errors import ConfigError, StreamgenreError
from streamgenre.state import Snapshot

__all__ = ["cmd_devices", "cmd_file", "cmd_live", "format_line", "summary_line"]

STOP_TIMEOUT_S = 3.0
START_SLACK_S = 10.0  # --duration: wall-clock allowance beyond the audio duration (start-up, stalls)


def check_options(args: argparse.Namespace) -> None:
    """Validate ``--hop``, ``--duration`` and ``--threads`` before anything slow happens."""
    hop = args.hop
    if hop != hop or hop in (float("inf"), float("-inf")):
        raise ConfigError(f"--hop must be a finite number of seconds, got {hop}")
    if hop < BLOCK_SECONDS - 1e-9:
        raise ConfigError(f"--hop must be at least one block ({BLOCK_SECONDS:g} s), got {hop:g}")
    if args.duration is not None and not (args.duration > 0 and args.duration != float("inf")):
        raise ConfigError(f"--duration must be a positive number of seconds, got {args.duration:g}")
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be positive, got {args.threads}")


LIVE_THREADS = 1
"""Default inference threads of live/file/monitor streams: a window's call only adds its newest block to
the work prepared in the block before, and a second thread mostly adds CPU time (compared in bench/e2e)."""


def _load_model(args: argparse.Namespace) -> Any:
    """Load the model while another thread loads the numba kernels (the two take similar time)."""
    import threading

    from streamgenre.features import warmup
    from streamgenre.model import load_model

    kernels = threading.Thread(target=warmup, name="streamgenre-numba-warmup", daemon=True)
    kernels.start()
    threads = LIVE_THREADS if args.threads is None else args.threads
    try:
        return load_model(args.model, provider=args.provider, threads=threads)
    finally:
        kernels.join()


def format_line(snap: Snapshot) -> str:
    """One human-readable line for an estimate (plain output)."""
    genre = snap.genre if snap.genre is not None else f"({snap.state})"
    e2e = snap.timings.get("end_to_end")
    latency = f"{e2e.last_ms:6.1f} ms" if e2e is not None else "   n/a"
    level = f"{snap.level_dbfs:6.1f}" if snap.level_dbfs > -1000 else "  -inf"
    flags = " provisional" if snap.provisional else ""
    if snap.overflows or snap.input_overflows:
        flags += f" overflows={snap.overflows}/{snap.input_overflows}"
    return f"{snap.t:8.1f} s  {genre:<18} {snap.confidence:5.2f}  level {level} dBFS  latency {latency}{flags}"


def summary_line(summary: dict[str, Any]) -> str:
    """The one-line run summary printed at the end (genre shares, flips, overflows, latency)."""
    shares = sorted(summary["shares"].items(), key=lambda kv: -kv[1])
    parts = [f"{g} {100 * s:.0f}%" for g, s in shares[:4]]
    if summary["silence_share"] >= 0.005:
        parts.append(f"silence {100 * summary['silence_share']:.0f}%")
    genres = ", ".join(parts) if parts else "no estimate"
    return (
        f"streamgenre: {summary['audio_seconds']:.1f} s of audio, {summary['estimates']} estimates · "
        f"{genres} · {summary['flips_per_minute']:.2f} flips/min · overflows {summary['overflows']} "
        f"(input {summary['input_overflows']}) · latency p50 {summary['latency_p50_ms']:.1f} ms, "
        f"p99 {summary['latency_p99_ms']:.1f} ms"
    )


def _emit(snap: Snapshot, as_json: bool, out: TextIO) -> None:
    line = json.dumps(snap.to_json_dict(), ensure_ascii=False) if as_json else format_line(snap)
    out.write(line + "\n")
    out.flush()


def _print_loop(
    engine: Engine, records: queue.Queue[Snapshot], as_json: bool, deadline: float | None, out: TextIO
) -> None:
    """Print every estimate until the engine ends or the wall-clock deadline passes."""
    while True:
        try:
            snap = records.get(timeout=0.1)
        except queue.Empty:
            if engine.done.is_set() and records.empty():
                return
            if deadline is not None and time.monotonic() > deadline:
                return
            continue
        _emit(snap, as_json, out)


def run_engine(
    engine: Engine,
    *,
    ui: bool,
    as_json: bool,
    lossless: bool,
    wall_limit: float | None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Warm up, start, show, stop; print the summary line; re-raise a worker error as one line.

    Parameters
    ----------
    engine
        An engine with a source, not yet started.
    ui
        Show the rich dashboard (else plain or JSON lines).
    as_json
        JSON lines instead of plain lines (when not ``ui``).
    lossless
        Print every estimate even if the worker must wait for the output (file mode, not real time).
    wall_limit
        Give up after this many wall-clock seconds (None: until the source ends or Ctrl-C).
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    records = None if ui else engine.subscribe(maxsize=4096, lossless=lossless)
    engine.warmup()
    with startup_objects_frozen():  # no full garbage collection stalls the worker mid-stream
        engine.start()
        deadline = None if wall_limit is None else time.monotonic() + wall_limit
        try:
            if ui:
                from rich.console import Console

                from streamgenre.dashboard import run_dashboard

                run_dashboard(engine.snapshot, engine.done, console=Console())
            else:
                assert records is not None
                _print_loop(engine, records, as_json, deadline, out)
        except KeyboardInterrupt:
            pass  # Ctrl-C is the normal way to end `live`: stop cleanly below
        except BrokenPipeError:  # e.g. `| head`: stop quietly, and keep Python from complaining at exit
            engine.stop(STOP_TIMEOUT_S)
            with contextlib.suppress(OSError, ValueError):  # (io.UnsupportedOperation is both)
                os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
            return 0
        finally:
            stopped = engine.stop(STOP_TIMEOUT_S)
    if records is not None:  # estimates published between the last print and the stop
        try:
            while not records.empty():
                _emit(records.get_nowait(), as_json, out)
        except (queue.Empty, BrokenPipeError):
            pass
    print(summary_line(engine.summary()), file=err, flush=True)
    if not stopped:
        print(f"streamgenre: warning: the engine did not stop within {STOP_TIMEOUT_S:g} s", file=err, flush=True)
    if engine.error is not None:
        if isinstance(engine.error, StreamgenreError):
            raise engine.error
        detail = " ".join(str(engine.error).split())
        raise StreamgenreError(f"the analysis stopped: {type(engine.error).__name__}: {detail}")
    return 0


def _ui_wanted(args: argparse.Namespace) -> bool:
    return not (args.no_ui or args.json) and sys.stdout.isatty()


def cmd_live(args: argparse.Namespace) -> int:
    """``streamgenre live``: listen to an input device (or, with ``--url``, an HTTP radio stream)."""
    from streamgenre.capture import Capture

    check_options(args)
    if getattr(args, "url", None) is not None:
        from streamgenre.monitor import parse_feeds
        from streamgenre.radio import RadioSource

        if args.device is not None:
            raise ConfigError("--url and --device exclude each other: give one input")
        parse_feeds([args.url])  # a bad URL fails before the model loads
        model = _load_model(args)
        source: Any = RadioSource(args.url, model.mel_config.sample_rate, block_seconds=BLOCK_SECONDS)
    else:
        source = Capture(args.device, block_seconds=BLOCK_SECONDS)  # resolves the device: fails fast
        model = _load_model(args)
    engine = Engine(model, source, hop_seconds=args.hop, block_seconds=BLOCK_SECONDS, max_seconds=args.duration)
    wall = None if args.duration is None else args.duration + START_SLACK_S
    return run_engine(engine, ui=_ui_wanted(args), as_json=args.json, lossless=False, wall_limit=wall)


def cmd_file(args: argparse.Namespace) -> int:
    """``streamgenre file PATH``: run the live pipeline over a file (as fast as possible or in real time)."""
    from streamgenre.engine import FileBlockSource

    check_options(args)
    model = _load_model(args)
    source = FileBlockSource(
        args.path, model.mel_config.sample_rate, block_seconds=BLOCK_SECONDS, realtime=args.realtime
    )
    engine = Engine(model, source, hop_seconds=args.hop, block_seconds=BLOCK_SECONDS, max_seconds=args.duration)
    wall = None
    if args.realtime and args.duration is not None:
        wall = args.duration + START_SLACK_S
    return run_engine(engine, ui=_ui_wanted(args), as_json=args.json, lossless=not args.realtime, wall_limit=wall)


def cmd_devices(args: argparse.Namespace) -> int:
    """``streamgenre devices`` / ``--list-devices``: the audio inputs, the default marked with ``*``."""
    from streamgenre.capture import NO_INPUT_HINT, list_devices

    devices = list_devices()
    if getattr(args, "json", False):
        for d in devices:
            print(json.dumps(d.to_dict(), ensure_ascii=False))
        return 0
    if not devices:
        print(f"no audio input devices found; {NO_INPUT_HINT}", file=sys.stderr)
        return 0
    width = max(len(d.name) for d in devices)
    print(f"    {'#':>3}  {'name':<{width}}  {'host API':<10} {'inputs':>6} {'rate':>8}")
    for d in devices:
        mark = "*" if d.is_default else " "
        print(
            f"  {mark} {d.index:>3}  {d.name:<{width}}  {d.hostapi:<10} {d.max_input_channels:>6} "
            f"{d.default_samplerate:>8.0f}"
        )
    print("(* = default input; select with --device INDEX or a part of the name)")
    return 0
