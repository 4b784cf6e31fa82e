"""training/: data layouts, splits, feature cache, the three architectures end to end, evaluation, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import REPO_ROOT, require_shared

from streamgenre.features import MelConfig, compute_mel
from streamgenre.model import load_model
from streamgenre.sources import decode_file
from streamgenre.windows import MelWindower
from training import evaluate as evaluate_cli
from training import train as train_cli
from training.data import discover_dataset, parse_gtzan_id
from training.errors import TrainingError
from training.featcache import FeatureCache, load_features
from training.metrics import ClipPrediction, score_predictions
from training.nets import SEED_MEL
from training.scratch import eval_windows
from training.splits import check_trainable, make_split

torch = pytest.importorskip("torch")

GTZAN = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
SHIPPED = REPO_ROOT / "models" / "gtzan_musicnn.onnx"


def _excerpt(source: Path, target: Path, seconds: float, fmt: str | None = None) -> Path:
    """Write the first ``seconds`` of a shared clip to ``target`` (tmp only; never committed)."""
    audio, rate = sf.read(source, dtype="float32", frames=int(22050 * seconds))
    target.parent.mkdir(parents=True, exist_ok=True)
    sf.write(target, audio, rate, format=fmt)
    return target


@pytest.fixture(scope="module")
def gtzan() -> Path:
    return require_shared("gtzan")


@pytest.fixture(scope="module")
def tiny(gtzan: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 classes x 2 clips of 8 s, <label>/<files> layout."""
    root = tmp_path_factory.mktemp("tiny")
    for genre in ("blues", "classical"):
        for n in (1, 2):
            _excerpt(gtzan / genre / f"{genre}.0000{n}.flac", root / genre / f"{genre}.0000{n}.wav", 8.0)
    return root


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


# --- data layouts -------------------------------------------------------------------------------


def test_parse_gtzan_ids():
    assert parse_gtzan_id("blues.00012.wav") == ("blues", 12)
    assert parse_gtzan_id("hiphop.00099") == ("hiphop", 99)
    assert parse_gtzan_id("My Song.mp3") is None
    assert parse_gtzan_id("blues.12.wav") is None


def test_shared_gtzan_folder_is_found_with_ids_and_non_audio_folder_ignored(gtzan):
    dataset = discover_dataset(gtzan)
    assert dataset.layout == "folders" and dataset.labels == GTZAN
    assert len(dataset) == 100 and set(dataset.counts().values()) == {10}
    assert [c.number for c in dataset.clips[:10]] == list(range(10))
    assert dataset.clips[12].clip_id == "classical.00002"
    assert any("splits" in line for line in dataset.ignored)
    small = discover_dataset(gtzan, max_clips_per_class=2)
    assert len(small) == 20 and {c.number for c in small.clips} == {0, 1}


def test_original_kaggle_and_custom_layouts(gtzan, tmp_path):
    source = gtzan / "jazz" / "jazz.00003.flac"
    original = tmp_path / "orig"
    kaggle = tmp_path / "kaggle"
    custom = tmp_path / "mine"
    for genre in ("jazz", "rock"):
        _excerpt(source, original / "genres" / genre / f"{genre}.00003.au", 1.0, "AU")
        _excerpt(source, kaggle / "Data" / "genres_original" / genre / f"{genre}.00003.wav", 1.0)
    _excerpt(source, custom / "calm" / "album" / "track one.ogg", 1.0, "OGG")
    _excerpt(source, custom / "loud" / "b.flac", 1.0)
    (custom / "notes").mkdir()
    (custom / "notes" / "readme.txt").write_text("not audio")
    a = discover_dataset(original)
    assert (a.layout, a.labels, [c.clip_id for c in a.clips]) == (
        "gtzan-original",
        ("jazz", "rock"),
        ["jazz.00003", "rock.00003"],
    )
    assert a.clips[0].path.suffix == ".au" and a.clips[0].number == 3
    b = discover_dataset(kaggle)
    assert b.layout == "gtzan-kaggle" and b.labels == ("jazz", "rock")
    c = discover_dataset(custom)
    assert c.labels == ("calm", "loud")
    assert [clip.clip_id for clip in c.clips] == ["calm/album/track one", "loud/b"]
    assert c.clips[0].number is None and any("notes" in line for line in c.ignored)


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")


def _single_class(root: Path) -> None:
    _touch(root / "only" / "a.wav")


def _empty_class(root: Path) -> None:
    _touch(root / "a" / "x.wav")
    (root / "b").mkdir()


def _no_class_folder(root: Path) -> None:
    _touch(root / "x.wav")


def _same_clip_twice(root: Path) -> None:
    for name in ("a/blues.00001.wav", "a/blues.00001.au", "b/c.wav"):
        _touch(root / name)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (None, "does not exist"),
        (_single_class, "only one class"),
        (_empty_class, "is empty"),
        (_no_class_folder, "no class folders"),
        (_same_clip_twice, "two files are clip blues.00001"),
    ],
)
def test_bad_folders_are_one_line_errors(tmp_path, build, message):
    root = tmp_path / "data"
    if build is not None:
        build(root)
    with pytest.raises(TrainingError, match=message) as info:
        discover_dataset(root)
    assert "\n" not in str(info.value)


# --- splits -------------------------------------------------------------------------------------


def test_fault_filtered_split_counts_on_the_shared_clips(gtzan):
    plan = make_split(discover_dataset(gtzan), "fault-filtered")
    (fold,) = plan.folds
    assert (len(fold.train), len(fold.valid), len(fold.test), len(plan.excluded)) == (38, 51, 4, 7)
    assert not plan.cross_validated and "38/51/4" in plan.description
    # Only ids 0-9 are here: blues, classical and country have no fault-filtered training clips.
    with pytest.raises(TrainingError, match=r"\['blues', 'classical', 'country'\] have no training clips"):
        check_trainable(plan, discover_dataset(gtzan))
    check_trainable(make_split(discover_dataset(gtzan), "grouped-kfold"), discover_dataset(gtzan))
    lists = {
        p: (REPO_ROOT / "training" / "splits" / "fault_filtered" / f"{p}.txt").read_text().split()
        for p in ("train", "valid", "test")
    }
    assert [len(v) for v in lists.values()] == [443, 197, 290]


def test_grouped_kfold_is_contiguous_and_never_shares_a_clip(gtzan):
    dataset = discover_dataset(gtzan)
    plan = make_split(dataset, "grouped-kfold", folds=2)
    assert plan.cross_validated and [f.name for f in plan.folds] == ["fold1", "fold2"]
    tested = []
    for fold, ids in zip(plan.folds, (set(range(5)), set(range(5, 10))), strict=True):
        assert not set(fold.train) & set(fold.test)
        assert {dataset.clips[i].number for i in fold.test} == ids
        assert {dataset.clips[i].number for i in fold.train} == set(range(10)) - ids
        tested += fold.test
    assert sorted(tested) == list(range(100))
    three = make_split(dataset, "grouped-kfold", folds=3)
    assert [sorted({dataset.clips[i].number for i in f.test}) for f in three.folds] == [
        [0, 1, 2, 3],
        [4, 5, 6],
        [7, 8, 9],
    ]
    with pytest.raises(TrainingError, match="needs at least 11 clips per class"):
        make_split(dataset, "grouped-kfold", folds=11)


def test_random_split_is_stratified_disjoint_and_seeded(gtzan):
    dataset = discover_dataset(gtzan)
    a = make_split(dataset, "random", seed=3).folds[0]
    assert a == make_split(dataset, "random", seed=3).folds[0] != make_split(dataset, "random", seed=4).folds[0]
    assert (len(a.train), len(a.valid), len(a.test)) == (70, 10, 20)
    assert not (set(a.train) & set(a.test) or set(a.train) & set(a.valid) or set(a.valid) & set(a.test))
    labels = dataset.label_indices()
    assert sorted(labels[i] for i in a.test) == sorted(list(range(10)) * 2)


def test_fault_filtered_needs_gtzan_names(tmp_path, gtzan):
    for label in ("a", "b"):
        _excerpt(gtzan / "pop" / "pop.00001.flac", tmp_path / label / "song.wav", 0.5)
    with pytest.raises(TrainingError, match="needs GTZAN file names"):
        make_split(discover_dataset(tmp_path), "fault-filtered")
    with pytest.raises(TrainingError, match="unknown split"):
        make_split(discover_dataset(tmp_path), "leaky")


# --- features -----------------------------------------------------------------------------------


def test_feature_cache_is_the_live_front_end_and_refuses_another_config(tiny, tmp_path):
    clip = tiny / "blues" / "blues.00001.wav"
    store = FeatureCache(tmp_path, SEED_MEL)
    first = store.load(clip)
    assert store.entry(clip).is_file()
    np.testing.assert_array_equal(first.mel, compute_mel(decode_file(clip, 22050), SEED_MEL))
    np.testing.assert_array_equal(store.load(clip).mel, first.mel)
    # An entry holding another MelConfig's features is an error, never silently used.
    other = MelConfig(sample_rate=22050, n_fft=2048, hop_length=512, n_mels=96, log="db")
    forged = FeatureCache(tmp_path, other)
    forged.entry(clip).parent.mkdir(parents=True, exist_ok=True)
    store.entry(clip).rename(forged.entry(clip))
    with pytest.raises(TrainingError, match=r"different MelConfig \(n_mels 128 != 96\)"):
        forged.load(clip)
    features = load_features(discover_dataset(tiny), SEED_MEL, 4, tmp_path)
    with pytest.raises(TrainingError, match="cannot be reused"):
        features.require_config(other)


def test_corrupt_silent_and_short_clips_are_skipped_and_reported(tiny, tmp_path):
    root = tmp_path / "data"
    for label in ("blues", "classical"):
        (root / label).mkdir(parents=True)
        (root / label / "good.wav").symlink_to(tiny / label / f"{label}.00001.wav")
    (root / "blues" / "jazz.00054.wav").write_bytes(b"RIFF" + bytes(range(256)) * 8)  # corrupt, as on Kaggle
    sf.write(root / "blues" / "silent.wav", np.zeros(22050 * 5, np.float32), 22050)
    sf.write(root / "classical" / "short.wav", 0.1 * np.ones(2000, np.float32), 22050)
    features = load_features(discover_dataset(root), SEED_MEL, 128, tmp_path / "cache")
    assert len(features.dataset) == 2
    reasons = {Path(p).name: r for p, r in features.skipped}
    assert reasons["jazz.00054.wav"].startswith("unreadable") and reasons["silent.wav"].startswith("silent")
    assert reasons["short.wav"].startswith("too short")
    (root / "classical" / "good.wav").unlink()
    with pytest.raises(TrainingError, match="class 'classical' has no usable clips"):
        load_features(discover_dataset(root), SEED_MEL, 128, tmp_path / "cache")


def test_evaluation_windows_are_the_runtime_windows(tiny):
    mel = compute_mel(
        decode_file(tiny / "blues" / "blues.00001.wav", 16000),
        MelConfig(sample_rate=16000, n_fft=512, hop_length=256, n_mels=96),
    )
    windower = MelWindower(187, 96, 187)
    streamed = np.concatenate([windower.process(mel[i : i + 50]).windows for i in range(0, len(mel), 50)])
    np.testing.assert_array_equal(eval_windows(mel, 187), streamed)


def test_metrics_track_vote_window_and_per_class():
    a = np.array([[0.9, 0.1], [0.4, 0.6], [0.45, 0.55]])  # mean picks 0, the vote picks 1
    b = np.array([[0.2, 0.8]])
    scores = score_predictions([ClipPrediction("a", 0, a), ClipPrediction("b", 1, b)], ("x", "y"))
    assert scores["track_accuracy"] == 1.0 and scores["track_accuracy_vote"] == 0.5
    assert scores["window_accuracy"] == 0.5 and scores["confusion"] == [[1, 0], [0, 1]]
    assert scores["per_class"]["x"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}


# --- training end to end --------------------------------------------------------------------------


@pytest.mark.parametrize(("arch", "epochs"), [("seed", 1), ("cnn", 2), ("musicnn-head", 5)])
def test_each_arch_trains_exports_and_runs_in_the_runtime(tiny, cache, tmp_path, arch, epochs):
    out = tmp_path / f"{arch}.onnx"
    report = tmp_path / "report"
    argv = [
        "--data",
        str(tiny),
        "--arch",
        arch,
        "--out",
        str(out),
        "--epochs",
        str(epochs),
        "--cache",
        str(cache),
        "--report",
        str(report),
        "--quiet",
        "--seed",
        "7",
    ]
    assert train_cli.main(argv) == 0
    model = load_model(out, provider="cpu", threads=2)
    assert model.labels == ("blues", "classical") and model.genre_kind == "softmax"
    windows = np.random.default_rng(0).normal(size=(3, model.window_frames, model.mel_config.n_mels))
    out_arrays = model.predict(windows.astype(np.float32))
    np.testing.assert_allclose(out_arrays["genre"].sum(axis=1), 1.0, rtol=1e-5)
    assert out_arrays["genre"].shape == (3, 2)
    if arch == "musicnn-head":
        assert out_arrays["tags"].shape == (3, 50) and out_arrays["embedding"].shape == (3, 200)
        assert model.contract.tag_output == "tags" and model.contract.provenance["license"].startswith("ISC")
    else:
        assert model.mel_config == SEED_MEL and model.window_frames == (4 if arch == "seed" else 128)
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["clips"] == 4 and [f["name"] for f in metrics["folds"]] == ["fold1", "fold2"]
    assert model.contract.metrics["track_accuracy"] == metrics["track_accuracy"]
    assert model.contract.metrics["trained_on_clips"] == 4
    assert json.loads((report / "command.json").read_text())["seed"] == 7
    for name in ("confusion.png", "learning_curves.png", "report.md", "predictions.csv"):
        assert (report / name).stat().st_size > 0
    assert "| blues |" in (report / "report.md").read_text()


def test_resume_continues_exactly_and_refuses_other_settings(tmp_path):
    from training.fit import RunContext, train_epochs

    def run(stop_after: int | None, resume: bool):
        torch.manual_seed(0)
        module = torch.nn.Linear(3, 2)
        optimizer = torch.optim.Adam(module.parameters(), lr=0.1)
        x = torch.randn(16, 3)

        def epoch(index: int, rng: np.random.Generator) -> dict[str, float]:
            if stop_after is not None and index == stop_after:
                raise KeyboardInterrupt
            noise = torch.from_numpy(rng.normal(size=(16, 2)).astype(np.float32))
            loss = ((module(torch.nn.functional.dropout(x, 0.5)) - noise) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return {"train_loss": loss.item()}

        ctx = RunContext(tmp_path / "ck", resume, None)
        return train_epochs("run", module, optimizer, 4, epoch, None, False, 5, "settings-a", ctx)

    whole = run(None, False).module.weight.detach().clone()
    with pytest.raises(KeyboardInterrupt):
        run(2, False)
    resumed = run(None, True)
    torch.testing.assert_close(resumed.module.weight, whole, rtol=0, atol=0)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    with pytest.raises(TrainingError, match="other data or settings"):
        ctx = RunContext(tmp_path / "ck", True, None)
        module = torch.nn.Linear(3, 2)
        train_epochs(
            "run",
            module,
            torch.optim.Adam(module.parameters()),
            4,
            lambda e, r: {"train_loss": 0.0},
            None,
            False,
            5,
            "settings-b",
            ctx,
        )


def test_cli_resume_reuses_finished_runs_and_refuses_changed_settings(tiny, cache, tmp_path, capsys):
    out, report = tmp_path / "m.onnx", tmp_path / "report"
    argv = [
        "--data",
        str(tiny),
        "--arch",
        "seed",
        "--out",
        str(out),
        "--epochs",
        "1",
        "--cache",
        str(cache),
        "--report",
        str(report),
        "--quiet",
    ]
    assert train_cli.main(argv) == 0
    first = json.loads((report / "metrics.json").read_text())
    assert sorted(p.name for p in (report / "checkpoints").iterdir()) == ["final.pt", "fold1.pt", "fold2.pt"]
    assert train_cli.main([*argv, "--resume"]) == 0
    again = json.loads((report / "metrics.json").read_text())
    assert again["confusion"] == first["confusion"] and again["window_accuracy"] == first["window_accuracy"]
    capsys.readouterr()
    assert train_cli.main([*argv, "--resume", "--seed", "1"]) == 2
    assert "was made with other data or settings" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--data", "/nonexistent/folder"], "does not exist"),
        (["--out", "model.bin"], "must name an .onnx file"),
        (["--split", "fault-filtered"], "needs GTZAN file names"),
        (["--folds", "3"], "needs at least 3 clips per class"),
        (["--epochs", "0"], "--epochs must be at least 1"),
        (["--mixup", "0.2"], "--mixup"),
    ],
)
def test_training_cli_errors_are_one_line_and_exit_2(tiny, cache, tmp_path, capsys, extra, message):
    custom = tmp_path / "custom"
    for label in ("a", "b"):
        (custom / label).mkdir(parents=True)
        (custom / label / "x.wav").symlink_to(tiny / "blues" / "blues.00001.wav")
    argv = [
        "--data",
        str(custom),
        "--arch",
        "seed",
        "--out",
        str(tmp_path / "m.onnx"),
        "--cache",
        str(cache),
        "--report",
        str(tmp_path / "r"),
        "--quiet",
        *extra,
    ]
    assert train_cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and err.startswith("training.train: error:")
    assert not (tmp_path / "m.onnx").exists()


# --- the shipped default model --------------------------------------------------------------------


def test_shipped_default_model_contract():
    model = load_model(SHIPPED, provider="cpu", threads=2)
    contract = model.contract
    assert model.labels == GTZAN and contract.genre_output == "genre" and contract.tag_output == "tags"
    assert contract.outputs["tags"].labels[:3] == ("rock", "pop", "alternative")
    assert contract.provenance["license"].startswith("ISC (musicnn backbone); head trained by streamgenre")
    assert "GTZAN" in contract.provenance["training_data"]
    metrics = contract.metrics
    assert "grouped 2-fold" in metrics["evaluation"] and metrics["clips"] == 100
    assert metrics["track_accuracy"] >= 0.9 and metrics["trained_on_clips"] == 100
    assert [f["name"] for f in metrics["folds"]] == ["fold1", "fold2"]


def test_evaluate_shipped_model_matches_classify(tiny, cache, tmp_path, capsys):
    from streamgenre.classify import classify_file

    report = tmp_path / "eval"
    argv = [str(SHIPPED), "--data", str(tiny), "--cache", str(cache), "--report", str(report)]
    assert evaluate_cli.main(argv) == 0
    assert "track accuracy" in capsys.readouterr().out
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["clips"] == 4 and metrics["recorded_in_model"]["trained_on_clips"] == 100
    assert metrics["track_accuracy"] >= 0.75  # four clips of two very different genres
    rows = (report / "predictions.csv").read_text().splitlines()
    assert rows[0].startswith("clip,fold,true,predicted") and len(rows) == 5
    # The evaluation decides exactly as `streamgenre classify` (streaming front end, mean of windows).
    model = load_model(SHIPPED, provider="cpu", threads=2)
    result = classify_file(tiny / "classical" / "classical.00001.wav", model)
    row = next(r.split(",") for r in rows if r.startswith("classical.00001"))
    assert row[3] == result.genre and abs(float(row[4]) - result.confidence) < 1e-4


def test_evaluate_refuses_labels_the_model_does_not_know(tmp_path, tiny, cache, capsys):
    data = tmp_path / "data"
    for label in ("blues", "polka"):
        (data / label).mkdir(parents=True)
        (data / label / "x.wav").symlink_to(tiny / "blues" / "blues.00001.wav")
    assert (
        evaluate_cli.main([str(SHIPPED), "--data", str(data), "--cache", str(cache), "--report", str(tmp_path / "r")])
        == 2
    )
    err = capsys.readouterr().err
    assert "['polka'] are not among the model's genres" in err and len(err.strip().splitlines()) == 1
