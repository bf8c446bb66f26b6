import csv
from collections import Counter

import numpy as np
import pytest

from transferlab.data import from_arrays, make_task, subsample, write_manifest
from transferlab.errors import DataError


def _texts(n):
    return [f"text number {i}" for i in range(n)]


def test_stratified_split_keeps_label_mix_and_is_seeded():
    labels = ["a"] * 80 + ["b"] * 20
    task = make_task(from_arrays(_texts(100), labels), seed=3)
    for s in ("train", "val", "test"):
        y = task.y[task.split == s]
        assert len(y) > 0
        assert abs((y == 1).mean() - 0.2) < 0.06, s  # 'b' share preserved in every split
    again = make_task(from_arrays(_texts(100), labels), seed=3)
    assert (again.split == task.split).all()
    other = make_task(from_arrays(_texts(100), labels), seed=4)
    assert (other.split != task.split).any()


def test_small_class_still_trained_and_tested():
    labels = ["a"] * 30 + ["b"] * 2
    task = make_task(from_arrays(_texts(32), labels))
    b = task.split[np.array(labels) == "b"]
    assert sorted(b.tolist()) == ["test", "train"]


def test_user_split_respected_and_val_carved_from_train():
    splits = ["train"] * 40 + ["test"] * 10
    labels = ["a", "b"] * 25
    task = make_task(from_arrays(_texts(50), labels, splits=splits))
    assert (task.split[40:] == "test").all()  # user's test untouched
    assert (task.split[:40] == "val").sum() > 0 and "Your split had no validation" in " ".join(task.notes)


def test_label_only_in_test_is_an_error():
    ds = from_arrays(_texts(6), ["a", "b", "a", "b", "a", "c"], splits=["train"] * 4 + ["val", "test"])
    ds_labels = Counter(ds.labels)
    assert ds_labels["c"] == 1
    ds.labels[-2] = "c"  # c appears twice (val, test) but never in train
    with pytest.raises(DataError, match="label 'c' appears in the val split but never in train"):
        make_task(ds)


def test_class_with_one_example_and_single_class():
    with pytest.raises(DataError, match="class 'b' \\(1\\) has fewer than 2 examples"):
        make_task(from_arrays(_texts(5), ["a", "a", "a", "a", "b"]))
    with pytest.raises(DataError, match="every example has the label 'a'"):
        make_task(from_arrays(_texts(3), ["a"] * 3))


def test_manifest_records_hashes(tmp_path):
    task = make_task(from_arrays(_texts(20), ["a", "b"] * 10))
    rows = list(csv.DictReader(open(write_manifest(task, tmp_path / "m.csv"))))
    assert len(rows) == 20 and {r["split"] for r in rows} == {"train", "val", "test"}
    assert all(len(r["sha256"]) == 64 for r in rows)
    assert len({r["sha256"] for r in rows}) == 20


def test_subsample_caps_each_split():
    task = make_task(from_arrays(_texts(400), ["a", "b", "c", "d"] * 100))
    small = subsample(task, {"train": 50, "val": None, "test": 30}, seed=0)
    assert small.sizes()["train"] == 50 and small.sizes()["test"] == 30
    assert small.sizes()["val"] == task.sizes()["val"]
    assert set(small.y[small.split == "train"].tolist()) == {0, 1, 2, 3}
