"""Tests for the streaming engine and the ``file`` command on real clips (no audio device needed).

Nothing here depends on which model is the default: engine results are compared with the offline
path (``classify_file``) on the same clip, except the two-clip switch test, which needs a pair of
clearly different genres.
"""

from __future__ import annotations

import json
import math
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import REPO_ROOT

from streamgenre.classify import classify_file
from streamgenre.cli import main
from streamgenre.engine import STAGES, Engine, FileBlockSource, startup_objects_frozen
from streamgenre.errors import ConfigError, DeviceError
from streamgenre.model import MAX_FRESH_FRAMES, GenreModel, load_model
from streamgenre.sources import FileSource, decode_file
from streamgenre.state import Snapshot, SourceInfo


@pytest.fixture(scope="module")
def model() -> GenreModel:
    return load_model(provider="cpu")


def run_file(model: GenreModel, path: Path, **kwargs) -> tuple[Engine, list[Snapshot]]:
    """Run a file through a threaded engine as fast as possible; return it and every estimate."""
    engine = Engine(model, FileBlockSource(path, model.mel_config.sample_rate), **kwargs)
    records = engine.subscribe(maxsize=100_000, lossless=True)
    engine.warmup()
    engine.start()
    assert engine.wait(120.0), "engine did not finish"
    assert engine.error is None, engine.error
    snaps = []
    while not records.empty():
        snaps.append(records.get_nowait())
    return engine, snaps


def test_first_estimate_within_one_second_and_provisional(model: GenreModel, gtzan_dir: Path) -> None:
    sr = model.mel_config.sample_rate
    engine = Engine(model, source_info=SourceInfo("file", "rock.00001", sr, 1))
    assert engine.snapshot().state == "warming" and engine.snapshot().genre is None
    published: list[tuple[float, Snapshot]] = []
    with FileSource(gtzan_dir / "rock" / "rock.00001.flac", sr, block_seconds=0.1) as source:
        for block in source:
            snap = engine.step(block)
            if engine.estimates == 0:
                assert engine.snapshot().state == "warming" and math.isfinite(engine.snapshot().level_dbfs)
            if snap is not None:
                published.append((engine.audio_seconds, snap))
            if engine.audio_seconds >= model.window_seconds + 1.0:
                break
    audio_at_first, first = published[0]
    assert audio_at_first <= 1.0 + 1e-9 and first.t <= audio_at_first
    assert first.provisional and first.genre in model.labels and first.state == "genre"
    flags = [snap.provisional for _, snap in published]
    full = flags.index(False)  # the first full window, after which nothing is provisional
    assert all(flags[:full]) and not any(flags[full:])
    assert published[full][1].t == pytest.approx(model.window_seconds, abs=0.01)
    assert [snap.estimates for _, snap in published] == list(range(1, len(published) + 1))
    assert np.diff([snap.t for _, snap in published]).min() > 0


def test_engine_agrees_with_offline_classification(model: GenreModel, gtzan_dir: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "hiphop_8s.wav"  # an excerpt keeps the test fast
    sf.write(path, decode_file(gtzan_dir / "hiphop" / "hiphop.00001.flac", 22050)[: 8 * 22050], 22050, subtype="FLOAT")
    prepares, prepared = [], []  # the engine's prepare calls; per full window, whether it came prepared
    prepare, predict = model.prepare_stream, model.predict_stream

    def counted_prepare(cache, frames, end_frame, next_end_frame=None):
        prepares.append(end_frame)
        return prepare(cache, frames, end_frame, next_end_frame)

    def checked_predict(windows, end_frames, caches, contiguous, outputs=None):
        for end, cache, whole in zip(end_frames, caches, contiguous, strict=True):
            if whole:  # only the newest blocks left: its first frames, last frames' partials and mid end are in
                start = int(end) - model.window_frames
                prepared.append((cache.partial_end, cache.left_start, cache.mid_start) == (end, start, start)
                                and 1 < cache.partial_fresh <= MAX_FRESH_FRAMES)
        return predict(windows, end_frames, caches, contiguous, outputs)

    monkeypatch.setattr(model, "prepare_stream", counted_prepare)
    monkeypatch.setattr(model, "predict_stream", checked_predict)
    engine, snaps = run_file(model, path)
    # Every full window but the first came prepared, from one prepare call in the block before it was due
    # (the engine's warm-up scores and prepares a few windows first; a few calls come while the first fills).
    windows = sum(not s.provisional for s in snaps)
    assert windows >= 10 and all(prepared[-(windows - 1):]), prepared
    assert len(prepares) <= windows + 8, (len(prepares), windows)
    offline_same_hop = classify_file(path, model, hop_seconds=engine.hop_seconds)
    # Same stages, same windows: the full windows' raw scores average to the offline clip scores.
    full = np.array([s.raw for s in snaps if not s.provisional])
    # Window by window too: the live engine prepares each window in the block before it is due, the
    # offline path computes it from the window alone.
    offline_full = [w for w in offline_same_hop.windows if not w.provisional]
    np.testing.assert_allclose(full, [w.scores for w in offline_full], atol=2e-5)
    expected = dict(offline_same_hop.genres)
    np.testing.assert_allclose(full.mean(axis=0), [expected[label] for label in model.labels], atol=1e-4)
    assert len(full) == len(offline_same_hop.windows)
    # The displayed (smoothed) genre is the offline verdict, for most of the clip and at its end.
    summary = engine.summary()
    offline = classify_file(path, model).genre
    assert summary["genre"] == offline and snaps[-1].genre == offline
    assert summary["estimates"] == len(snaps) and summary["overflows"] == 0
    assert summary["audio_seconds"] == pytest.approx(8.0, abs=0.01)


def test_two_clips_back_to_back_switch_once_near_the_boundary(
    model: GenreModel, gtzan_dir: Path, tmp_path: Path
) -> None:
    sr = 22050
    first = decode_file(gtzan_dir / "classical" / "classical.00000.flac", sr)
    second = decode_file(gtzan_dir / "reggae" / "reggae.00000.flac", sr)
    path = tmp_path / "classical_then_reggae.wav"
    sf.write(path, np.concatenate([first, second]), sr, subtype="FLOAT")
    boundary = len(first) / sr
    engine, snaps = run_file(model, path)  # default hop and smoother settings
    switches = engine.summary()["switches"]
    assert len(switches) == 1, switches
    assert 0.0 <= switches[0]["t"] - boundary <= 3.0, (boundary, switches)
    assert snaps[-1].flips == 1 and snaps[-1].last_switch_latency_s is not None
    before = {s.genre for s in snaps if s.t < boundary}
    after = {s.genre for s in snaps if s.t > switches[0]["t"]}
    assert before == {switches[0]["from"]} and after == {switches[0]["to"]}


def test_level_clipping_and_silence(model: GenreModel) -> None:
    sr = model.mel_config.sample_rate
    engine = Engine(model, source_info=SourceInfo("file", "synthetic", sr, 1))
    block = np.zeros(sr // 10, np.float32)
    engine.process_block(block)
    assert engine.snapshot().level_dbfs == -math.inf and not engine.snapshot().clipping
    block[::2], block[1::2] = 1.0, -1.0  # full scale: 0 dBFS RMS and peak
    engine.process_block(block)
    snap = engine.snapshot()
    assert snap.clipping and snap.peak_dbfs == pytest.approx(0.0) and snap.level_dbfs == pytest.approx(0.0)
    engine.reset()
    quiet = np.zeros(sr // 10, np.float32)
    states = [s.state for s in (engine.step(quiet) for _ in range(30)) if s is not None]
    assert states and set(states) == {"silence"} and engine.snapshot().genre is None


def test_hop_sets_the_estimate_rate(model: GenreModel, gtzan_dir: Path) -> None:
    sr = model.mel_config.sample_rate
    engine = Engine(model, source_info=SourceInfo("file", "x", sr, 1), hop_seconds=0.1)
    with FileSource(gtzan_dir / "pop" / "pop.00001.flac", sr) as source:
        for i, block in enumerate(source):
            engine.step(block)
            if i == 29:
                break
    snap = engine.snapshot()
    assert np.diff([t for t, _ in snap.history[-10:]]) == pytest.approx(engine.hop_seconds, abs=1e-9)
    frame_s = model.mel_config.hop_length / sr
    assert engine.hop_seconds == pytest.approx(round(0.1 / frame_s) * frame_s)  # whole mel frames
    assert len(snap.history) > 15
    assert set(snap.timings) == set(STAGES)
    assert snap.timings["smoother"].count == snap.timings["end_to_end"].count == snap.estimates


@pytest.mark.parametrize(
    ("hop", "match"), [(0.05, "at least one block"), (61.0, "at most 60"), (float("nan"), "number of seconds")]
)
def test_bad_hop_rejected(model: GenreModel, hop: float, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Engine(model, source_info=SourceInfo("file", "x", 16000, 1), hop_seconds=hop)


class _FailingSource:
    """A source whose device disappears after a few blocks."""

    overflows = 0
    input_overflows = 0
    exhausted = False

    def __init__(self, blocks: int) -> None:
        self.left = blocks
        self.closed = False

    def start(self) -> None:
        pass

    def read_block(self, timeout: float) -> tuple[np.ndarray, float] | None:
        if self.left == 0:
            raise DeviceError("input device 'test' stopped delivering audio (unplugged or disconnected?)")
        self.left -= 1
        return np.zeros(1600, np.float32), time.monotonic()

    def source_info(self) -> SourceInfo:
        return SourceInfo("device", "test", 16000, 1)

    def close(self) -> None:
        self.closed = True


class _SilentSource(_FailingSource):
    """A source that never delivers (a stalled device before the stall timeout)."""

    def read_block(self, timeout: float) -> tuple[np.ndarray, float] | None:
        time.sleep(timeout)
        return None


@pytest.mark.parametrize(("gaps", "most_fresh"), [((0.1,), 9), ((0.0, 0.2), 16)])
def test_windows_are_prepared_a_block_earlier_for_a_source_that_delivers_in_bursts(
        model: GenreModel, gaps: tuple[float, ...], most_fresh: int) -> None:
    """Blocks one period apart: each window is prepared in the block before it is due, leaving it at most
    one block (and the resampler's frame or two) of new frames. Blocks in pairs (as PulseAudio hands them
    to PortAudio): one block earlier, so that no pair brings both the preparation and the window."""
    engine = Engine(model, source_info=SourceInfo("device", "test", 16000, 1))
    engine.warmup()
    fresh = []
    predict = model.predict_stream

    def checked_predict(windows, end_frames, caches, contiguous, outputs=None):
        fresh.extend(cache.partial_fresh for cache, whole in zip(caches, contiguous, strict=True) if whole)
        return predict(windows, end_frames, caches, contiguous, outputs)

    rng = np.random.default_rng(3)
    captured = 100.0
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(model, "predict_stream", checked_predict)
        for k in range(100):
            captured += gaps[k % len(gaps)]
            engine.step((0.05 * rng.standard_normal(1600)).astype(np.float32), captured)
    assert len(fresh) >= 10
    assert fresh[0] == 1  # the first full window: nothing prepared yet
    assert all(1 < f <= most_fresh for f in fresh[1:]) and max(fresh) > most_fresh - 4, fresh


def test_latency_percentiles_describe_full_windows_not_the_provisional_first_estimates(
        model: GenreModel, gtzan_dir: Path) -> None:
    engine = Engine(model, source_info=SourceInfo("file", "test", 16000, 1))
    engine.warmup()
    audio = decode_file(gtzan_dir / "jazz" / "jazz.00000.flac", 16000)[: 8 * 16000]
    snaps = [engine.step(audio[i:i + 1600]) for i in range(0, len(audio) - 1599, 1600)]  # captured: now
    estimates = [s for s in snaps if s is not None]
    provisional = [s for s in estimates if s.provisional]
    full = [s for s in estimates if not s.provisional]
    assert provisional and len(full) >= 8
    first = provisional[-1].timings["end_to_end"]
    assert first.count == len(provisional)  # until a full window comes, the first estimates stand in
    last = full[-1].timings["end_to_end"]
    assert last.count == len(full) and last.max_ms < max(p.timings["end_to_end"].last_ms for p in provisional)
    assert full[-1].timings["model"].count == len(full)
    assert engine.summary()["latency_p99_ms"] == pytest.approx(last.p99_ms)


def test_startup_objects_are_frozen_while_running_and_returned_after() -> None:
    import gc

    assert gc.get_freeze_count() == 0
    with startup_objects_frozen():
        assert gc.get_freeze_count() > 1000  # modules, the model: out of the full collections' scans
        made = [[i] for i in range(10)]  # what the stream makes afterwards is still collected
        assert all(gc.is_tracked(m) for m in made) and gc.get_freeze_count() > len(made)
    assert gc.get_freeze_count() == 0


def test_worker_error_is_kept_and_source_closed(model: GenreModel) -> None:
    source = _FailingSource(blocks=5)
    engine = Engine(model, source)
    engine.start()
    assert engine.wait(10.0)
    assert isinstance(engine.error, DeviceError) and source.closed and engine.blocks == 5
    assert engine.stop(1.0)


def test_stop_is_bounded(model: GenreModel) -> None:
    source = _SilentSource(blocks=0)
    engine = Engine(model, source)
    engine.start()
    t0 = time.monotonic()
    assert engine.stop(3.0) and engine.done.is_set() and source.closed
    assert time.monotonic() - t0 < 3.0
    assert engine.error is None


def test_duration_limits_audio(model: GenreModel, gtzan_dir: Path) -> None:
    engine, snaps = run_file(model, gtzan_dir / "pop" / "pop.00001.flac", max_seconds=2.35)
    assert engine.audio_seconds == pytest.approx(2.35, abs=1e-3)
    assert snaps and snaps[-1].t <= 2.35


# ---------------------------------------------------------------------------------- the command line
def test_file_command_json_records(gtzan_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = gtzan_dir / "rock" / "rock.00001.flac"
    assert main(["file", str(path), "--json", "--duration", "4", "--provider", "cpu"]) == 0
    captured = capsys.readouterr()
    records = [json.loads(line) for line in captured.out.splitlines()]
    assert len(records) >= 6  # from 0.9 s every 0.5 s hop (and the full window at ~3 s) up to 4 s
    for key in (
        "genre",
        "confidence",
        "provisional",
        "overflows",
        "latency_ms",
        "t",
        "state",
        "scores",
        "top_tags",
        "timings_ms",
        "flips_per_minute",
        "switch_latency_s",
        "model",
        "provider",
        "source",
    ):
        assert key in records[0]
    assert records[0]["provisional"] is True and records[-1]["provisional"] is False
    assert records[0]["t"] <= 1.0 and records[-1]["t"] <= 4.0
    assert np.diff([r["t"] for r in records]).min() > 0
    assert all(r["overflows"] == 0 and r["latency_ms"] > 0 for r in records)
    assert records[-1]["source"]["kind"] == "file" and records[-1]["genre"] in records[-1]["scores"]
    assert set(records[-1]["timings_ms"]) == set(STAGES)
    summary = captured.err.strip().splitlines()
    assert len(summary) == 1 and summary[0].startswith(f"streamgenre: 4.0 s of audio, {len(records)} estimates")


def test_file_command_plain_lines(gtzan_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = gtzan_dir / "rock" / "rock.00001.flac"
    assert main(["file", str(path), "--duration", "2", "--provider", "cpu"]) == 0  # stdout not a TTY
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) >= 2 and all("latency" in line and "dBFS" in line for line in lines)
    assert "provisional" in lines[0]


def test_file_command_with_dashboard(
    gtzan_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import streamgenre.live

    monkeypatch.setattr(streamgenre.live, "_ui_wanted", lambda args: True)  # as if stdout were a terminal
    assert main(["file", str(gtzan_dir / "rock" / "rock.00001.flac"), "--duration", "2", "--provider", "cpu"]) == 0
    captured = capsys.readouterr()
    frame = captured.out  # the dashboard's last frame (rich draws it once when not on a terminal)
    assert re.search(r"estimates \d", frame) and "CPUExecutionProvider" in frame
    assert captured.err.startswith("streamgenre: 2.0 s of audio, ") and "flips/min" in captured.err


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--hop", "0.05"], "--hop must be at least one block (0.1 s), got 0.05"),
        (["--hop", "inf"], "--hop must be a finite number"),
        (["--duration", "0"], "--duration must be a positive number"),
        (["--threads", "0"], "--threads must be positive"),
    ],
)
def test_bad_options_are_one_line(
    gtzan_dir: Path, capsys: pytest.CaptureFixture[str], argv: list[str], match: str
) -> None:
    assert main(["file", str(gtzan_dir / "rock" / "rock.00001.flac"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and match in err


def test_missing_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["file", str(tmp_path / "nope.flac"), "--no-ui"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such file" in err and "nope.flac" in err


def test_ctrl_c_ends_a_realtime_file_cleanly(gtzan_dir: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "streamgenre",
        "file",
        str(gtzan_dir / "rock" / "rock.00001.flac"),
        "--realtime",
        "--no-ui",
        "--provider",
        "cpu",
    ]
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 60.0)  # the first estimate, after warm-up
        assert ready, "no estimate within 60 s"
        first = proc.stdout.readline()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    assert "provisional" in first
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and "flips/min" in err
