"""Train/validation/test splits by clip: never windows of one clip on both sides.

* ``fault-filtered``: the fault-filtered GTZAN split (Kereliuk, Sturm & Larsen 2015; 443 train /
  197 valid / 290 test clips, lists in ``training/splits/fault_filtered/``), matched by clip id
  (``blues.00012``) so any file format or layout works. Clips in no list (the faulty ones) are excluded
  and counted.
* ``random``: stratified random hold-out (per label: 20 % test, 10 % validation, the rest train).
* ``grouped-kfold``: artist-safe k-fold. Nearby GTZAN ids often share an artist, so each label's
  clips (ordered by id, or by path for other names) are cut into ``k`` contiguous blocks and block
  ``i`` of every label is the test set of fold ``i``. On the 100 shared clips with ``k = 2``: ids
  0–4 against 5–9.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.data import Dataset, parse_gtzan_id
from training.errors import TrainingError

__all__ = ["SPLITS", "Fold", "SplitPlan", "check_trainable", "fault_filtered_lists", "make_split"]

SPLITS = ("fault-filtered", "random", "grouped-kfold")
SPLIT_DIR = Path(__file__).resolve().parent / "splits"
RANDOM_TEST_FRACTION = 0.2
RANDOM_VALID_FRACTION = 0.1


@dataclass(frozen=True)
class Fold:
    """Clip indices (into the data set) of one train/validation/test partition."""

    name: str
    train: tuple[int, ...]
    valid: tuple[int, ...]
    test: tuple[int, ...]


@dataclass(frozen=True)
class SplitPlan:
    """The folds of one split and what was left out.

    Attributes
    ----------
    kind
        One of :data:`SPLITS`.
    folds
        One fold for hold-out splits, ``k`` for k-fold.
    excluded
        Clip indices in no part (fault-filtered: clips not in any list).
    cross_validated
        True for k-fold: every clip is tested once, and the shipped model is refit on all clips.
    description
        One line for reports and model metadata.
    """

    kind: str
    folds: tuple[Fold, ...]
    excluded: tuple[int, ...]
    cross_validated: bool
    description: str


def fault_filtered_lists(directory: Path | None = None) -> dict[str, str]:
    """Clip id -> ``"train"``, ``"valid"`` or ``"test"`` from the fault-filtered list files."""
    directory = directory or SPLIT_DIR / "fault_filtered"
    parts: dict[str, str] = {}
    for part in ("train", "valid", "test"):
        path = directory / f"{part}.txt"
        if not path.is_file():
            raise TrainingError(f"fault-filtered split list {path} is missing (reinstall training/splits/)")
        for line in path.read_text().splitlines():
            line = line.strip()
            parsed = parse_gtzan_id(line) if line else None
            if parsed is not None:
                parts[f"{parsed[0]}.{parsed[1]:05d}"] = part
    return parts


def _fault_filtered(dataset: Dataset) -> SplitPlan:
    unnamed = [c for c in dataset.clips if c.number is None]
    if unnamed:
        raise TrainingError(
            f"the fault-filtered split needs GTZAN file names (genre.000NN); "
            f"{unnamed[0].path.name} is not one (use --split grouped-kfold or random)"
        )
    lists = fault_filtered_lists()
    members: dict[str, list[int]] = {"train": [], "valid": [], "test": []}
    excluded = []
    for index, clip in enumerate(dataset.clips):
        part = lists.get(clip.clip_id)
        (members[part] if part else excluded).append(index)
    for part in ("train", "test"):
        if not members[part]:
            raise TrainingError(
                f"the fault-filtered split leaves no {part} clips among the {len(dataset)} clips "
                f"of {dataset.root} (use --split grouped-kfold)"
            )
    fold = Fold("fault-filtered", tuple(members["train"]), tuple(members["valid"]), tuple(members["test"]))
    sizes = "/".join(str(len(members[p])) for p in ("train", "valid", "test"))
    return SplitPlan(
        "fault-filtered",
        (fold,),
        tuple(excluded),
        False,
        f"fault-filtered GTZAN split (train/valid/test {sizes} clips, {len(excluded)} excluded)",
    )


def _by_label(dataset: Dataset) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {label: [] for label in dataset.labels}
    for index, clip in enumerate(dataset.clips):
        groups[clip.label].append(index)
    return groups


def _random(dataset: Dataset, seed: int) -> SplitPlan:
    rng = np.random.default_rng(seed)
    train, valid, test = [], [], []
    for label, indices in _by_label(dataset).items():
        if len(indices) < 2:
            raise TrainingError(f"--split random needs at least 2 clips per class; {label!r} has {len(indices)}")
        order = [indices[i] for i in rng.permutation(len(indices))]
        n_test = max(1, round(RANDOM_TEST_FRACTION * len(order)))
        n_valid = min(round(RANDOM_VALID_FRACTION * len(order)), len(order) - n_test - 1)
        test += order[:n_test]
        valid += order[n_test : n_test + n_valid]
        train += order[n_test + n_valid :]
    fold = Fold("random", tuple(sorted(train)), tuple(sorted(valid)), tuple(sorted(test)))
    return SplitPlan(
        "random",
        (fold,),
        (),
        False,
        f"stratified random split, seed {seed} (train/valid/test {len(train)}/{len(valid)}/{len(test)})",
    )


def _grouped(dataset: Dataset, folds: int) -> SplitPlan:
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise TrainingError(f"--folds must be an integer >= 2 for grouped-kfold, got {folds!r}")
    blocks: list[list[int]] = [[] for _ in range(folds)]
    for label, indices in _by_label(dataset).items():
        if len(indices) < folds:
            raise TrainingError(
                f"grouped-kfold with {folds} folds needs at least {folds} clips per class; {label!r} has {len(indices)}"
            )
        for block, part in zip(blocks, np.array_split(np.asarray(indices), folds), strict=True):
            block.extend(int(i) for i in part)
    result = []
    for k, test in enumerate(blocks):
        train = sorted(i for j, block in enumerate(blocks) if j != k for i in block)
        result.append(Fold(f"fold{k + 1}", tuple(train), (), tuple(sorted(test))))
    return SplitPlan(
        "grouped-kfold",
        tuple(result),
        (),
        True,
        f"artist-safe grouped {folds}-fold CV (contiguous clip-id blocks per class, {len(dataset)} clips)",
    )


def make_split(dataset: Dataset, kind: str, folds: int = 2, seed: int = 0) -> SplitPlan:
    """Split ``dataset`` by clip.

    Parameters
    ----------
    dataset
        The clips (after unusable ones were dropped).
    kind
        One of :data:`SPLITS`.
    folds
        Number of folds of ``grouped-kfold``.
    seed
        Seed of the ``random`` split.

    Raises
    ------
    TrainingError
        Unknown kind, too few clips per class for the split, or (fault-filtered) non-GTZAN names.
    """
    if kind == "fault-filtered":
        plan = _fault_filtered(dataset)
    elif kind == "random":
        plan = _random(dataset, seed)
    elif kind == "grouped-kfold":
        plan = _grouped(dataset, folds)
    else:
        raise TrainingError(f"unknown split {kind!r}: choose one of {', '.join(SPLITS)}")
    for fold in plan.folds:
        train, valid, test = set(fold.train), set(fold.valid), set(fold.test)
        if train & valid or train & test or valid & test:
            raise RuntimeError(f"split {fold.name} puts a clip in two parts")  # a bug, not bad input
    return plan


def check_trainable(plan: SplitPlan, dataset: Dataset) -> None:
    """Raise unless every class has training clips in every fold (a class never trained is never predicted).

    Raises
    ------
    TrainingError
        Naming the fold and the classes without training clips.
    """
    labels = dataset.label_indices()
    for fold in plan.folds:
        present = {dataset.labels[labels[i]] for i in fold.train}
        missing = [label for label in dataset.labels if label not in present]
        if missing:
            hint = " (the fault-filtered lists need the full GTZAN)" if plan.kind == "fault-filtered" else ""
            raise TrainingError(
                f"split {fold.name}: classes {missing} have no training clips{hint}; use --split grouped-kfold"
            )
