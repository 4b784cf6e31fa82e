"""The live dashboard: a rich view of the latest :class:`~streamgenre.state.Snapshot`.

:func:`render` turns one snapshot into a renderable that fits the console it is printed to
(80×24 and up: two columns; narrower or shorter: one column, secondary sections dropped by
priority, bars shortened, labels truncated). :func:`run_dashboard` shows it with
:class:`rich.live.Live`, pulling the newest snapshot a few times a second on the caller's thread;
the pipeline never waits for the UI.

Everything that comes from outside (labels, tags, device and model names) is put into
:class:`rich.text.Text` objects, never parsed as markup, and control/format characters are shown
as escapes (``\\x1b``), so a device called ``"[red]x\\x1b[2J"`` is printed literally.
"""

from __future__ import annotations

import colorsys
import dataclasses
import functools
import math
import re
import threading
import unicodedata
import zlib
from collections.abc import Callable, Sequence

from rich.cells import cell_len, set_cell_size
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.live import Live
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

from streamgenre.state import Snapshot, StageTiming

__all__ = ["GTZAN_COLORS", "REFRESH_PER_SECOND", "genre_color", "render", "run_dashboard"]

# fmt: off
GTZAN_COLORS: dict[str, str] = {
    "blues": "#3d7eff", "classical": "#e8d8a8", "country": "#c08a3e", "disco": "#ff4fd8",
    "hiphop": "#ff9f1a", "jazz": "#1fc7b6", "metal": "#a0a8b8", "pop": "#ffe14d",
    "reggae": "#39c248", "rock": "#e23b3b",
}
"""Fixed colours of the 10 GTZAN genres (keys: lower case, letters and digits only)."""

REFRESH_PER_SECOND = 4.0
"""Default redraw rate: estimates come twice a second and the level meter with every 100 ms block;
four redraws a second show both for about 1 % of a core (each redraw of a new estimate lays the
screen out again; the others only redraw the level meter)."""

STAGES = ("resample", "mel", "prepare", "model", "smoother", "end_to_end")
_STAGE_NAMES = {"end_to_end": "end-to-end"}
_SHORT_STAGE = {"resample": "res", "mel": "mel", "prepare": "prep", "model": "model", "smoother": "smth",
                "end_to_end": "e2e"}
_WIDE_MIN_W, _WIDE_MIN_H, _RIGHT_W = 72, 18, 35
_TIMELINE_S = 60.0
_LEVEL_FLOOR_DB = -60.0
_PARTIAL = " ▏▎▍▌▋▊▉"
_DIM = "grey50"
_ASCII_BOX = str.maketrans("╭╮╰╯─│", "++++-|")

# 3×5 (M, N, W wider) block font; two pixel rows per text row via half blocks -> 3 text rows.
_FONT_ROWS: dict[str, str] = {
    "A": ".#. #.# ### #.# #.#", "B": "##. #.# ##. #.# ##.", "C": ".## #.. #.. #.. .##",
    "D": "##. #.# #.# #.# ##.", "E": "### #.. ##. #.. ###", "F": "### #.. ##. #.. #..",
    "G": ".## #.. #.# #.# .##", "H": "#.# #.# ### #.# #.#", "I": "### .#. .#. .#. ###",
    "J": "..# ..# ..# #.# .#.", "K": "#.# #.# ##. #.# #.#", "L": "#.. #.. #.. #.. ###",
    "M": "#...# ##.## #.#.# #...# #...#", "N": "#..# ##.# #.## #..# #..#",
    "O": ".#. #.# #.# #.# .#.", "P": "##. #.# ##. #.. #..", "Q": ".#. #.# #.# ##. .##",
    "R": "##. #.# ##. #.# #.#", "S": ".## #.. .#. ..# ##.", "T": "### .#. .#. .#. .#.",
    "U": "#.# #.# #.# #.# ###", "V": "#.# #.# #.# #.# .#.", "W": "#...# #...# #.#.# ##.## #...#",
    "X": "#.# #.# .#. #.# #.#", "Y": "#.# #.# .#. .#. .#.", "Z": "### ..# .#. #.. ###",
    "0": "### #.# #.# #.# ###", "1": ".#. ##. .#. .#. ###", "2": "##. ..# .#. #.. ###",
    "3": "##. ..# .#. ..# ##.", "4": "#.# #.# ### ..# ..#", "5": "### #.. ##. ..# ##.",
    "6": ".## #.. ### #.# ###", "7": "### ..# .#. .#. .#.", "8": "### #.# ### #.# ###",
    "9": "### #.# ### ..# ##.", " ": ".. .. .. .. ..", "-": "... ... ### ... ...",
    "'": "# # . . .", ".": ". . . . #", ",": ". . . # #", "!": "# # # . #", ":": ". # . # .",
    "/": "..# ..# .#. #.. #..", "&": ".#. #.# .#. #.# .##", "+": "... .#. ### .#. ...",
    "?": "##. ..# .#. ... .#.", "_": "... ... ... ... ###", "…": "..... ..... ..... ..... #.#.#",
    "(": ".# #. #. #. .#", ")": "#. .# .# .# #.",
}
# fmt: on
_HALF = {(False, False): " ", (True, False): "▀", (False, True): "▄", (True, True): "█"}


def _glyph_lines(char: str) -> list[str] | None:
    rows = _FONT_ROWS.get(char.upper())
    if rows is None:
        return None
    pix = [[c == "#" for c in row] for row in rows.split()] + [[False] * len(rows.split()[0])]
    return ["".join(_HALF[(top, bottom)] for top, bottom in zip(pix[i], pix[i + 1], strict=True)) for i in (0, 2, 4)]


@functools.lru_cache(maxsize=256)
def _block_text(text: str) -> tuple[str, str, str] | None:
    """Three rows of half-block letters for ``text``, or None when a character has no glyph (cached: the
    same few genre names are drawn at every redraw)."""
    glyphs = [_glyph_lines(char) for char in text]
    if not glyphs or any(g is None for g in glyphs):
        return None
    top, middle, bottom = (" ".join(g[row] for g in glyphs if g is not None) for row in range(3))
    return top, middle, bottom


_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _clean(value: object) -> str:
    """``value`` as one printable line: control and format characters become escapes."""
    return _clean_text(value if type(value) is str else str(value))


@functools.lru_cache(maxsize=4096)
def _clean_text(value: str) -> str:
    text = _CONTROL_RE.sub(lambda m: repr(m.group())[1:-1], value)
    if text.isascii():
        return text
    return "".join(f"\\u{ord(c):04x}" if unicodedata.category(c) in ("Cf", "Cs", "Co", "Zl", "Zp") else c for c in text)


def _fit(text: str | Text, width: int, style: str = "", pad: bool = False) -> Text:
    """One line of at most ``width`` cells (ellipsis when cut), never markup-parsed."""
    line = text.copy() if isinstance(text, Text) else Text(_clean(text), style=style)
    line.no_wrap = True
    line.truncate(max(0, width), overflow="ellipsis", pad=pad)
    return line


def _cat(*parts: Text | str) -> Text:
    """Concatenate keeping each part's own style (``a + b`` would spread ``a``'s style over ``b``)."""
    out = Text(no_wrap=True)
    for part in parts:
        out.append(part)
    return out


def _runs(cells: Sequence[tuple[str, str]]) -> Text:
    """``(char, style)`` cells as one Text with one span per run of equal style (renders much faster)."""
    out = Text(no_wrap=True)
    start = 0
    for i in range(1, len(cells) + 1):
        if i == len(cells) or cells[i][1] != cells[start][1]:
            out.append("".join(c for c, _ in cells[start:i]), style=cells[start][1] or None)
            start = i
    return out


def _join(parts: Sequence[Text]) -> Text:
    """``parts`` separated by a dim " · "."""
    out = Text(no_wrap=True)
    for i, part in enumerate(parts):
        if i:
            out.append(" · ", style=_DIM)
        out.append(part)
    return out


def _finite(value: object) -> bool:
    try:
        return math.isfinite(value)  # type: ignore[arg-type]  # numpy scalars included
    except TypeError:
        return False


def _pct(value: float) -> str:
    return f"{100 * value:3.0f}" if _finite(value) else "  –"


def _ms(value: float) -> str:
    if not _finite(value):
        return "–"
    for limit, spec in ((10, ".2f"), (100, ".1f"), (1e5, ".0f")):
        if value < limit:
            return format(value, spec)
    return format(value, ".0e")


def _db(value: float) -> str:
    return f"{value:5.1f}" if _finite(value) else " -inf"


@functools.lru_cache(maxsize=1024)
def genre_color(label: str | None) -> str:
    """Display colour of a genre label (fixed for the GTZAN genres, hash-based and stable otherwise).

    Parameters
    ----------
    label
        A genre label; None (silence, no estimate) gives a neutral grey.

    Returns
    -------
    str
        A rich colour (``"#rrggbb"`` or a named colour).
    """
    if label is None:
        return "grey35"
    key = re.sub(r"[^0-9a-z]", "", str(label).casefold())
    if key in GTZAN_COLORS:
        return GTZAN_COLORS[key]
    digest = zlib.crc32(str(label).encode("utf-8", "surrogatepass"))
    red, green, blue = colorsys.hsv_to_rgb((digest % 360) / 360.0, 0.5 + 0.15 * ((digest >> 9) % 3), 0.95)
    return f"#{round(red * 255):02x}{round(green * 255):02x}{round(blue * 255):02x}"


# ----------------------------------------------------------------------------------------------- sections
def _headline(snap: Snapshot) -> tuple[str, str, list[Text]]:
    """(big text, its style, info items) of the genre section."""
    items: list[Text] = []
    if snap.state == "warming":
        return "listening…", f"bold {_DIM}", [Text("warming up", style="italic")]
    if snap.state == "silence" or snap.genre is None:
        word = "silence" if snap.state == "silence" else "uncertain"
        return word, f"bold {_DIM}", [Text(f"level {_db(snap.level_dbfs).strip()} dBFS", style=_DIM)]
    items.append(Text.assemble((f"{_pct(snap.confidence).strip()}%", "bold"), (" confidence", _DIM)))
    if snap.provisional:
        items.append(Text(" PROVISIONAL ", style="bold black on yellow"))
    elif snap.state == "uncertain":
        items.append(Text("uncertain", style="bold yellow"))
    ranked = sorted(
        (v, lab) for lab, v in zip(snap.labels, snap.smoothed, strict=False) if lab != snap.genre and _finite(v)
    )
    if ranked:
        value, label = ranked[-1]
        items.append(Text.assemble(("next ", _DIM), (_clean(label), genre_color(label)), f" {_pct(value).strip()}%"))
    style = f"bold {genre_color(snap.genre)}" + (" dim" if snap.state == "uncertain" else "")
    return snap.genre, style, items


def _genre_section(frame: _Frame, snap: Snapshot, width: int, max_rows: int = 6) -> list[Line]:
    """The large genre panel (at most ``max_rows`` lines high), ``width`` cells wide."""
    word, style, items = _headline(snap)
    inner = width - 4
    block = _block_text(_clean(word)) if max_rows >= 5 else None
    side_w = max((cell_len(item.plain) for item in items), default=0)
    lines: list[Text]
    if block is not None and cell_len(block[0]) + 3 + min(side_w, 16) <= inner:
        block_w = cell_len(block[0])
        lines = []
        for row in range(3):
            side = _fit(items[row], inner - block_w - 3) if row < len(items) else ""
            lines.append(_cat(Text(block[row].ljust(block_w), style=style), "   ", side))
    else:
        info = _join(items)
        if block is not None and cell_len(block[0]) <= inner and max_rows >= 6:
            lines = [Text(row, style=style) for row in block]
        else:
            lines = [_fit(Text(_clean(word), style=style), inner)]
        if max_rows >= 4:
            lines.append(_fit(info, inner))
    title = _join(
        [Text("genre"), Text(_clean(word), style=style)]
        + ([Text("provisional", style="yellow")] if snap.provisional and snap.genre else [])
    )
    title.truncate(max(1, width - 6), overflow="ellipsis")
    return _box(frame, lines, title, width, len(lines) + 2, genre_color(snap.genre) if snap.genre else _DIM)


def _bar_runs(value: float, raw: float, width: int, color: str) -> list[tuple[str, str]]:
    """Smoothed ``value`` as a filled bar with a marker at ``raw``, ``width`` cells: ``(text, style)`` runs."""
    eighths = round(min(max(value if _finite(value) else 0.0, 0.0), 1.0) * width * 8)
    full, part = divmod(eighths, 8)
    filled = "█" * full + (_PARTIAL[part] if part and full < width else "")
    runs = [(filled, color), ("·" * (width - len(filled)), "grey30")]
    if _finite(raw) and raw * width >= 0.5:  # no marker for a raw value that rounds to an empty bar
        marker = min(width - 1, int(min(raw, 1.0) * width))
        style = f"bold black on {color}" if marker < full else "bold bright_white"
        inside = 0 if marker < len(filled) else 1  # the run the marker falls in
        text, base = runs[inside]
        at = marker - (0 if inside == 0 else len(filled))
        runs[inside:inside + 1] = [(text[:at], base), ("│", style), (text[at + 1:], base)]
    return [(text, style) for text, style in runs if text]


def _bar(value: float, raw: float, width: int, color: str) -> Text:
    """Smoothed ``value`` as a filled bar with a marker at ``raw``; ``width`` cells."""
    out = Text(no_wrap=True)
    for text, style in _bar_runs(value, raw, width, color):
        out.append(text, style=style)
    return out


@functools.lru_cache(maxsize=4096)
def _fit_label(label: str, width: int) -> str:
    """``label`` (cleaned) cut with an ellipsis or padded to exactly ``width`` cells; cached (labels repeat)."""
    text = _clean(label)
    if cell_len(text) > width:
        text = set_cell_size(text, max(0, width - 1)) + "…" if width > 0 else ""
    return set_cell_size(text, width)


def _bars_section(frame: _Frame, snap: Snapshot, inner: int, rows: int) -> list[Text | Line]:
    """Up to ``rows`` lines: one bar per genre (top ones plus a "+k more" line when they do not all fit).

    Bar lines are built as segments (they are most of a redraw's work); a line too narrow for a bar
    is built as text and cut to fit.
    """
    labels = list(snap.labels)
    if not labels:
        return [_fit(Text("waiting for the first estimate…", style=f"italic {_DIM}"), inner)]

    def score(seq: Sequence[float], i: int) -> float:
        return float(seq[i]) if i < len(seq) and _finite(seq[i]) else float("nan")

    order = list(range(len(labels)))
    more = 0
    if len(labels) > rows:
        order.sort(key=lambda i: -score(snap.smoothed, i) if _finite(score(snap.smoothed, i)) else 1.0)
        keep = max(1, rows - 1)
        shown = order[:keep]
        if snap.genre in labels and labels.index(snap.genre) not in shown:
            shown[-1] = labels.index(snap.genre)
        order, more = shown, (len(labels) - keep if rows >= 2 else 0)
    numbers_w = 10 if inner >= 34 else 5
    longest = max(cell_len(_clean(labels[i])) for i in order)
    label_w = min(longest, 16, max(4, inner // 3, inner - numbers_w - 15))  # keeps bars >= 12 cells if it can
    bar_w = inner - 2 - label_w - 1 - numbers_w
    lines = []
    for i in order:
        label, value, raw = labels[i], score(snap.smoothed, i), score(snap.raw, i)
        color = genre_color(label)
        current = label == snap.genre and snap.state in ("genre", "uncertain")
        if bar_w >= 3:
            parts = [("▶ " if current else "  ", f"bold {color}"),
                     (_fit_label(label, label_w), f"bold {color}" if current else color), (" ", ""),
                     *_bar_runs(value, raw, bar_w, color), (f" {_pct(value)}%", "bold" if current else "")]
            if numbers_w == 10:
                parts.append((f" r{_pct(raw)}", _DIM))
            lines.append(list(Segment.simplify(frame.segment(text, style) for text, style in parts)))
            continue
        line = _cat(
            Text("▶ " if current else "  ", style=f"bold {color}"),
            _fit(Text(_clean(label), style=f"bold {color}" if current else color), label_w, pad=True),
            " ",
            _bar(value, raw, bar_w, color) if bar_w >= 3 else "",
            Text(f" {_pct(value)}%", style="bold" if current else ""),
            Text(f" r{_pct(raw)}", style=_DIM) if numbers_w == 10 else "",
        )
        lines.append(_fit(line, inner))
    if more:
        lines.append(_fit(Text(f"  +{more} more genres", style=_DIM), inner))
    return lines


def _level_lines(snap: Snapshot, inner: int, compact: bool) -> list[Text]:
    value = snap.level_dbfs if _finite(snap.level_dbfs) else _LEVEL_FLOOR_DB
    clip = Text(" CLIP ", style="bold white on red") if snap.clipping else Text(" ok", style="green")
    head = Text("level ", style=_DIM)
    tail = Text(f" {_db(snap.level_dbfs)} dB")
    bar_w = inner - cell_len(head.plain) - cell_len(tail.plain) - (cell_len(clip.plain) if compact else 0)
    line = _cat(head)
    if bar_w >= 3:
        frac = (min(max(value, _LEVEL_FLOOR_DB), 0.0) - _LEVEL_FLOOR_DB) / -_LEVEL_FLOOR_DB
        peak = snap.peak_dbfs if _finite(snap.peak_dbfs) else _LEVEL_FLOOR_DB
        peak_i = min(
            bar_w - 1, int((min(max(peak, _LEVEL_FLOOR_DB), 0.0) - _LEVEL_FLOOR_DB) / -_LEVEL_FLOOR_DB * bar_w)
        )
        filled = round(frac * bar_w)
        cells = []
        for i in range(bar_w):
            cell_db = _LEVEL_FLOOR_DB * (1 - (i + 0.5) / bar_w)
            color = "red" if cell_db > -6 else "yellow" if cell_db > -18 else "green"
            char = "█" if i < filled else "│" if i == peak_i and _finite(snap.peak_dbfs) else "·"
            cells.append((char, color if char != "·" else "grey30"))
        line.append(_runs(cells))
    line.append(tail)
    if compact:
        return [_fit(_cat(line, clip), inner)]
    peak_line = Text.assemble(("peak  ", _DIM), f"{_db(snap.peak_dbfs)} dBFS  ", clip)
    return [_fit(line, inner), _fit(peak_line, inner)]


def _stage_names(snap: Snapshot) -> list[str]:
    return list(STAGES) + [name for name in snap.timings if name not in STAGES]


def _latency_table(snap: Snapshot, inner: int) -> list[Text]:
    """``stage  last  p50  p99`` lines (ms), one per stage."""
    lines = [_fit(Text(f"{'ms':<10}{'last':>7}{'p50':>7}{'p99':>7}", style=_DIM), inner)]
    for name in _stage_names(snap):
        timing = snap.timings.get(name, StageTiming(float("nan"), float("nan"), float("nan"), float("nan")))
        label = _fit(_clean(_STAGE_NAMES.get(name, name)), 10, pad=True)
        row = _cat(label, f" {_ms(timing.last_ms):>6} {_ms(timing.p50_ms):>6} {_ms(timing.p99_ms):>6}")
        if name == "end_to_end":
            row.stylize("bold")
        lines.append(_fit(row, inner))
    return lines


def _latency_compact(snap: Snapshot, inner: int) -> list[Text]:
    """Two lines, ``p50``/``p99`` across the stages (for one-column layouts)."""
    names = [n for n in _stage_names(snap) if n in snap.timings] or list(STAGES)
    rows = []
    for key in ("p50_ms", "p99_ms"):
        row = _cat(Text(f"{key[:3]} ms", style=_DIM))
        for name in names:
            timing = snap.timings.get(name)
            row.append(f" {_SHORT_STAGE.get(name, _clean(name)[:5])} ", style=_DIM)
            row.append(_ms(getattr(timing, key) if timing else float("nan")))
        rows.append(_fit(row, inner))
    return rows


def _counters_line(snap: Snapshot, width: int, with_latency: bool) -> Text:
    """Overflow/drop counters first, then (optionally) end-to-end latency, estimates and flips."""
    short = width < 60

    def item(name: str, value: str, style: str = "") -> Text:
        return Text.assemble((name + " ", _DIM), (value, style))

    parts = [
        item("ovf" if short else "overflows", str(snap.overflows), "bold red" if snap.overflows else "green"),
        item("drv" if short else "driver", str(snap.input_overflows), "bold red" if snap.input_overflows else "green"),
    ]
    e2e = snap.timings.get("end_to_end")
    if with_latency:
        parts.append(item("e2e", f"{_ms(e2e.p50_ms)}/{_ms(e2e.p99_ms)} ms" if e2e else "–"))
    parts.append(item("est" if short else "estimates", str(snap.estimates)))
    per_min = f" ({snap.flips_per_minute:.1f}/min)" if _finite(snap.flips_per_minute) else ""
    parts.append(item("flips", f"{snap.flips}{per_min}"))
    if snap.last_switch_latency_s is not None and _finite(snap.last_switch_latency_s):
        parts.append(item("switch" if short else "last switch", f"{snap.last_switch_latency_s:.1f} s"))
    return _fit(_join(parts), width)


def _tags_lines(snap: Snapshot, inner: int, rows: int) -> list[Text]:
    lines = []
    for tag, score in snap.top_tags[:rows]:
        label_w = max(1, inner - 5)
        line = _cat(_fit(Text(_clean(tag), style=genre_color(tag)), label_w, pad=True), f" {_pct(score)}%")
        lines.append(_fit(line, inner))
    return lines


def _tags_inline(snap: Snapshot, width: int) -> Text:
    parts = [Text.assemble((_clean(tag), genre_color(tag)), f" {_pct(score).strip()}%") for tag, score in snap.top_tags]
    return _fit(_cat(Text("tags ", style=_DIM), _join(parts)), width)


def _timeline(snap: Snapshot, width: int) -> Text:
    """One cell per second (or per few seconds when narrow) of the last minute, coloured by genre.

    Cell ``i`` covers stream times ``(start + i * step, start + (i + 1) * step]`` and shows the
    last estimate in it: the genre's initial on its colour, ``·`` for no genre, blank for none.
    """
    head, tail = Text("last 60 s ", style=_DIM), Text(" now", style=_DIM)
    if width < 24:
        head = Text("60s ", style=_DIM)
    n_cells = min(int(_TIMELINE_S), width - cell_len(head.plain) - cell_len(tail.plain))
    if n_cells < 4:
        return Text()
    step = _TIMELINE_S / n_cells
    now = max([snap.t, *(t for t, _ in snap.history if _finite(t))], default=0.0)
    slots: list[tuple[bool, str | None]] = [(False, None)] * n_cells
    for t, genre in snap.history:  # history is oldest first: later entries overwrite earlier ones
        if _finite(t) and now - _TIMELINE_S < t <= now:
            slots[min(n_cells - 1, max(0, math.ceil((t - (now - _TIMELINE_S)) / step) - 1))] = (True, genre)
    cells: list[tuple[str, str]] = []
    for seen, genre in slots:
        if not seen:
            cells.append((" ", ""))
        elif genre is None:
            cells.append(("·", _DIM))
        else:
            initial = next((c for c in _clean(genre) if c.isalnum()), "?")
            cells.append((initial if cell_len(initial) == 1 else "?", f"bold black on {genre_color(genre)}"))
    return _fit(_cat(head, _runs(cells), tail), width)


def _footer(snap: Snapshot, width: int) -> Text:
    """Source (and what it says is playing), model and provider; the title is shortened first, then
    the source name, when space is short."""
    tail = Text(_clean(snap.model))
    if snap.provider:  # with a title to show, "CUDAExecutionProvider" says enough as "CUDA"
        provider = snap.provider.removesuffix("ExecutionProvider") if snap.title else snap.provider
        tail.append_text(Text.assemble((" on " if snap.model else "", _DIM), _clean(provider)))
    if snap.source is None:
        return _fit(tail, width)
    src = snap.source
    kind = Text(_clean(src.kind) + " ", style=_DIM)
    fmt = Text(f" {src.sample_rate / 1000:g} kHz {src.channels}ch", style=_DIM)
    name = Text(_clean(src.name), style="bold")
    spare = width - cell_len(kind.plain) - cell_len(fmt.plain) - (cell_len(tail.plain) + 3 if tail else 0)
    title_room = spare - cell_len(name.plain) - 3
    name = _fit(name, max(spare, 12))
    head = _cat(kind, name, fmt)
    if snap.title and title_room >= 8:
        head = _cat(head, Text(" ♪ ", style=_DIM), _fit(Text(_clean(snap.title), style="italic"), title_room))
    return _fit(_join([head, tail]) if tail else head, width)


Line = list[Segment]
_LEVEL_FIELDS = ("level_dbfs", "peak_dbfs", "clipping")  # what a block changes between estimates


class _Frame:
    """The segment lines of one layout, and where its level-meter lines sit.

    Between estimates only the level meter changes (every audio block), so a live display
    re-renders just those lines (:meth:`relevel`) into the previous layout instead of laying
    everything out again.
    """

    __slots__ = ("console", "level_format", "level_slots", "lines", "styles")

    def __init__(self, console: Console) -> None:
        self.console = console
        self.styles: dict[str, Style] = {}
        self.lines: list[Line] = []
        self.level_slots: list[tuple[int, int, int]] = []  # (line, first segment, segments) of each level line
        self.level_format: tuple[int, bool, bool] = (0, False, False)  # (width, compact, padded)

    def segment(self, text: str, style: str) -> Segment:
        """``text`` in the named ``style`` (parsed once per layout)."""
        parsed = self.styles.get(style)
        if parsed is None:
            parsed = self.styles[style] = self.console.get_style(style) if style else Style.null()
        return Segment(text, parsed)

    def render(self, text: Text) -> Line:
        return list(Segment.simplify(text.render(self.console)))

    def add(self, lines: Sequence[Text]) -> None:
        self.lines += [self.render(line) for line in lines]

    def level_lines(self, snap: Snapshot) -> list[Line]:
        width, compact, padded = self.level_format
        return [self.render(_fit(line, width, pad=padded)) for line in _level_lines(snap, width, compact)]

    def relevel(self, snap: Snapshot) -> list[Line]:
        """The lines with the level meter of ``snap`` in place of the one laid out."""
        lines = list(self.lines)
        for (row, first, count), new in zip(self.level_slots, self.level_lines(snap), strict=True):
            lines[row] = [*lines[row][:first], *new, *lines[row][first + count:]]
        return lines


def _box(frame: _Frame, lines: Sequence[Text | Line], title: str | Text, width: int, height: int,
         border: str = "grey42") -> list[Line]:
    """``height`` segment lines of ``width`` cells: a rounded border with ``title`` in its top edge
    around ``lines`` (one cell of padding each side; cut or padded to fit). Drawn directly: a rich
    ``Panel`` in a ``Table`` grid costs several times as much per redraw."""
    inner = max(0, width - 4)
    top = Text("╭─", style=border, no_wrap=True)
    name = _fit(title if isinstance(title, Text) else Text(title), max(0, width - 6))
    if name.plain:
        top.append(" ")
        top.append_text(name)
        top.append(" ")
    top.append("─" * max(0, width - 1 - cell_len(top.plain)) + "╮", style=border)
    left, right, blank = frame.segment("│ ", border), frame.segment(" │", border), Segment(" " * inner)
    body = []
    for i in range(max(0, height - 2)):
        line = lines[i] if i < len(lines) else [blank]
        body.append([left, *(frame.render(_fit(line, inner, pad=True)) if isinstance(line, Text) else line), right])
    return [frame.render(_fit(top, width)), *body, [frame.segment("╰" + "─" * max(0, width - 2) + "╯", border)]]


# ------------------------------------------------------------------------------------------------ layouts
def _wide(frame: _Frame, snap: Snapshot, width: int, height: int) -> bool:
    """Two columns (False when ``height`` is too short for them)."""
    genre = _genre_section(frame, snap, width)
    genre_h = len(genre)
    left_w = width - _RIGHT_W
    frame.level_format = (_RIGHT_W - 4, False, True)
    level = frame.level_lines(snap)
    latency = _latency_table(snap, _RIGHT_W - 4)
    health_h = len(level) + len(latency) + 2
    middle_max = height - genre_h - 3
    if middle_max < health_h:
        return False
    n_tags = min(len(snap.top_tags), middle_max - health_h - 2)
    right_need = health_h + (n_tags + 2 if n_tags > 0 else 0)
    left_need = max(len(snap.labels), 1) + 2
    middle_h = min(middle_max, max(left_need, right_need))
    bars = _bars_section(frame, snap, left_w - 4, middle_h - 2)
    title = "genres  bar = smoothed · │ = raw" if left_w >= 44 else "genres"
    tag_h = middle_h - health_h if n_tags > 0 else 0
    right = _box(frame, _tags_lines(snap, _RIGHT_W - 4, tag_h - 2), "top tags", _RIGHT_W, tag_h) if tag_h else []
    right += _box(frame, [*level, *latency], "level · latency", _RIGHT_W, middle_h - tag_h)
    frame.lines += genre
    left = _box(frame, bars, title, left_w, middle_h)
    top = len(frame.lines)
    frame.lines += [[*a, *b] for a, b in zip(left, right, strict=True)]
    frame.level_slots = [(top + tag_h + 1 + i, len(left[tag_h + 1 + i]) + 1, len(line)) for i, line in enumerate(level)]
    frame.add([_timeline(snap, width), _counters_line(snap, width, with_latency=False), _footer(snap, width)])
    return True


def _narrow(frame: _Frame, snap: Snapshot, width: int, height: int) -> None:
    """One column; optional sections are added in priority order while rows remain."""
    genre = _genre_section(frame, snap, width, 6 if height >= 14 else 4 if height >= 6 else 3)
    genre_h = len(genre)
    inner = width - 4
    n_labels = max(len(snap.labels), 1)
    left = height - genre_h
    bar_rows = min(n_labels, 3, max(0, left - 2))
    show_bars = bar_rows > 0
    left -= bar_rows + 2 if show_bars else 0
    chosen: dict[str, list[Text]] = {}
    optional: list[tuple[str, Callable[[], list[Text]]]] = [
        ("level", lambda: _level_lines(snap, width, compact=True)),
        ("counters", lambda: [_counters_line(snap, width, with_latency=True)]),
        ("timeline", lambda: [_timeline(snap, width)] if width >= 28 else []),
        ("tags", lambda: [_tags_inline(snap, width)] if snap.top_tags else []),
        ("footer", lambda: [_footer(snap, width)]),
        ("bars", lambda: []),
        ("latency", lambda: _latency_compact(snap, width) if width >= 40 else []),
    ]
    for name, make in optional:
        if name == "bars":
            if show_bars:
                extra = min(n_labels - bar_rows, left)
                bar_rows, left = bar_rows + extra, left - extra
            continue
        lines = make()
        if lines and len(lines) <= left:
            chosen[name], left = lines, left - len(lines)
    frame.lines += genre
    if show_bars:
        if n_labels > bar_rows and left > 0:  # room for the "+k more" line
            bar_rows += 1
        bars = _bars_section(frame, snap, inner, bar_rows)
        frame.lines += _box(frame, bars, "genres", width, len(bars) + 2)
    for name in ("tags", "level", "latency", "counters", "timeline", "footer"):
        if name == "level" and name in chosen:
            frame.level_format = (width, True, False)
            level = frame.level_lines(snap)
            frame.level_slots = [(len(frame.lines) + i, 0, len(line)) for i, line in enumerate(level)]
            frame.lines += level
        else:
            frame.add(chosen.get(name, []))


def _only_level_differs(old: Snapshot, new: Snapshot) -> bool:
    """Whether ``new`` is ``old`` with another level meter reading that nothing but the meter shows."""
    if new.genre is None or new.state in ("silence", "warming"):  # the headline shows the level then
        return False
    levels = {name: getattr(new, name) for name in _LEVEL_FIELDS}
    return dataclasses.replace(old, **levels) == new


class _DashboardView:
    """Renderable that lays a snapshot out for the width and height it is rendered at.

    The rendered lines are cached per size: a live display redraws the same snapshot several
    times between estimates, and those redraws then cost only the terminal output. Given the view
    of the previous snapshot, a snapshot that only moves the level meter reuses its layout.
    """

    __slots__ = ("_cache", "_previous", "height", "snapshot", "width")

    def __init__(self, snapshot: Snapshot, width: int | None, height: int | None,
                 previous: _DashboardView | None = None) -> None:
        self.snapshot, self.width, self.height = snapshot, width, height
        self._cache: tuple[tuple[int, int, bool, bool], _Frame, list[Line]] | None = None
        self._previous = previous

    def _layout(self, console: Console, width: int, height: int) -> _Frame:
        frame = _Frame(console)
        if width < 8 or height < 3 or (width < 12 and height < 5):
            word, style, _ = _headline(self.snapshot)
            frame.add([_fit(Text(_clean(word), style=style), width)])
        elif not (width >= _WIDE_MIN_W and height >= _WIDE_MIN_H and _wide(frame, self.snapshot, width, height)):
            _narrow(frame, self.snapshot, width, height)
        return frame

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = min(self.width or options.max_width, options.max_width)
        height = self.height or options.height or options.size.height
        key = (width, height, options.ascii_only, options.legacy_windows)
        if self._cache is None or self._cache[0] != key:
            before, self._previous = self._previous, None  # (no chain of views is kept alive)
            cached = before._cache if before is not None else None
            if cached is not None and cached[0] == key and cached[1].console is console \
                    and _only_level_differs(before.snapshot, self.snapshot):
                frame, lines = cached[1], cached[1].relevel(self.snapshot)
            else:
                frame = self._layout(console, width, height)
                lines = frame.lines
            if options.ascii_only:  # a terminal without box-drawing characters
                lines = [[Segment(seg.text.translate(_ASCII_BOX), seg.style) for seg in line] for line in lines]
            self._cache = (key, frame, lines)
        new_line = Segment.line()
        for line in self._cache[2]:
            yield from line
            yield new_line


def render(snapshot: Snapshot, width: int | None = None, height: int | None = None) -> RenderableType:
    """The dashboard for one snapshot.

    Parameters
    ----------
    snapshot
        The state to show.
    width, height
        Size to lay out for, in cells/lines; None uses the console's (width capped at the console's).
        80×24 shows everything; narrower or shorter sizes drop secondary sections.

    Returns
    -------
    rich.console.RenderableType
        A renderable; print it or hand it to :class:`rich.live.Live`.
    """
    if not isinstance(snapshot, Snapshot):
        raise TypeError(f"render() needs a streamgenre.state.Snapshot, got {type(snapshot).__name__}")
    for name, value in (("width", width), ("height", height)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"render() {name} must be a positive int or None, got {value!r}")
    return _DashboardView(snapshot, width, height)


def run_dashboard(
    get_snapshot: Callable[[], Snapshot],
    stop: threading.Event,
    refresh_per_second: float = REFRESH_PER_SECOND,
    console: Console | None = None,
    *,
    screen: bool = False,
) -> None:
    """Show the live dashboard until ``stop`` is set.

    The latest snapshot is pulled ``refresh_per_second`` times a second on the calling thread, so
    the pipeline never waits for the UI. The terminal (cursor, alternate screen, stdout
    redirection) is restored on every exit path; a :class:`KeyboardInterrupt` is re-raised after
    that so the caller can print its summary.

    Parameters
    ----------
    get_snapshot
        Returns the newest published snapshot; must not block.
    stop
        Set it (from any thread) to end the dashboard; checked at every refresh.
    refresh_per_second
        Redraw rate, 0.5 to 60 (default :data:`REFRESH_PER_SECOND`).
    console
        Where to draw (default: a new terminal console).
    screen
        Use the alternate screen (the last frame then disappears on exit).
    """
    if not callable(get_snapshot):
        raise TypeError(f"get_snapshot must be callable, got {type(get_snapshot).__name__}")
    if not callable(getattr(stop, "wait", None)) or not callable(getattr(stop, "is_set", None)):
        raise TypeError(f"stop must be a threading.Event, got {type(stop).__name__}")
    if (
        isinstance(refresh_per_second, bool)
        or not isinstance(refresh_per_second, (int, float))
        or not 0.5 <= refresh_per_second <= 60
    ):
        raise ValueError(f"refresh_per_second must be between 0.5 and 60, got {refresh_per_second!r}")
    console = console if console is not None else Console()
    period = 1.0 / float(refresh_per_second)
    shown: Snapshot | None = None
    view = render(Snapshot())
    pulling = False  # Live renders once on construction and once in stop(): those reuse ``view``

    def current() -> RenderableType:
        nonlocal shown, view
        if pulling:
            snapshot = get_snapshot()
            if snapshot is not shown:  # a new snapshot: lay it out (the level meter alone when only it moved)
                shown, view = snapshot, _DashboardView(snapshot, None, None, previous=view)
        return view

    live = Live(get_renderable=current, console=console, screen=screen, auto_refresh=False, vertical_overflow="crop")
    live.start(refresh=False)
    try:
        pulling = True
        live.refresh()
        while not stop.wait(period):
            live.refresh()
        live.refresh()
    finally:
        pulling = False  # the final redraw shows the last frame without calling back (even after Ctrl-C)
        live.stop()
