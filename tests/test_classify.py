"""Offline classification is the streaming path run over a file; the CLI around it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from conftest import REPO_ROOT, require_shared

from streamgenre.classify import WindowScorer, classify_file, iter_audio_files, summarize
from streamgenre.errors import AudioDecodeError
from streamgenre.features import StreamingMel
from streamgenre.model import load_model
from streamgenre.sources import decode_file
from streamgenre.windows import MelWindower


@pytest.fixture(scope="module")
def model():
    return load_model(provider="cpu", threads=2)


def replay_block_by_block(path, model, seed: int):
    """The same file pushed through the live stages in random, hop-unaligned block sizes."""
    cfg = model.mel_config
    audio = decode_file(path, cfg.sample_rate)
    mel, windower = StreamingMel(cfg), MelWindower(model.window_frames, cfg.n_mels, model.window_frames)
    scorer = WindowScorer(model)
    rng = np.random.default_rng(seed)
    results, position = [], 0
    while position < len(audio):
        size = int(rng.integers(1, 5000))
        batch = windower.process(mel.process(audio[position:position + size]))
        position += size
        for i in range(len(batch)):  # one window per model call, as live does
            results += scorer.score(batch.windows[i:i + 1], batch.end_frames[i:i + 1], batch.provisional[i:i + 1])
    tail = windower.flush_partial()
    results += scorer.score(tail.windows, tail.end_frames, tail.provisional)
    return summarize(str(path), len(audio) / cfg.sample_rate, model, results)


@pytest.mark.parametrize("relative", ["gtzan/jazz/jazz.00000.flac", "fixtures/music/TRWJAZW128F42760DD_test.mp3",
                                      "fixtures/music/madmom_sample.wav"])
def test_offline_result_equals_block_by_block_streaming_replay(model, relative):
    path = require_shared(*relative.split("/"))
    offline = classify_file(path, model)
    replay = replay_block_by_block(path, model, seed=len(relative))
    assert offline.genre == replay.genre
    assert len(offline.windows) == len(replay.windows) >= 1
    for a, b in zip(offline.windows, replay.windows, strict=True):
        assert (a.start, a.end, a.provisional, a.genre) == (b.start, b.end, b.provisional, b.genre)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
    np.testing.assert_allclose([s for _, s in offline.genres], [s for _, s in replay.genres], atol=1e-5)


def test_windows_tile_the_file_and_short_files_get_one_provisional_window(model, music_fixtures):
    result = classify_file(music_fixtures / "TRWJAZW128F42760DD_test.mp3", model)
    assert len(result.windows) == 10 and not any(w.provisional for w in result.windows)
    assert result.windows[0].start == 0.0 and result.windows[1].start == pytest.approx(result.windows[0].end, abs=0.02)
    short = classify_file(music_fixtures / "madmom_sample.wav", model)  # 2.8 s < one 3 s window
    assert len(short.windows) == 1 and short.windows[0].provisional
    assert short.genre in model.labels and 0 < short.confidence <= 1


def test_overlapping_hop_reuses_work_and_gives_the_full_computation(model, music_fixtures):
    path = music_fixtures / "TRWJAZW128F42760DD_test.mp3"
    result = classify_file(path, model, hop_seconds=1.0)  # incremental: 62-frame hop < 187-frame window
    assert len(result.windows) > 20
    cfg = model.mel_config
    mel = StreamingMel(cfg).process(decode_file(path, cfg.sample_rate))
    batch = MelWindower(model.window_frames, cfg.n_mels, round(1.0 * cfg.sample_rate / cfg.hop_length)).process(mel)
    full = WindowScorer(model).score(batch.windows, batch.end_frames, batch.provisional)  # no reuse
    assert [w.end for w in full] == [w.end for w in result.windows]
    np.testing.assert_allclose([w.scores for w in full], [w.scores for w in result.windows], atol=2e-5)


def test_too_short_file_is_a_clear_error(model, tmp_path):
    path = tmp_path / "tiny.wav"
    sf.write(path, np.zeros(100, np.float32), 16000)
    with pytest.raises(AudioDecodeError, match="shorter than one analysis frame"):
        classify_file(path, model)


def test_iter_audio_files_recurses_sorted_and_keeps_explicit_files(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "a").mkdir()
    for name in ("b/2.mp3", "a/1.flac", "a/notes.txt", "a/x.WAV"):
        (tmp_path / name).write_bytes(b"")
    found = [p.relative_to(tmp_path).as_posix() for p in iter_audio_files([tmp_path, tmp_path / "a/notes.txt"])]
    assert found == ["a/1.flac", "a/x.WAV", "b/2.mp3", "a/notes.txt"]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "streamgenre", *args], capture_output=True, text=True,
                          timeout=300, cwd=REPO_ROOT, env=env)


def test_cli_json_lines_skip_unreadable_files_and_exit_code_says_so(music_fixtures, tmp_path):
    broken = tmp_path / "broken.mp3"
    broken.write_bytes(b"\x00garbage" * 100)
    good = music_fixtures / "sorohanro_-_solo-trumpet-06.ogg"
    proc = run_cli("classify", "--json", "--timeline", str(good), str(broken), str(tmp_path / "missing.flac"))
    assert proc.returncode == 1
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(lines) == 1
    assert lines[0]["path"] == str(good) and lines[0]["genre"] and 0 < lines[0]["confidence"] <= 1
    assert lines[0]["timeline"] and {"start", "end", "genre", "confidence", "provisional"} <= set(
        lines[0]["timeline"][0])
    assert "broken.mp3" in proc.stderr and "missing.flac" in proc.stderr and "Traceback" not in proc.stderr
    assert "2 of 3 files could not be classified" in proc.stderr


def test_cli_csv_and_table(music_fixtures):
    proc = run_cli("classify", "--csv", str(music_fixtures / "madmom_sample2.wav"))
    assert proc.returncode == 0, proc.stderr
    header, row = proc.stdout.strip().splitlines()
    assert header.startswith("path,genre,confidence") and row.split(",")[1]
    table = run_cli("classify", str(music_fixtures / "madmom_sample2.wav"))
    assert table.returncode == 0 and "madmom_sample2.wav" in table.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["classify", "--model", "/nonexistent.onnx", "x.wav"], "model file not found"),
    (["classify", "--hop", "-1", "x.wav"], "--hop must be positive"),
    (["classify", "--provider", "cuda", "x.wav"], "--provider cuda"),
])
def test_cli_bad_options_are_one_line_errors(args, message):
    proc = run_cli(*args)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_cli_empty_folder(tmp_path):
    proc = run_cli("classify", str(tmp_path))
    assert proc.returncode == 2 and "no audio files" in proc.stderr


def test_info_reports_provider_in_use():
    proc = run_cli("info", "--provider", "cpu")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["provider"] == "CPUExecutionProvider" and info["mel_config"]["n_mels"] == 96
