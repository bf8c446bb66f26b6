"""From a Dataset to a Task: train/val/test indices, integer labels and content hashes.

A split the user gave is respected (a missing val split is carved out of train, stratified).
Otherwise a stratified split with a fixed seed is made. The result is written as a manifest in
the run directory, one row per example with its content hash, so that a later run (or another
tool) can check which examples were held out.
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import DataError
from .sources import SPLIT_NAMES, Dataset


@dataclass
class Task:
    """What every stage after the split works on."""

    modality: str
    classes: list[str]  # index -> label name
    items: list
    y: np.ndarray  # (N,) int64 class indices
    split: np.ndarray  # (N,) "train" | "val" | "test"
    origins: list[str]
    hashes: list[str]
    description: str = ""
    notes: list[str] = field(default_factory=list)
    groups: np.ndarray | None = None  # (N,) group ids, when the user gave a group column
    times: np.ndarray | None = None  # (N,) timestamps, when the user gave a time column
    # train/validation were drawn at random (not fixed by the user's split or by time), so another
    # seed may draw them again (see ``repartition``)
    resplittable: bool = False
    skipped: list[dict] = field(default_factory=list)  # files the loader passed over (Dataset.skipped)
    text_column: str | None = None  # the table column the texts came from (Dataset.text_column)

    def select(self, idx: np.ndarray, notes: list[str] = ()) -> "Task":
        """The same task restricted to the rows ``idx`` (in that order), every per-row field alike."""
        idx = np.asarray(idx, dtype=np.int64)
        pick = lambda values: None if values is None else np.asarray(values, dtype=object)[idx]  # noqa: E731
        return Task(
            self.modality,
            self.classes,
            [self.items[i] for i in idx],
            self.y[idx],
            self.split[idx],
            [self.origins[i] for i in idx],
            [self.hashes[i] for i in idx],
            self.description,
            self.notes + list(notes),
            pick(self.groups),
            pick(self.times),
            self.resplittable,
            self.skipped,
            self.text_column,
        )

    def without_test_labels(self) -> "Task":
        """The same task with the test labels replaced by -1: what a rung is given, so nothing it
        fits or chooses can depend on them."""
        y = self.y.copy()
        y[self.split == "test"] = -1
        return replace(self, y=y)

    def indices(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.split == split)

    def part(self, split: str) -> tuple[list, np.ndarray]:
        idx = self.indices(split)
        return [self.items[i] for i in idx], self.y[idx]

    def part_hashes(self, split: str) -> list[str]:
        return [self.hashes[i] for i in self.indices(split)]

    def sizes(self) -> dict[str, int]:
        return {s: int((self.split == s).sum()) for s in SPLIT_NAMES}


def content_hash(item, modality: str = "text") -> str:
    """sha256 of what the model will see: the text, the image or audio file's bytes, the array or the clip."""
    from .audio import Clip, content_bytes

    h = hashlib.sha256()
    if isinstance(item, np.ndarray):
        h.update(str((item.shape, item.dtype.str)).encode())
        h.update(np.ascontiguousarray(item).tobytes())
    elif isinstance(item, Clip):
        h.update(content_bytes(item))
    elif modality != "text":
        with open(item, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    else:
        h.update(str(item).encode("utf-8"))
    return h.hexdigest()


def stratified_assign(y: np.ndarray, fractions: dict[str, float], rng: np.random.Generator) -> np.ndarray:
    """Assign each index to a split, class by class, so every split keeps the label mix.

    Each class keeps at least one training example; with two or more examples, at least one
    goes to test when a test split is asked for, so small classes are still evaluated.
    """
    out = np.empty(len(y), dtype=object)
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        n = len(idx)
        counts = {s: int(round(n * f)) for s, f in fractions.items()}
        if "test" in counts and n >= 2:
            counts["test"] = max(counts["test"], 1)
        while sum(counts.values()) > n - 1:  # leave at least one for train
            biggest = max(counts, key=lambda s: counts[s])
            counts[biggest] -= 1
        start = 0
        for s, k in counts.items():
            out[idx[start : start + k]] = s
            start += k
        out[idx[start:]] = "train"
    return out


def make_task(
    dataset: Dataset,
    *,
    seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.2,
) -> Task:
    """Split (or respect the user's split), validate labels, and hash every item."""
    if len(dataset) == 0:
        raise DataError(f"{dataset.description}: no examples.")
    classes = sorted(set(dataset.labels))
    if len(classes) < 2:
        raise DataError(
            f"{dataset.description}: every example has the label '{classes[0]}'. "
            "A classifier needs at least two classes; check the label column."
        )
    counts = Counter(dataset.labels)
    tiny = [f"'{c}' ({counts[c]})" for c in classes if counts[c] < 2]
    if tiny:
        raise DataError(
            f"{dataset.description}: class {', '.join(tiny)} has fewer than 2 examples, so it cannot be "
            "both trained on and tested. Add examples or remove the class."
        )
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[c] for c in dataset.labels], dtype=np.int64)
    rng = np.random.default_rng(seed)
    notes: list[str] = []
    resplittable = dataset.times is None

    if dataset.splits is None and dataset.times is not None:
        split = time_split(np.asarray(dataset.times, dtype=object), val_fraction, test_fraction)
        notes.append(
            f"Time split: the oldest {1 - val_fraction - test_fraction:.0%} train, the next "
            f"{val_fraction:.0%} validate, the newest {test_fraction:.0%} test."
        )
    elif dataset.splits is None and dataset.groups is not None:
        split = group_split(y, np.asarray(dataset.groups), val_fraction, test_fraction, seed)
        notes.append(
            f"Group split with seed {seed}: each of the {len(set(dataset.groups))} groups lies in one "
            "split only (stratified by label as far as groups allow)."
        )
    elif dataset.splits is None:
        split = stratified_assign(y, {"val": val_fraction, "test": test_fraction}, rng)
        notes.append(
            f"Stratified split with seed {seed}: {1 - val_fraction - test_fraction:.0%} train, "
            f"{val_fraction:.0%} validation, {test_fraction:.0%} test."
        )
    else:
        split = np.array(dataset.splits, dtype=object)
        present = set(split.tolist())
        if "train" not in present or "test" not in present:
            missing = [s for s in ("train", "test") if s not in present]
            raise DataError(
                f"{dataset.description}: the given split has no '{missing[0]}' examples. "
                "Give train and test examples (val is optional), or let transferlab split."
            )
        if "val" not in present:
            train_idx = np.flatnonzero(split == "train")
            sub = stratified_assign(y[train_idx], {"val": val_fraction / (1 - test_fraction)}, rng)
            split[train_idx] = sub
            notes.append(
                f"Your split had no validation examples: {int((sub == 'val').sum())} were taken "
                f"from train (stratified, seed {seed})."
            )
        else:
            resplittable = False
            notes.append("Your train/val/test split was used as given.")
    split = split.astype(str)
    if not (split == "val").any():
        raise DataError(
            f"{dataset.description}: too few examples to hold out a validation split ({len(split)} in all). "
            "Rungs choose their settings on validation data; add examples or give a split with val rows."
        )
    _check_labels_seen_in_train(dataset, classes, y, split)
    hashes = [content_hash(item, dataset.modality) for item in dataset.items]
    return Task(
        dataset.modality,
        classes,
        list(dataset.items),
        y,
        split,
        list(dataset.origins),
        hashes,
        description=dataset.description,
        notes=list(dataset.notes) + notes,
        groups=None if dataset.groups is None else np.asarray(dataset.groups, dtype=object),
        times=None if dataset.times is None else np.asarray(dataset.times, dtype=object),
        resplittable=resplittable,
        skipped=list(dataset.skipped),
        text_column=dataset.text_column,
    )


def repartition(task: Task, seed: int, clusters: np.ndarray | None = None) -> Task | None:
    """The same task with train and validation drawn again from their pooled examples; None when
    the split is fixed (the user's, or by time).

    The test split is untouched, and so are the sizes of train and validation. Examples that
    share a user group, or a ``clusters`` id (duplicates and near-duplicates found by the audit),
    stay on one side, so another draw cannot leak a copy of a training example into validation.
    """
    if not task.resplittable:
        return None
    pool = np.flatnonzero(task.split != "test")
    n_val = int((task.split == "val").sum())
    if task.groups is not None:
        keys = np.asarray(task.groups, dtype=object)
    elif clusters is not None:
        keys = np.asarray(clusters, dtype=object)
    else:
        keys = np.arange(len(task.y)).astype(object)
    rng = np.random.default_rng(seed)
    # stratify whole units: shuffle the units, then fill validation class by class up to each class's quota
    units: dict = {}
    for i in pool:
        units.setdefault(keys[i], []).append(i)
    order = list(units.values())
    rng.shuffle(order)
    quota = {int(c): int(n) for c, n in zip(*np.unique(task.y[task.split == "val"], return_counts=True))}
    val: list[int] = []
    taken = dict.fromkeys(quota, 0)
    for members in order:
        if len(val) >= n_val:
            break
        labels = task.y[members]
        if all(taken.get(c, 0) + int((labels == c).sum()) <= quota.get(c, 0) for c in set(labels.tolist())):
            val.extend(members)
            for c in labels.tolist():
                taken[c] += 1
    split = task.split.copy()
    split[pool] = "train"
    split[np.asarray(val, dtype=np.int64)] = "val"
    if not (split == "val").any() or len(set(task.y[split == "train"].tolist())) < len(set(task.y[pool].tolist())):
        return None  # too few units to draw again without losing a class from training
    return Task(
        task.modality,
        task.classes,
        task.items,
        task.y,
        split,
        task.origins,
        task.hashes,
        task.description,
        list(task.notes),
        task.groups,
        task.times,
        task.resplittable,
        task.skipped,
        task.text_column,
    )


def time_split(times: np.ndarray, val_fraction: float, test_fraction: float) -> np.ndarray:
    """Oldest examples train, the next validate, the newest test; equal timestamps never straddle a cut."""
    order = np.argsort(times, kind="stable")
    ordered = times[order]
    n = len(times)

    def cut(k: int) -> int:  # move a cut forward past examples sharing the timestamp before it
        while 0 < k < n and ordered[k] == ordered[k - 1]:
            k += 1
        return k

    train_end = cut(int(round(n * (1 - val_fraction - test_fraction))))
    val_end = cut(max(train_end, int(round(n * (1 - test_fraction)))))
    split = np.empty(n, dtype=object)
    split[order[:train_end]] = "train"
    split[order[train_end:val_end]] = "val"
    split[order[val_end:]] = "test"
    return split


def group_split(y: np.ndarray, groups: np.ndarray, val_fraction: float, test_fraction: float, seed: int) -> np.ndarray:
    """Whole groups to each split, with label shares kept as far as the groups allow.

    scikit-learn's StratifiedGroupKFold picks the test fold (1 / test_fraction folds), then, on
    what is left, the validation fold.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    n_groups = len(set(groups.tolist()))
    if n_groups < 3:
        raise DataError(
            f"Only {n_groups} distinct group(s): a group split needs at least 3 groups "
            "(one each for train, validation and test). Drop --group-column or add groups."
        )
    split = np.full(len(y), "train", dtype=object)

    def first_fold(idx: np.ndarray, fraction: float) -> np.ndarray:
        k = min(max(2, int(round(1 / fraction))), len(set(groups[idx].tolist())))
        import warnings

        with warnings.catch_warnings():  # "least populated class has fewer members than n_splits"
            warnings.simplefilter("ignore", UserWarning)
            _, held = next(
                StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed).split(idx, y[idx], groups[idx])
            )
        return idx[held]

    test = first_fold(np.arange(len(y)), test_fraction)
    split[test] = "test"
    rest = np.flatnonzero(split == "train")
    split[first_fold(rest, val_fraction / (1 - test_fraction))] = "val"
    return split


def _check_labels_seen_in_train(dataset: Dataset, classes: list[str], y: np.ndarray, split: np.ndarray) -> None:
    in_train = set(y[split == "train"].tolist())
    for s in ("val", "test"):
        for i in np.flatnonzero(split == s):
            if y[i] not in in_train:
                raise DataError(
                    f"{dataset.origins[i]}: label '{classes[y[i]]}' appears in the {s} split but never in "
                    f"train, so no model can learn it. Add '{classes[y[i]]}' examples to train or remove them from {s}."
                )


def subsample(task: Task, caps: dict[str, int | None], seed: int) -> Task:
    """Keep at most ``caps[split]`` examples of each split, stratified; note what was dropped."""
    rng = np.random.default_rng(seed + 1)
    keep = np.ones(len(task.y), dtype=bool)
    notes = []
    for s, cap in caps.items():
        idx = task.indices(s)
        if cap is None or len(idx) <= cap:
            continue
        frac = cap / len(idx)
        chosen = stratified_assign(task.y[idx], {"keep": frac}, rng)
        kept = idx[chosen == "keep"]  # rounding per class can miss the cap by a few either way
        rest = idx[chosen != "keep"]
        if len(kept) > cap:
            kept = rng.choice(kept, cap, replace=False)
        elif len(kept) < cap:
            kept = np.concatenate([kept, rng.choice(rest, cap - len(kept), replace=False)])
        drop = np.setdiff1d(idx, kept)
        keep[drop] = False
        notes.append(f"{s}: subsampled to {int(len(idx) - len(drop))} of {len(idx)} examples (stratified).")
    if not notes:
        return task
    return task.select(np.flatnonzero(keep), notes)


def write_manifest(task: Task, path: Path) -> Path:
    """One row per example: position, origin, split, label and sha256, written atomically."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    extra = {name: values for name, values in (("group", task.groups), ("time", task.times)) if values is not None}
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["index", "origin", "split", "label", "sha256", *extra])
        for i, (origin, s, label, h) in enumerate(zip(task.origins, task.split, task.y, task.hashes)):
            writer.writerow([i, origin, s, task.classes[label], h, *(v[i] for v in extra.values())])
    tmp.replace(path)
    return path
