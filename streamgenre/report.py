"""``streamgenre report LOG.jsonl… [--plot timeline.png]``: genre share per feed and a timeline plot.

Reads the segment lines of monitor logs (rotated files too, in any order; other line types are
skipped; a torn last line after a crash is counted and skipped).
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from streamgenre.errors import StreamgenreError

__all__ = ["FeedReport", "build_reports", "cmd_report", "load_segments", "plot_timeline"]


@dataclass
class FeedReport:
    """Totals of one feed: seconds and segment count per genre, and the covered time span."""

    feed: str
    seconds: dict[str, float] = field(default_factory=dict)
    segments: dict[str, int] = field(default_factory=dict)
    start: float = math.inf
    end: float = -math.inf

    @property
    def total_seconds(self) -> float:
        """Seconds covered by segments (silence and outages excluded)."""
        return sum(self.seconds.values())

    def shares(self) -> list[tuple[str, float, float, int]]:
        """``(genre, seconds, share, segments)``, largest share first."""
        total = self.total_seconds
        rows = [(g, s, s / total if total > 0 else 0.0, self.segments[g]) for g, s in self.seconds.items()]
        return sorted(rows, key=lambda row: (-row[1], row[0]))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (``--json``)."""
        return {
            "feed": self.feed,
            "seconds": round(self.total_seconds, 3),
            "segments": sum(self.segments.values()),
            "start": datetime.fromtimestamp(self.start).astimezone().isoformat(timespec="seconds"),
            "end": datetime.fromtimestamp(self.end).astimezone().isoformat(timespec="seconds"),
            "genres": [
                {"genre": g, "seconds": round(s, 3), "share": round(share, 4), "segments": n}
                for g, s, share, n in self.shares()
            ],
        }


def _valid_segment(record: Any) -> bool:
    if not isinstance(record, dict) or record.get("type") != "segment":
        return False
    if not isinstance(record.get("feed"), str) or not isinstance(record.get("genre"), str):
        return False
    start, end = record.get("start_ts"), record.get("end_ts")
    numbers = all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (start, end)
    )
    return numbers and end >= start


def load_segments(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[dict[str, Any]], int]:
    """Segment records of the given logs, sorted by start time, and the number of unreadable lines.

    Raises
    ------
    StreamgenreError
        A file is missing or unreadable (one line naming it).
    """
    segments: list[dict[str, Any]] = []
    bad = 0
    for raw in paths:
        path = Path(raw)
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError:
                        bad += 1
                        continue
                    if _valid_segment(record):
                        segments.append(record)
                    elif not isinstance(record, dict) or record.get("type") == "segment":
                        bad += 1
        except IsADirectoryError:
            raise StreamgenreError(f"cannot read {path}: it is a directory, not a log file") from None
        except OSError as exc:
            raise StreamgenreError(f"cannot read {path}: {exc.strerror or exc}") from None
    segments.sort(key=lambda r: (r["start_ts"], r["feed"]))
    return segments, bad


def build_reports(segments: Iterable[dict[str, Any]]) -> list[FeedReport]:
    """Per-feed totals (feeds in order of first appearance)."""
    reports: dict[str, FeedReport] = {}
    for seg in segments:
        rep = reports.setdefault(seg["feed"], FeedReport(seg["feed"]))
        genre = seg["genre"]
        rep.seconds[genre] = rep.seconds.get(genre, 0.0) + (seg["end_ts"] - seg["start_ts"])
        rep.segments[genre] = rep.segments.get(genre, 0) + 1
        rep.start = min(rep.start, seg["start_ts"])
        rep.end = max(rep.end, seg["end_ts"])
    return list(reports.values())


def _color(genre: str) -> str:
    from streamgenre.dashboard import genre_color

    color = genre_color(genre)
    return color if color.startswith("#") else "#888888"


def plot_timeline(
    segments: Sequence[dict[str, Any]], path: str | os.PathLike[str], title: str | None = None
) -> None:
    """Write a PNG timeline: one lane per feed, one coloured bar per segment (matplotlib, Agg).

    Raises
    ------
    StreamgenreError
        No segments, or the file cannot be written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateFormatter, AutoDateLocator, date2num
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    from streamgenre.radio import safe_text

    if not segments:
        raise StreamgenreError("no segments to plot")
    lanes: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for seg in segments:
        lanes[seg["feed"]].append(seg)
    names = list(lanes)
    fig = Figure(figsize=(12, 1.2 + 0.5 * len(names)), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    genres: dict[str, str] = {}
    for row, name in enumerate(names):
        for seg in lanes[name]:
            start = date2num(datetime.fromtimestamp(seg["start_ts"]))
            width = max(date2num(datetime.fromtimestamp(seg["end_ts"])) - start, 1e-9)
            color = genres.setdefault(seg["genre"], _color(seg["genre"]))
            ax.broken_barh([(start, width)], (row - 0.4, 0.8), facecolors=color, edgecolor="none")
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels([safe_text(n, 40) for n in names])
    ax.set_ylim(len(names) - 0.5, -0.5)
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(AutoDateFormatter(locator))
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title or "streamgenre: genre timeline per feed")
    handles = [Patch(facecolor=c, label=safe_text(g, 30)) for g, c in sorted(genres.items())]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small", frameon=False)
    fig.tight_layout()
    try:
        fig.savefig(os.fspath(path), format="png")
    except OSError as exc:
        raise StreamgenreError(f"cannot write the plot {path}: {exc.strerror or exc}") from None


def _hms(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def cmd_report(args: Any) -> int:
    """``streamgenre report``: print the genre shares per feed (table or ``--json``), optionally plot."""
    import sys

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from streamgenre.radio import safe_text

    segments, bad = load_segments(args.logs)
    if args.feed:
        segments = [s for s in segments if s["feed"] in set(args.feed)]
    if not segments:
        raise StreamgenreError(
            "no segment lines found in the given logs" + (" for those feeds" if args.feed else "")
        )
    reports = build_reports(segments)
    if args.json:
        for rep in reports:
            sys.stdout.write(json.dumps(rep.to_dict(), ensure_ascii=True) + "\n")
    else:
        console = Console(highlight=False)
        for rep in reports:
            first, last = datetime.fromtimestamp(rep.start), datetime.fromtimestamp(rep.end)
            span = f"{first:%Y-%m-%d %H:%M} – {last:%Y-%m-%d %H:%M}"
            table = Table(title=Text(f"{safe_text(rep.feed, 80)}  ·  {span}  ·  {_hms(rep.total_seconds)}"))
            for column in ("genre", "time", "share", "segments"):
                table.add_column(column, justify="left" if column == "genre" else "right")
            for genre, seconds, share, n in rep.shares():
                table.add_row(Text(safe_text(genre, 40)), _hms(seconds), f"{100 * share:.1f}%", str(n))
            console.print(table)
    if bad:
        print(f"streamgenre: skipped {bad} unreadable log lines", file=sys.stderr)
    if args.plot:
        plot_timeline(segments, args.plot)
        print(f"streamgenre: wrote {args.plot}", file=sys.stderr)
    return 0
