"""Snapshot tests of the rich dashboard, rendered with a recording Console (no engine needed)."""

from __future__ import annotations

import dataclasses
import io
import sys
import threading

import numpy as np
import pytest
from rich.console import Console

from streamgenre import dashboard
from streamgenre.dashboard import GTZAN_COLORS, genre_color, render, run_dashboard
from streamgenre.state import Snapshot, SourceInfo, StageTiming

GTZAN = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
MSD_GENRES = (
    "rock", "pop", "alternative", "indie", "electronic", "dance", "alternative rock", "jazz", "metal",
    "classic rock", "soul", "indie rock", "electronica", "folk", "punk", "blues", "hard rock", "ambient",
    "experimental", "Hip-Hop", "country", "easy listening", "funk", "electro", "heavy metal",
    "Progressive rock", "rnb", "indie pop", "House",
)  # fmt: skip
TIMINGS = {
    "resample": StageTiming(0.05, 0.04, 0.11, 0.2, 120),
    "mel": StageTiming(0.21, 0.2, 0.37, 0.5, 120),
    "model": StageTiming(3.1, 3.02, 4.46, 6.0, 120),
    "smoother": StageTiming(0.01, 0.01, 0.03, 0.05, 120),
    "end_to_end": StageTiming(3.6, 3.43, 5.17, 7.0, 120),
}


def make_snapshot(**changes: object) -> Snapshot:
    """A 10-genre GTZAN snapshot showing hiphop, one minute into a stream."""
    smoothed = (0.02, 0.01, 0.05, 0.03, 0.62, 0.08, 0.01, 0.1, 0.05, 0.03)
    raw = (0.01, 0.02, 0.03, 0.05, 0.71, 0.05, 0.0, 0.08, 0.03, 0.02)
    history = tuple((0.5 * i, "rock" if i <= 60 else "jazz") for i in range(1, 121))
    base = Snapshot(
        t=60.0, wall_time=1.7e9, state="genre", genre="hiphop", confidence=0.62, provisional=False,
        labels=GTZAN, smoothed=smoothed, raw=raw,
        top_tags=(("hip hop", 0.7), ("rap", 0.5), ("male vocalists", 0.3)),
        level_dbfs=-18.2, peak_dbfs=-3.1, clipping=False, timings=TIMINGS, overflows=7, input_overflows=2,
        estimates=120, flips=3, flips_per_minute=1.5, last_switch_latency_s=1.8, history=history,
        source=SourceInfo("device", "USB Line In", 48000, 2), model="msd_musicnn.onnx",
        provider="CPUExecutionProvider",
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


def record(snapshot: Snapshot, width: int = 80, height: int = 24, color_system: str | None = None, **kw) -> str:
    """Render on a recording terminal console; returns the plain text (raw output checked separately)."""
    console = Console(
        record=True, width=width, height=height, force_terminal=True, color_system=color_system, file=io.StringIO()
    )
    console.print(render(snapshot, **kw))
    return console.export_text()


def assert_fits(text: str, width: int, height: int) -> None:
    lines = text.splitlines()
    assert len(lines) <= height, f"{len(lines)} lines > {height}"
    longest = max(lines, key=len)
    assert len(longest) <= width, f"line of {len(longest)} cells > {width}: {longest!r}"


def test_80x24_shows_everything_and_fits():
    text = record(make_snapshot())
    assert_fits(text, 80, 24)
    lines = text.splitlines()
    assert "hiphop" in lines[0]  # title of the genre panel, above the block letters
    assert dashboard._block_text("hiphop")[0] in text  # the large rendering
    assert "62% confidence" in text
    for label in GTZAN:
        assert label in text
    assert "▶ hiphop" in text  # the displayed genre is marked among the bars
    assert "62% r 71" in text  # smoothed value as the bar, raw value as a number
    for tag in ("hip hop", "rap", "male vocalists"):
        assert tag in text
    assert "-18.2 dB" in text and "-3.1 dBFS" in text
    for number in ("3.02", "4.46", "3.43", "5.17"):  # model and end-to-end p50/p99
        assert number in text
    assert "end-to-end" in text
    assert "overflows 7" in text and "driver 2" in text
    assert "CPUExecutionProvider" in text and "msd_musicnn.onnx" in text and "USB Line In" in text
    assert "48 kHz 2ch" in text


def test_bar_lengths_follow_smoothed_and_raw_marker():
    bar = dashboard._bar(0.5, 0.25, 20, "red").plain
    assert bar == "█████│████" + "·" * 10
    assert dashboard._bar(0.0, 0.0, 8, "red").plain == "·" * 8
    assert dashboard._bar(1.0, 1.0, 8, "red").plain == "███████│"
    assert dashboard._bar(float("nan"), float("nan"), 4, "red").plain == "····"


def test_timeline_one_cell_per_second_coloured_by_genre():
    snapshot = make_snapshot(history=(*make_snapshot().history[:-4], (58.5, None), (59.0, None)))
    text = record(snapshot)
    row = next(line for line in text.splitlines() if line.startswith("last 60 s "))
    cells = row[len("last 60 s ") : len("last 60 s ") + 60]
    assert cells == "r" * 30 + "j" * 28 + "· "  # rock, jazz, silence, and no estimate in the last second
    assert row.endswith(" now")
    colored = record(snapshot, color_system="truecolor")
    assert colored == text  # colour does not change the text
    console = Console(width=80, height=24, force_terminal=True, color_system="truecolor", file=io.StringIO())
    console.print(render(snapshot))
    red, green, blue = (int(GTZAN_COLORS["rock"][i : i + 2], 16) for i in (1, 3, 5))
    assert f"48;2;{red};{green};{blue}m" + "r" * 30 in console.file.getvalue()


def test_genre_colours_fixed_for_gtzan_and_stable_for_others():
    assert len(set(GTZAN_COLORS.values())) == 10
    for label in GTZAN:
        assert genre_color(label) == GTZAN_COLORS[label]
    assert genre_color("Hip-Hop") == GTZAN_COLORS["hiphop"]
    colors = {label: genre_color(label) for label in MSD_GENRES}
    assert colors == {label: genre_color(label) for label in MSD_GENRES}  # deterministic (not hash())
    assert all(c.startswith("#") and len(c) == 7 for c in colors.values())
    assert len(set(colors.values())) > 20
    assert genre_color(None) != genre_color("rock")


@pytest.mark.parametrize("width", [72, 60, 50, 40, 30, 20])
def test_narrower_widths_fit_and_keep_the_genre(width):
    text = record(make_snapshot(), width=width)
    assert_fits(text, width, 24)
    assert "hiphop" in text
    assert ("overflows 7" if width >= 60 else "ovf 7") in text


def test_width_argument_limits_the_layout():
    console = Console(record=True, width=80, height=24, force_terminal=True, color_system=None, file=io.StringIO())
    console.print(render(make_snapshot(), width=40))  # on an 80-column console
    text = console.export_text()
    assert_fits(text, 40, 24)
    assert "hiphop" in text


def test_every_size_fits_without_crashing():
    snapshots = [
        make_snapshot(),
        make_snapshot(labels=MSD_GENRES, smoothed=tuple(np.linspace(0, 0.5, 29)), raw=(0.1,) * 29, genre="punk"),
        Snapshot(),
        make_snapshot(state="silence", genre=None, source=None, model="", provider="", timings={}),
    ]
    for snapshot in snapshots:
        for width in (1, 5, 9, 14, 22, 33, 47, 61, 71, 79, 80, 100, 130):
            for height in (1, 3, 6, 9, 13, 17, 23, 24, 40):
                assert_fits(record(snapshot, width=width, height=height), width, height)


def test_many_labels_show_the_top_ones_that_fit():
    smoothed = tuple(float(x) for x in np.linspace(0.01, 0.6, 29))  # "House" (last) leads
    snapshot = make_snapshot(
        labels=MSD_GENRES, smoothed=smoothed, raw=smoothed, genre="rock", confidence=0.01, provisional=True
    )
    text = record(snapshot)
    assert_fits(text, 80, 24)
    assert "House" in text and "indie pop" in text  # the two best
    assert "▶ rock" in text  # the displayed genre stays visible although it scores lowest
    assert "  pop " not in text  # the second worst is dropped
    assert "more genres" in text
    shown = [label for label in MSD_GENRES if f"  {label} " in text or f"▶ {label} " in text]
    assert 8 <= len(shown) < 29
    tall = record(snapshot, height=40)
    assert all(f" {label} " in tall for label in MSD_GENRES)  # a taller terminal shows them all


def test_warming_silence_provisional_and_uncertain_states():
    warming = record(Snapshot())
    assert "listening…" in warming and "warming up" in warming
    assert "waiting for the first estimate" in warming
    assert "▶" not in warming
    assert "listening…" in record(Snapshot(), width=30)

    silence = record(make_snapshot(state="silence", genre=None, level_dbfs=float("-inf"), peak_dbfs=float("-inf")))
    assert "silence" in silence.splitlines()[0] and "▶" not in silence
    assert "-inf" in silence

    provisional = record(make_snapshot(provisional=True))
    assert "PROVISIONAL" in provisional and "provisional" in provisional.splitlines()[0]
    assert "PROVISIONAL" in record(make_snapshot(provisional=True), width=40)

    uncertain = record(make_snapshot(state="uncertain"))
    assert "uncertain" in uncertain and "▶ hiphop" in uncertain


def test_clipping_missing_timings_and_numpy_scalars():
    text = record(make_snapshot(clipping=True, timings={}, confidence=np.float32(0.5)))
    assert "CLIP" in text
    assert "50% confidence" in text
    assert "–" in text  # stages without timings
    assert_fits(text, 80, 24)


def test_markup_and_control_characters_are_shown_literally():
    snapshot = make_snapshot(
        labels=("[red]x[/red]", "a\x1b[2Jb", "c\nd", "e\u202ef"),
        smoothed=(0.5, 0.3, 0.1, 0.1),
        raw=(0.5, 0.3, 0.1, 0.1),
        genre="[red]x[/red]",
        top_tags=(("[bold]t", 0.5),),
        source=SourceInfo("device", "mic[/]\x1b[31m\x07\r", 44100, 1),
        provider="[blink]P",
    )
    console = Console(record=True, width=80, height=24, force_terminal=True, color_system=None, file=io.StringIO())
    console.print(render(snapshot))
    raw_output = console.file.getvalue()
    text = console.export_text()
    assert_fits(text, 80, 24)
    for literal in ("[red]x[/red]", "a\\x1b[2Jb", "c\\nd", "e\\u202ef", "[bold]t", "[blink]P"):
        assert literal in text
    assert "mic[/]\\x1b[31m\\x07\\r" in text
    for char in ("\x1b", "\x07", "\r", "\u202e"):
        assert char not in raw_output  # nothing reaches the terminal as a control sequence
    assert_fits(record(snapshot, width=30), 30, 24)


def test_render_rejects_bad_arguments():
    with pytest.raises(TypeError, match="Snapshot"):
        render(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="width"):
        render(make_snapshot(), width=0)
    with pytest.raises(ValueError, match="height"):
        render(make_snapshot(), height=True)  # type: ignore[arg-type]


def live_console() -> Console:
    """A terminal console without colours: the output holds the text plus cursor/screen controls."""
    return Console(width=80, height=24, force_terminal=True, color_system=None, file=io.StringIO())


def run_in_thread(target, timeout_s: float = 20.0) -> None:
    """Run ``target`` and fail (instead of hanging) if it does not return within ``timeout_s``."""
    errors: list[BaseException] = []

    def body():
        try:
            target()
        except BaseException as exc:  # re-raised in the test thread
            errors.append(exc)

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    thread.join(timeout_s)
    assert not thread.is_alive(), "run_dashboard did not return after stop was set"
    if errors:
        raise errors[0]


@pytest.mark.parametrize(("width", "height"), [(80, 24), (50, 20), (30, 12)])
def test_level_only_changes_redraw_the_meter_into_the_previous_layout(width, height):
    """A block between estimates moves only the level meter: the view reuses the previous layout, and
    shows exactly what laying the snapshot out anew shows (wide and one-column layouts)."""
    console = Console(record=True, width=width, height=height, force_terminal=True, color_system="truecolor",
                      file=io.StringIO())
    first = make_snapshot()
    view = dashboard._DashboardView(first, None, None)
    console.print(view)
    console.export_text()
    for level, peak, clipping in ((-30.5, -12.0, False), (-2.0, 0.0, True), (-75.0, float("-inf"), False)):
        snap = dataclasses.replace(first, level_dbfs=level, peak_dbfs=peak, clipping=clipping)
        assert dashboard._only_level_differs(first, snap)
        view = dashboard._DashboardView(snap, None, None, previous=view)
        console.print(view)
        reused = console.export_text(styles=True)
        assert view._cache[1].level_slots, "the layout should know where its level meter is"
        console.print(dashboard._DashboardView(snap, None, None))
        assert reused == console.export_text(styles=True)
        if width >= 50:
            assert f"{level:5.1f} dB" in reused


def test_a_new_estimate_or_a_level_shown_in_the_headline_lays_out_again():
    first = make_snapshot()
    assert not dashboard._only_level_differs(first, dataclasses.replace(first, confidence=0.7, level_dbfs=-20.0))
    assert not dashboard._only_level_differs(first, dataclasses.replace(first, overflows=8))
    silent = make_snapshot(state="silence", genre=None)
    assert not dashboard._only_level_differs(silent, dataclasses.replace(silent, level_dbfs=-70.0))
    console = Console(record=True, width=80, height=24, force_terminal=True, file=io.StringIO())
    view = dashboard._DashboardView(silent, None, None)
    console.print(view)
    console.export_text()
    console.print(dashboard._DashboardView(dataclasses.replace(silent, level_dbfs=-70.0), None, None, previous=view))
    assert "level -70.0 dBFS" in console.export_text()  # the headline's reading, not the previous one


def test_run_dashboard_pulls_snapshots_until_stop():
    stop = threading.Event()
    calls = []
    snapshots = [make_snapshot(estimates=i) for i in range(3)]

    def get_snapshot() -> Snapshot:
        calls.append(1)
        if len(calls) >= 6:
            stop.set()
        return snapshots[min(len(calls) // 2, 2)]

    console = live_console()
    run_in_thread(lambda: run_dashboard(get_snapshot, stop, refresh_per_second=50, console=console))
    assert len(calls) >= 6
    output = console.file.getvalue()
    assert "hiphop" in output and "estimates 2" in output
    assert output.count("\x1b[?25l") == 1 and output.rstrip().endswith("\x1b[?25h")  # cursor hidden, then restored


def test_run_dashboard_returns_when_stop_is_already_set():
    stop = threading.Event()
    stop.set()
    calls = []
    console = live_console()
    run_in_thread(lambda: run_dashboard(lambda: calls.append(1) or make_snapshot(), stop, console=console))
    assert 1 <= len(calls) <= 3
    assert "hiphop" in console.file.getvalue()


def test_run_dashboard_restores_terminal_and_reraises_keyboard_interrupt():
    calls = []

    def get_snapshot() -> Snapshot:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return make_snapshot()

    stdout = sys.stdout
    console = live_console()
    with pytest.raises(KeyboardInterrupt):
        run_dashboard(get_snapshot, threading.Event(), refresh_per_second=50, console=console)
    assert len(calls) == 3  # the cleanup redraw did not call back
    assert sys.stdout is stdout
    output = console.file.getvalue()
    assert output.rfind("\x1b[?25h") > output.rfind("\x1b[?25l") >= 0
    stop = threading.Event()
    stop.set()
    run_dashboard(make_snapshot, stop, console=console)  # the console is free for a new display


def test_run_dashboard_alternate_screen_is_left():
    stop = threading.Event()
    stop.set()
    console = live_console()
    run_in_thread(lambda: run_dashboard(make_snapshot, stop, console=console, screen=True))
    output = console.file.getvalue()
    assert "\x1b[?1049h" in output and output.rstrip().endswith("\x1b[?1049l")


def test_run_dashboard_rejects_bad_arguments():
    stop = threading.Event()
    with pytest.raises(TypeError, match="get_snapshot"):
        run_dashboard(None, stop)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="stop"):
        run_dashboard(make_snapshot, object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="refresh_per_second"):
        run_dashboard(make_snapshot, stop, refresh_per_second=0)


def test_radio_title_is_shown_escaped_and_shortened_before_the_source():
    radio = SourceInfo("radio", "jazz.example", 44100, 2)
    snap = make_snapshot(source=radio, title="Miles Davis - So What \x1b[31m (live)")
    text = record(snap)
    assert_fits(text, 80, 24)
    footer = text.splitlines()[-1]
    assert "jazz.example" in footer and "♪ Miles Davis" in footer and "\x1b" not in text
    narrow = record(dataclasses.replace(snap, title="x" * 300), width=60)
    assert_fits(narrow, 60, 24)
    assert "jazz.example" in narrow.splitlines()[-1]  # the title gives way first
    assert make_snapshot(title="So What").to_json_dict()["title"] == "So What"
