import json

import numpy as np
import pandas as pd
import pytest

from transferlab.data import from_arrays, load_data
from transferlab.errors import DataError


def test_csv_with_named_columns(reviews_csv):
    ds = load_data(reviews_csv, text_column="review", label_column="stars")
    assert ds.modality == "text" and len(ds) == 80
    assert set(ds.labels) == {"pos", "neg"}
    assert ds.origins[0] == "reviews.csv row 2"  # header is row 1 in an editor


def test_missing_column_names_file_columns_and_flag(reviews_csv):
    with pytest.raises(DataError) as err:
        load_data(reviews_csv, text_column="review", label_column="label")
    msg = str(err.value)
    assert "'label'" in msg and "reviews.csv" in msg and "review, stars" in msg and "--label-column" in msg


def test_columns_detected_by_common_names(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps({"text": f"t {i}", "label": i % 2}) for i in range(6)))
    ds = load_data(path)
    assert ds.items[1] == "t 1" and ds.labels[:2] == ["0", "1"]


def test_parquet_and_split_column(tmp_path):
    df = pd.DataFrame(
        {"text": ["a", "b", "c", "d"], "label": ["x", "y", "x", "y"], "part": ["train", "train", "Validation", "test"]}
    )
    df.to_parquet(tmp_path / "d.parquet")
    ds = load_data(tmp_path / "d.parquet", split_column="part")
    assert ds.splits == ["train", "train", "val", "test"]


def test_bad_split_value(tmp_path):
    pd.DataFrame({"text": ["a"], "label": ["x"], "part": ["holdout-2"]}).to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(DataError, match="row 2.*'holdout-2'.*train, val or test"):
        load_data(tmp_path / "d.csv", split_column="part")


def test_empty_file_and_empty_label(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty.csv is empty"):
        load_data(tmp_path / "empty.csv")
    (tmp_path / "nolabel.csv").write_text("text,label\nhello,a\nworld,\n")
    with pytest.raises(DataError, match="nolabel.csv row 3: the label column 'label' is empty"):
        load_data(tmp_path / "nolabel.csv")


def test_unknown_path_and_extension(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_data(tmp_path / "missing.csv")
    (tmp_path / "x.xlsx").write_text("x")
    with pytest.raises(DataError, match="extension '.xlsx'"):
        load_data(tmp_path / "x.xlsx")


def test_image_folder_with_and_without_split_dirs(image_folder, make_image_folder, tmp_path):
    ds = load_data(image_folder)
    assert ds.modality == "image" and ds.splits is None and len(ds) == 24
    split_root = tmp_path / "split"
    make_image_folder(split_root / "train", n_per_class=8)
    make_image_folder(split_root / "test", n_per_class=3, seed=1)
    ds = load_data(split_root)
    assert set(ds.splits) == {"train", "test"} and ds.splits.count("test") == 6
    (split_root / "extra").mkdir()
    with pytest.raises(DataError, match="mixes split folders"):
        load_data(split_root)


def test_unreadable_and_empty_images(image_folder):
    (image_folder / "dark" / "broken.png").write_bytes(b"not an image at all")
    with pytest.raises(DataError, match="broken.png is not a readable image"):
        load_data(image_folder)
    (image_folder / "dark" / "broken.png").write_bytes(b"")
    with pytest.raises(DataError, match="broken.png is an empty file"):
        load_data(image_folder)


def test_arrays_detect_modality():
    imgs = [np.zeros((8, 8), dtype=np.uint8)] * 4
    assert from_arrays(imgs, [0, 1, 0, 1]).modality == "image"
    assert from_arrays(["a", "b"], ["x", "y"]).modality == "text"
    with pytest.raises(DataError, match="item 1: the label is empty or NaN"):
        from_arrays(["a", "b"], ["x", float("nan")])


@pytest.mark.parametrize("suffix, sep", [(".csv", ","), (".tsv", "\t")])
def test_a_text_longer_than_the_csv_field_limit_is_read(tmp_path, suffix, sep):
    import csv

    long = " ".join(f"w{i % 997}" for i in range(70_000))[:300_000]  # a long document, with commas and quotes
    long = long[:1000] + ', "quoted", ' + long[1012:]
    assert len(long) == 300_000 and len(long) > csv.field_size_limit()
    path = tmp_path / f"long{suffix}"
    pd.DataFrame({"text": [long, "a short one", "another short one"], "label": ["x", "y", "x"]}).to_csv(
        path, sep=sep, index=False
    )
    limit = csv.field_size_limit()
    ds = load_data(path)
    assert ds.items[0] == long and ds.items[1:] == ["a short one", "another short one"]
    assert ds.origins == [f"long{suffix} row {i}" for i in (2, 3, 4)] and ds.text_column == "text"
    assert csv.field_size_limit() == limit  # the global limit is restored
