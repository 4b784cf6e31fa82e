"""Command line: ``streamgenre classify | info | live | file | devices | monitor | report``.

(Also ``python -m streamgenre``.)

Every user-facing error is one line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from streamgenre import __version__
from streamgenre.errors import StreamgenreError

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", metavar="FILE", help="ONNX model with streamgenre metadata (default: bundled)")
    parser.add_argument("--provider", choices=("auto", "cpu", "cuda"), default="auto",
                        help="execution provider (default: auto = CUDA when a GPU is usable)")
    parser.add_argument("--threads", type=int, default=None,
                        help="inference threads (default: 1 for live/file, else the cores, at most 4)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``streamgenre`` command."""
    parser = argparse.ArgumentParser(prog="streamgenre", description="Streaming, real-time music genre classifier.")
    parser.add_argument("--version", action="version", version=f"streamgenre {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    parser.add_argument("--list-devices", action="store_true", help="list audio input devices and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    classify = sub.add_parser("classify", help="classify audio files or folders (offline)",
                              description="Classify files (folders are searched recursively).")
    classify.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders")
    fmt = classify.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="one JSON object per line per file")
    fmt.add_argument("--csv", action="store_true", help="CSV with a header row")
    classify.add_argument("--timeline", action="store_true", help="include the per-window results")
    classify.add_argument("--top", type=int, default=3, help="genres/tags to show per file (default 3)")
    classify.add_argument("--hop", type=float, default=None, metavar="SECONDS",
                          help="seconds between windows (default: the window length)")
    _add_model_options(classify)

    info = sub.add_parser("info", help="show the model, its metadata and the execution provider in use")
    _add_model_options(info)

    live = sub.add_parser("live", help="listen to a microphone or line-in and show the genre as it plays",
                          description="Classify the audio of an input device in real time.")
    live.add_argument("--device", metavar="D", default=None,
                      help="input device: index, part of its name, or 'default' (see `streamgenre devices`)")
    live.add_argument("--url", metavar="URL", default=None,
                      help="listen to an HTTP radio stream (Icecast/Shoutcast: MP3, AAC, Ogg) instead of a device")
    _add_stream_options(live)

    file = sub.add_parser("file", help="run the live pipeline over an audio file",
                          description="Stream a file through the live pipeline (fast, or paced with --realtime).")
    file.add_argument("path", metavar="PATH", help="audio file")
    file.add_argument("--realtime", action="store_true", help="pace the file at real-time speed")
    _add_stream_options(file)

    devices = sub.add_parser("devices", help="list audio input devices (the default is marked *)")
    devices.add_argument("--json", action="store_true", help="one JSON object per device")
    _add_monitor_parser(sub)
    report = sub.add_parser("report", help="genre share per feed (and a timeline plot) from monitor logs",
                            description="Summarise the segment lines of `streamgenre monitor --log` files.")
    report.add_argument("logs", nargs="+", metavar="LOG", help="JSONL logs (rotated files too)")
    report.add_argument("--plot", metavar="PNG", help="write a timeline plot (one lane per feed)")
    report.add_argument("--feed", action="append", metavar="NAME", help="only this feed (repeatable)")
    report.add_argument("--json", action="store_true", help="one JSON object per feed")
    return parser


def _add_monitor_parser(sub: argparse._SubParsersAction) -> None:
    monitor = sub.add_parser(
        "monitor", help="classify many radio feeds in the background; log genre segments",
        description="Monitor HTTP radio feeds (URL or NAME=URL) with one shared model: JSONL segment log, "
                    "Prometheus metrics, reconnects. Stops on SIGTERM/SIGINT or after --duration.")
    monitor.add_argument("urls", nargs="*", metavar="URL", help="stream URL, or NAME=URL")
    monitor.add_argument("--feeds", metavar="FILE", help="file with one URL or NAME=URL per line")
    monitor.add_argument("--log", metavar="PATH", help="JSONL log of segments and events (all feeds)")
    monitor.add_argument("--log-max-mb", type=float, default=100.0, metavar="MB",
                         help="rotate the log at this size (default 100)")
    monitor.add_argument("--log-keep", type=int, default=30, metavar="N", help="rotated logs kept (default 30)")
    monitor.add_argument("--no-daily-rotation", action="store_true", help="do not rotate the log at midnight")
    monitor.add_argument("--metrics-port", type=int, default=None, metavar="PORT",
                         help="serve Prometheus metrics on this port (0: any free port)")
    monitor.add_argument("--metrics-host", default="127.0.0.1", metavar="HOST",
                         help="address the metrics server binds (default 127.0.0.1)")
    monitor.add_argument("--hop", type=float, default=1.5, metavar="S",
                         help="seconds between estimates per feed (default 1.5)")
    monitor.add_argument("--smoothing", type=float, default=None, metavar="S",
                         help="smoothing time constant (default 2 s)")
    monitor.add_argument("--min-segment", type=float, default=None, metavar="S",
                         help="a genre is shown at least this long (default 4 s)")
    monitor.add_argument("--duration", type=float, default=None, metavar="S",
                         help="stop after S wall-clock seconds (default: until SIGTERM/Ctrl-C)")
    monitor.add_argument("--stall-timeout", type=float, default=10.0, metavar="S",
                         help="no audio for S seconds is a stall: reconnect (default 10)")
    monitor.add_argument("--connect-timeout", type=float, default=5.0, metavar="S",
                         help="seconds to connect and get the response headers (default 5)")
    monitor.add_argument("--max-backoff", type=float, default=4.0, metavar="S",
                         help="longest wait between reconnects (default 4)")
    monitor.add_argument("--no-ui", action="store_true", help="plain log lines instead of the status table")
    _add_model_options(monitor)


def _add_stream_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hop", type=float, default=0.5, metavar="S",
                        help="seconds between estimates (default 0.5; at least one 0.1 s block)")
    parser.add_argument("--duration", type=float, default=None, metavar="S",
                        help="stop after S seconds of audio (default: until Ctrl-C / end of file)")
    parser.add_argument("--no-ui", action="store_true", help="plain lines instead of the dashboard")
    parser.add_argument("--json", action="store_true", help="one JSON object per estimate (implies --no-ui)")
    _add_model_options(parser)


def _positive(value: float | int | None, name: str) -> None:
    if value is not None and not value > 0:
        raise StreamgenreError(f"{name} must be positive, got {value}")


def _load(args: argparse.Namespace):
    from streamgenre.model import load_model

    _positive(args.threads, "--threads")
    return load_model(args.model, provider=args.provider, threads=args.threads)


def cmd_classify(args: argparse.Namespace) -> int:
    """``streamgenre classify``: returns 0 when every file was classified, 1 when some failed."""
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from streamgenre.classify import classify_file, iter_audio_files

    _positive(args.hop, "--hop")
    _positive(args.top, "--top")
    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    model = _load(args)
    files = list(iter_audio_files(args.paths))
    if not files:
        raise StreamgenreError("no audio files found in the given folders")
    failed = 0
    writer = None
    table = Table(title=f"streamgenre · {model.name}")
    table.add_column("file", overflow="fold")
    for column in ("genre", "confidence", "top genres", "top tags"):
        table.add_column(column)
    progress = Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeRemainingColumn(), console=err, transient=True,
                        disable=len(files) < 2 or not err.is_terminal)
    with progress:
        task = progress.add_task("classifying", total=len(files))
        for path in files:
            try:
                result = classify_file(path, model, hop_seconds=args.hop)
            except StreamgenreError as exc:
                failed += 1
                err.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
                progress.advance(task)
                continue
            if args.json:
                sys.stdout.write(json.dumps(result.to_dict(args.timeline, args.top), ensure_ascii=False) + "\n")
                sys.stdout.flush()
            elif args.csv:
                if writer is None:
                    writer = csv.writer(sys.stdout)
                    writer.writerow(["path", "genre", "confidence", "duration", "top_genres", "top_tags"])
                writer.writerow([result.path, result.genre, f"{result.confidence:.4f}", f"{result.duration:.3f}",
                                 ";".join(f"{g}:{s:.3f}" for g, s in result.genres[:args.top]),
                                 ";".join(f"{g}:{s:.3f}" for g, s in result.tags[:args.top])])
            else:
                table.add_row(escape(Path(result.path).name), escape(result.genre), f"{result.confidence:.2f}",
                              ", ".join(f"{escape(g)} {s:.2f}" for g, s in result.genres[:args.top]),
                              ", ".join(f"{escape(g)} {s:.2f}" for g, s in result.tags[:args.top]))
                if args.timeline:
                    for w in result.windows:
                        table.add_row(f"  {w.start:6.1f}–{w.end:6.1f} s", escape(w.genre), f"{w.confidence:.2f}",
                                      "provisional" if w.provisional else "", "")
            progress.advance(task)
    if not (args.json or args.csv) and table.row_count:
        out.print(table)
    if failed:
        err.print(f"{failed} of {len(files)} files could not be classified")
    return EXIT_SOME_FAILED if failed else EXIT_OK


def cmd_info(args: argparse.Namespace) -> int:
    """``streamgenre info``: model metadata and the provider actually in use."""
    model = _load(args)
    contract = model.contract
    document = model.describe() | {
        "mel_config": contract.mel_config.to_dict(),
        "outputs": {name: spec.to_dict() for name, spec in contract.outputs.items()},
        "provenance": contract.provenance, "metrics": contract.metrics,
    }
    print(json.dumps(document, indent=2, ensure_ascii=False))
    return EXIT_OK


def cmd_live(args: argparse.Namespace) -> int:
    """``streamgenre live`` (see :mod:`streamgenre.live`)."""
    from streamgenre.live import cmd_live as run

    return run(args)


def cmd_file(args: argparse.Namespace) -> int:
    """``streamgenre file`` (see :mod:`streamgenre.live`)."""
    from streamgenre.live import cmd_file as run

    return run(args)


def cmd_devices(args: argparse.Namespace) -> int:
    """``streamgenre devices`` / ``--list-devices``."""
    from streamgenre.live import cmd_devices as run

    return run(args)


def cmd_monitor(args: argparse.Namespace) -> int:
    """``streamgenre monitor`` (see :mod:`streamgenre.monitor`)."""
    from streamgenre.monitor import cmd_monitor as run

    return run(args)


def cmd_report(args: argparse.Namespace) -> int:
    """``streamgenre report`` (see :mod:`streamgenre.report`)."""
    from streamgenre.report import cmd_report as run

    return run(args)


COMMANDS = {"classify": cmd_classify, "info": cmd_info, "live": cmd_live, "file": cmd_file,
            "devices": cmd_devices, "monitor": cmd_monitor, "report": cmd_report}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``streamgenre`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.list_devices:
        args.command = "devices"
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return COMMANDS[args.command](args)
    except StreamgenreError as exc:
        print(f"streamgenre: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("streamgenre: interrupted", file=sys.stderr)
        return 130
