"""Smoke tests of the benchmark building blocks on tiny inputs (no timing assertions: numbers go in bench/)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT, require_shared

from bench import __main__ as bench_main
from bench import device, e2e, scale, startup, throughput
from bench.common import Row, report
from streamgenre.engine import Engine
from streamgenre.model import load_model

ROW_KEYS = {"metric", "value", "unit", "target", "met"}


@pytest.fixture(scope="module")
def model():
    return load_model(threads=1)


@pytest.fixture(scope="module")
def replay_audio():
    require_shared("gtzan")
    return e2e.load_replay_audio(4.0)[0]


def check_rows(rows: list[dict]) -> None:
    assert rows
    for row in rows:
        assert ROW_KEYS <= set(row)
        assert isinstance(row["metric"], str) and row["metric"]
        assert row["value"] is None or isinstance(row["value"], (int, float))
        if row["target"] is None:
            assert row["met"] is None
        else:
            assert row["met"] in (True, False) or row["value"] is None


def test_report_writes_the_json_schema(tmp_path):
    path = tmp_path / "out.json"
    report("t", [Row("a", 1.5, "ms", "<= 2 ms", True), Row("b", None, "x")], path, {"extra": 1})
    doc = json.loads(path.read_text())
    assert {"platform", "cpu", "cores"} <= set(doc["machine"])
    check_rows(doc["rows"])
    assert doc["rows"][1]["target"] is None and doc["rows"][1]["met"] is None
    assert doc["extra"] == 1


def test_finite_makes_strict_json():
    doc = bench_main.finite({"a": [float("nan"), 1.0, float("inf")], "b": {"c": float("-inf")}, "d": "x"})
    assert doc == {"a": [None, 1.0, None], "b": {"c": None}, "d": "x"}
    json.dumps(doc, allow_nan=False)


def test_bench_command_runs_one_section_and_writes_json(tmp_path):
    require_shared("musicnn_ref")
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "frontend", "--json", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert doc["machine"]["mode"] == "quick" and "loadavg_start" in doc["machine"]
    check_rows(doc["rows"])
    assert {r["section"] for r in doc["rows"]} == {"frontend"}
    assert doc["sections"]["frontend"]["returncode"] == 0
    assert "targets met" in proc.stdout


def test_bench_command_rejects_unknown_sections(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--only", "nosuch", "--json", str(tmp_path / "x.json")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "unknown section" in proc.stderr


def test_failed_section_becomes_a_row(tmp_path):
    section = bench_main.Section("broken", "bench.nosuchmodule", (), (), 60)
    rows, record = bench_main.run_section(section, quick=True, workdir=tmp_path)
    assert record["returncode"] != 0
    assert len(rows) == 1 and rows[0]["value"] is None and "FAILED" in rows[0]["note"]


def test_replay_capture_validates_input():
    with pytest.raises(TypeError):
        e2e.ReplayCapture(np.zeros(48000, np.float32))
    with pytest.raises(ValueError):
        e2e.ReplayCapture(np.zeros(10, np.int16))
    with pytest.raises(ValueError):
        e2e.ReplayCapture(np.zeros(48000, np.int16), speed=0.0)


def test_replay_source_feeds_the_real_engine(model, replay_audio):
    capture = e2e.ReplayCapture(replay_audio, speed=50.0)
    engine = Engine(model, capture)
    records = engine.subscribe()
    engine.warmup()
    engine.start()
    assert engine.wait(60.0)
    assert engine.error is None
    assert capture.exhausted and capture.callbacks == capture.total_blocks
    assert engine.blocks == capture.total_blocks  # every replayed block reached the worker
    assert capture.overflows == 0
    assert records.qsize() == engine.estimates > 0
    snap = records.get_nowait()
    assert snap.source.kind == "device" and snap.source.channels == e2e.DEVICE_CHANNELS
    assert snap.timings["end_to_end"].last_ms >= 0


def test_replay_collects_latencies_cpu_and_rss(model, replay_audio):
    result = e2e.replay(model, replay_audio, speed=20.0)
    assert result.estimates == len(result.latency_ms) > 0
    assert set(result.stages_ms) == {"resample", "mel", "model", "smoother"}
    assert all(len(v) == result.estimates for v in result.stages_ms.values())
    assert result.audio_seconds == pytest.approx(len(replay_audio) // 4800 * 0.1)
    assert result.cpu_process_s > 0 and result.cpu_threads_s["worker"] > 0
    assert np.isfinite(result.rss_mb).all() and result.rss_mb.size >= 2
    rows = e2e.latency_rows(result, "test", True, "")
    check_rows([r.__dict__ for r in rows])
    assert "model p50" in rows[1].note


def test_lossless_replay_loops_without_dropping(model, replay_audio):
    result = e2e.replay(model, replay_audio, lossless=True, loops=3, collect=False)
    assert result.overflows == 0
    assert result.audio_seconds == pytest.approx(3 * (len(replay_audio) // 4800) * 0.1)
    assert result.estimates == 0  # nothing kept per estimate in memory runs


def test_e2e_main_with_minimal_durations(tmp_path):
    require_shared("gtzan")
    out, png = tmp_path / "e2e.json", tmp_path / "lat.png"
    assert (
        e2e.main(
            [
                "--accel-seconds",
                "2",
                "--realtime-seconds",
                "1.5",
                "--alt-seconds",
                "0",
                "--memory-hours",
                "0.001",
                "--json",
                str(out),
                "--png",
                str(png),
            ]
        )
        == 0
    )
    doc = json.loads(out.read_text())
    check_rows(doc["rows"])
    metrics = {r["metric"] for r in doc["rows"]}
    assert {
        "e2e latency real time, p99",
        "CPU share of one core, live with the dashboard (all threads)",
        "CPU share of one core, live --no-ui (all threads but the dashboard's)",
        "RSS growth over a long run",
    } <= metrics
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.audio
def test_device_main_measures_the_real_command(tmp_path):
    """Both real-device runs, very short; without PulseAudio the one row says why it was skipped (a
    failure under STREAMGENRE_REQUIRE_DATA=1, as in CI, where .ci/run installs it)."""
    require_shared("gtzan")
    out = tmp_path / "device.json"
    assert device.main(["--seconds", "3", "--warm", "5", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    check_rows(doc["rows"])
    first = doc["rows"][0]
    if first["value"] is None:
        assert first["note"].startswith("skipped: ")
        if os.environ.get("STREAMGENRE_REQUIRE_DATA") == "1":
            pytest.fail(f"real-device benchmark {first['note']}", pytrace=False)
        pytest.skip(first["note"])
    values = {row["metric"]: row["value"] for row in doc["rows"]}
    assert 0 < values["CPU share of one core, `streamgenre live --no-ui --json` on a real device"] < 100
    assert values["overflows on a real device"] == 0
    assert doc["latency_ms"] and min(doc["latency_ms"]) > 0


def test_first_line_seconds(tmp_path):
    env = startup._env(None)
    seconds, line = startup.first_line_seconds([sys.executable, "-c", "print('hello', flush=True)"], env)
    assert line.strip() == "hello" and seconds > 0
    with pytest.raises(RuntimeError, match="without output"):
        startup.first_line_seconds([sys.executable, "-c", "import sys; sys.exit(3)"], env)
    with pytest.raises(RuntimeError, match="no output within"):
        startup.first_line_seconds([sys.executable, "-c", "import time; time.sleep(30)"], env, timeout=0.5)


def test_startup_main_quick(tmp_path):
    require_shared("gtzan")
    out = tmp_path / "startup.json"
    assert startup.main(["--quick", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    check_rows(doc["rows"])
    assert set(doc["phases_s"]) == {
        "import streamgenre",
        "import onnx + onnxruntime",
        "load_model",
        "first window",
        "engine warm-up",
        "first estimate",
    }


def test_throughput_main_one_clip(tmp_path):
    require_shared("gtzan")
    out = tmp_path / "tp.json"
    assert throughput.main(["--clips", "1", "--no-parallel", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    check_rows(doc["rows"])
    assert doc["clips"] == 1 and doc["windows"] > 0 and 0 < doc["model_s"] <= doc["wall_s"]


def test_scale_search_bisects_to_the_capacity(monkeypatch):
    capacity = 37

    def fake_trial(model, server, n, warmup_s, measure_s):
        return scale.Trial(
            n,
            n <= capacity,
            "" if n <= capacity else "over capacity",
            1.0,
            1.0,
            0.0,
            0.0,
            0,
            n,
            0.5,
            n,
            1,
            0.5,
            1.0,
            2.0,
        )

    monkeypatch.setattr(scale, "run_trial", fake_trial)
    trials = scale.search(None, None, start=10, limit=160, max_trials=10, warmup_s=0, measure_s=0, log=lambda m: None)
    tried = [t.feeds for t in trials]
    assert tried[:3] == [10, 20, 40]
    best = max(t.feeds for t in trials if t.kept_up)
    assert capacity - capacity // 8 <= best <= capacity
    assert len(trials) <= 10
    # bounded by max_trials and by the limit
    assert len(scale.search(None, None, 10, 160, 2, 0, 0, log=lambda m: None)) == 2
    assert [t.feeds for t in scale.search(None, None, 10, 20, 5, 0, 0, log=lambda m: None)] == [10, 20]


def test_scale_main_tiny_trial(tmp_path):
    require_shared("gtzan")
    out = tmp_path / "scale.json"
    assert (
        scale.main(
            [
                "--start",
                "2",
                "--limit",
                "2",
                "--max-trials",
                "1",
                "--warmup",
                "3",
                "--measure",
                "2",
                "--stream-seconds",
                "4",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    doc = json.loads(out.read_text())
    check_rows(doc["rows"])
    (trial,) = doc["trials"]
    assert trial["feeds"] == 2 and trial["streaming"] == 2 and trial["dropped_blocks"] == 0
    assert trial["kept_up"] == (trial["why_not"] == "")


def test_results_dir_is_inside_the_repo():
    assert Path(bench_main.DEFAULT_JSON).parent == REPO_ROOT / "bench" / "results"
