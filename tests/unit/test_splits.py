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


def test_group_split_keeps_each_group_in_one_split():
    groups = [f"product{i // 5}" for i in range(200)]  # 40 products, 5 reviews each
    labels = ["a" if (i // 5) % 3 else "b" for i in range(200)]
    task = make_task(from_arrays(_texts(200), labels, groups=groups), seed=1)
    for g in set(groups):
        assert len(set(task.split[task.groups == g].tolist())) == 1, g
    sizes = task.sizes()
    assert sizes["test"] > 20 and sizes["val"] > 10 and sizes["train"] > 100
    with pytest.raises(DataError, match="at least 3 groups"):
        make_task(from_arrays(_texts(8), ["a", "b"] * 4, groups=["g1"] * 4 + ["g2"] * 4))


def test_time_split_trains_on_the_past():
    times = np.arange(100)[::-1]  # newest first in the file
    labels = ["a", "b"] * 50
    task = make_task(from_arrays(_texts(100), labels, times=times))
    t = task.times.astype(int)
    assert t[task.split == "train"].max() < t[task.split == "val"].min()
    assert t[task.split == "val"].max() < t[task.split == "test"].min()
    assert task.sizes() == {"train": 65, "val": 15, "test": 20}
    tied = np.repeat(np.arange(10), 10)  # ten examples per timestamp: no timestamp straddles a cut
    task = make_task(from_arrays(_texts(100), labels, times=tied))
    for ts in range(10):
        assert len(set(task.split[task.times.astype(int) == ts].tolist())) == 1


def test_group_and_time_columns_from_csv(tmp_path):
    import pandas as pd

    from transferlab.data import load_data

    df = pd.DataFrame(
        {
            "text": _texts(6),
            "label": ["a", "b"] * 3,
            "when": ["2024-01-0%d" % (i + 1) for i in range(6)],
            "who": ["x", "y", "z"] * 2,
        }
    )
    df.to_csv(tmp_path / "d.csv", index=False)
    ds = load_data(tmp_path / "d.csv", group_column="who", time_column="when")
    assert ds.groups[:3] == ["x", "y", "z"] and len(ds.times) == 6
    df.loc[3, "when"] = "not a date"
    df.to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(DataError, match="d.csv row 5: time column 'when' has 'not a date'"):
        load_data(tmp_path / "d.csv", time_column="when")
