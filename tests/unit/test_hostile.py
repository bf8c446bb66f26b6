"""Hostile input, tried systematically: every case ends in a named error or a counted skip.

Each test states the outcome it expects: the error class and that its message names the file,
row or column at fault; or the number of skipped files in the audit. docs/INPUT.md describes
the policy these tests pin down.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import synthetic_reviews, write_image_folder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

import transferlab
from transferlab.backbones.images import load_image
from transferlab.cli import app
from transferlab.data import from_arrays, load_data, make_task
from transferlab.errors import DataError, TransferlabError

FAST = {"rungs": ["majority", "classical"], "learning_curve": False, "corruptions": False, "quiet": True}
HYPOTHESIS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _error(fn, *fragments, cls=DataError):
    """Call fn, expect cls, and check the message is one line that names every fragment."""
    with pytest.raises(cls) as err:
        fn()
    msg = str(err.value)
    assert "\n" not in msg, msg
    for fragment in fragments:
        assert fragment in msg, msg
    return msg


def _encoded(arr: np.ndarray, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **options)
    return buf.getvalue()


def _picture(size: int = 24, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


@pytest.fixture
def images(tmp_path) -> Path:
    return write_image_folder(tmp_path / "imgs", n_per_class=6, size=16)


def _skipped(ds, kind: str) -> list[str]:
    return [s["origin"] for s in ds.skipped if s["kind"] == kind]


# --- image files that cannot be decoded: refused, every one named ---------------------------


def _truncated_png() -> bytes:
    data = _encoded(_picture(64), "PNG")
    return data[: len(data) // 2]


def _truncated_jpeg() -> bytes:
    data = _encoded(_picture(64), "JPEG")
    return data[: len(data) // 2]


def _bomb_png() -> bytes:
    """A valid PNG header claiming 30000 x 30000 pixels (PIL refuses more than 2 x 89M pixels)."""
    data = bytearray(_encoded(np.zeros((8, 8), np.uint8), "PNG"))
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    data[8:33] = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


UNREADABLE = {
    "random.jpg": b"\x13\x37" * 40,
    "random.png": os.urandom(300),
    "half.png": _truncated_png(),
    "half.jpg": _truncated_jpeg(),
    "zero.png": b"",
    "bomb.png": _bomb_png(),
    "jpeg-header-only.jpg": b"\xff\xd8\xff\xe0",
}


@pytest.mark.parametrize("name", sorted(UNREADABLE))
def test_unreadable_image_is_refused_naming_the_file(images, name):
    (images / "dark" / name).write_bytes(UNREADABLE[name])
    before = (images / "dark" / name).read_bytes()
    msg = _error(lambda: load_data(images), str(images / "dark" / name), "Remove or replace")
    assert ("empty file" in msg) if name == "zero.png" else ("not a readable image" in msg)
    if name == "bomb.png":
        assert "pixels" in msg
    assert (images / "dark" / name).read_bytes() == before  # the user's file is untouched


def test_every_unreadable_image_is_listed_in_one_error(images):
    for name in ("a.png", "b.jpg", "c.png"):
        (images / "bright" / name).write_bytes(b"garbage")
    msg = _error(lambda: load_data(images), "3 image files cannot be read", "a.png", "b.jpg", "c.png")
    assert msg.count("garbage") == 0


@HYPOTHESIS
@given(payload=st.binary(min_size=0, max_size=400), suffix=st.sampled_from([".jpg", ".png", ".gif", ".webp"]))
def test_random_bytes_with_image_names_never_crash(tmp_path_factory, payload, suffix):
    root = write_image_folder(tmp_path_factory.mktemp("fuzz") / "imgs", n_per_class=3, size=8)
    (root / "dark" / f"fuzz{suffix}").write_bytes(payload)
    try:
        ds = load_data(root)
    except DataError as exc:
        assert f"fuzz{suffix}" in str(exc)
        return
    load_image(ds.items[ds.origins.index(str(root / "dark" / f"fuzz{suffix}"))])  # decodable, as promised


@HYPOTHESIS
@given(cut=st.floats(0.05, 0.95), fmt=st.sampled_from(["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"]))
def test_any_truncated_image_is_refused_before_training(tmp_path_factory, cut, fmt):
    root = write_image_folder(tmp_path_factory.mktemp("cut") / "imgs", n_per_class=3, size=8)
    data = _encoded(_picture(48, seed=3), fmt)
    (root / "dark" / "cut.img.png").write_bytes(data[: max(1, int(len(data) * cut))])
    try:
        ds = load_data(root)
    except DataError as exc:
        assert "cut.img.png" in str(exc)
        return
    load_image(ds.items[-1])  # some formats decode a prefix (GIF, BMP rows): then it must really load


# --- odd but valid images: loaded, and loaded right -----------------------------------------


def test_odd_modes_load_as_sensible_rgb(tmp_path):
    grad16 = (np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)  # 0 .. 65520
    Image.fromarray(grad16).save(tmp_path / "deep.png")
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # pure red in CMYK
    cmyk.save(tmp_path / "cmyk.jpg")
    pal = Image.new("P", (8, 8), 1)
    pal.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    pal.info["transparency"] = 0
    pal.save(tmp_path / "pal.png", transparency=0)
    Image.new("RGB", (1, 1), (9, 99, 199)).save(tmp_path / "dot.png")
    Image.fromarray((np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8))).save(tmp_path / "float.tif")

    deep = np.asarray(load_image(tmp_path / "deep.png"))
    assert deep.shape == (64, 64, 3) and 100 < deep.mean() < 155  # scaled from 16 bits, not clipped white
    assert np.asarray(load_image(tmp_path / "cmyk.jpg"))[0, 0].tolist()[0] > 200
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "palette images with transparency" warning
        assert np.asarray(load_image(tmp_path / "pal.png"))[0, 0].tolist() == [10, 200, 30]
    assert np.asarray(load_image(tmp_path / "dot.png")).tolist() == [[[9, 99, 199]]]
    flt = np.asarray(load_image(tmp_path / "float.tif"))
    assert flt.max() == 255 and flt.min() == 0


def test_exif_rotation_is_applied(tmp_path):
    arr = np.zeros((10, 20, 3), np.uint8)
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees when shown
    img.save(tmp_path / "phone.jpg", exif=exif)
    assert load_image(tmp_path / "phone.jpg").size == (10, 20)


def test_odd_images_run_end_to_end(images, tmp_path):
    Image.new("RGB", (1, 1), (255, 255, 255)).save(images / "bright" / "dot.png")
    Image.new("CMYK", (16, 16), (0, 0, 0, 255)).save(images / "dark" / "cmyk.jpg")
    Image.fromarray(np.full((16, 16), 4000, np.uint16)).save(images / "dark" / "deep.png")
    la = Image.new("LA", (16, 16), (240, 128))
    la.save(images / "bright" / "la.png")
    res = transferlab.run(images, out=str(tmp_path / "r"), on_leakage="warn", **FAST)
    assert sum(res["task"]["splits"].values()) == 16 and [r["name"] for r in res["rungs"]] == ["majority", "classical"]


# --- things in an image folder that are not examples: ignored and counted -------------------


def test_non_image_and_hidden_files_are_skipped_and_counted(images, tmp_path):
    (images / "dark" / "README.txt").write_text("notes")
    (images / "dark" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (images / "bright" / "._0.png").write_bytes(b"\x00\x05\x16\x07")  # macOS resource fork
    hidden = images / ".ipynb_checkpoints"
    hidden.mkdir()
    Image.new("RGB", (4, 4)).save(hidden / "x.png")
    (images / "empty_class").mkdir()
    (images / "labels.csv").write_text("a,b\n")
    ds = load_data(images)
    assert sorted(set(ds.labels)) == ["bright", "dark"] and len(ds) == 12
    ignored = _skipped(ds, "ignored")
    assert sorted(Path(o).name for o in ignored) == [
        ".DS_Store",
        "._0.png",
        ".ipynb_checkpoints",
        "README.txt",
        "labels.csv",
    ]
    assert _skipped(ds, "empty_class") == [str(images / "empty_class")]

    res = transferlab.audit(images, out=str(tmp_path / "a"), quiet=True)
    finding = {f["check"]: f for f in res["audit"]["findings"]}
    assert finding["skipped_files"]["count"] == 5 and "README.txt" in finding["skipped_files"]["message"]
    assert finding["empty_class_folders"]["count"] == 1 and finding["empty_class_folders"]["severity"] == "warning"
    assert "empty_class" in (tmp_path / "a" / "report.html").read_text(encoding="utf-8")


def test_folder_without_images_or_classes(tmp_path):
    (tmp_path / "flat").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "flat" / "a.png")
    _error(lambda: load_data(tmp_path / "flat"), "has no subfolders", "one subfolder per class")
    (tmp_path / "docs" / "cat").mkdir(parents=True)
    (tmp_path / "docs" / "cat" / "notes.txt").write_text("x")
    _error(lambda: load_data(tmp_path / "docs"), "No images found under", "docs", "notes.txt")
    (tmp_path / "hidden" / ".cat").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(tmp_path / "hidden" / ".cat" / "a.png")
    _error(lambda: load_data(tmp_path / "hidden"), "has no subfolders")


def test_unicode_and_spaces_in_paths(tmp_path):
    root = tmp_path / "données d'été"
    for label, value in (("chat 🐱", 30), ("chien <b>", 220)):
        (root / label).mkdir(parents=True)
        for i in range(6):
            arr = np.full((12, 12, 3), value + i, np.uint8)
            arr[i, :] = 255 - value
            Image.fromarray(arr).save(root / label / f"img {i}.png")
    # one flat colour with a line one row lower: shifted copies of one picture, which dedupe removes
    # (more than its share of these few images, hence the confirmation)
    res = transferlab.run(root, out=str(tmp_path / "r é"), confirm_dedupe=True, **FAST)
    assert res["task"]["labels"] == ["chat 🐱", "chien <b>"]
    manifest = (tmp_path / "r é" / "split_manifest.csv").read_text(encoding="utf-8")
    assert str(root / "chat 🐱" / "img 0.png") in manifest
    html = (tmp_path / "r é" / "report.html").read_text(encoding="utf-8")
    assert "chien &lt;b&gt;" in html and "chien <b>" not in html
    assert "img 1.png" in html.split('<section id="removed">')[1].split("</section>")[0]  # the removed copies, shown


def test_image_arrays_of_the_wrong_shape_or_range():
    ok = np.zeros((8, 8, 3), np.uint8)
    _error(lambda: from_arrays([ok, np.zeros((0, 8), np.uint8)], ["a", "b"]), "item 1", "shape (0, 8)")
    _error(lambda: from_arrays([ok, np.zeros((2, 8, 8, 3), np.uint8)], ["a", "b"]), "item 1", "(H, W)")
    _error(lambda: from_arrays([ok, np.zeros((8, 8, 2), np.uint8)], ["a", "b"]), "item 1", "channels")
    floats = [np.random.default_rng(0).random((8, 8)) for _ in range(4)]
    _error(lambda: from_arrays(floats, ["a", "b"] * 2), "between 0 and 1", "255")
    _error(lambda: from_arrays([ok, np.full((8, 8), np.nan)], ["a", "b"]), "item 1", "NaN")
    _error(lambda: from_arrays([ok, np.array([["x"]])], ["a", "b"]), "item 1", "numbers")
    ds = from_arrays([ok, np.full((8, 8, 1), 7, np.uint16)], ["a", "b"])
    assert np.asarray(load_image(ds.items[1]))[0, 0].tolist() == [7, 7, 7]


# --- symlinks: followed inside the data root, refused when they leave it --------------------


def test_symlink_leaving_the_root_is_refused(images, tmp_path):
    secret = tmp_path / "private"
    secret.mkdir()
    Image.new("RGB", (4, 4)).save(secret / "me.png")
    os.symlink(secret / "me.png", images / "dark" / "link.png")
    _error(lambda: load_data(images), str(images / "dark" / "link.png"), str(secret / "me.png"), "outside")
    (images / "dark" / "link.png").unlink()
    os.symlink(secret, images / "elsewhere")
    _error(lambda: load_data(images), "elsewhere", "outside")


def test_symlink_inside_the_root_is_followed_once(images):
    os.symlink(images / "dark" / "0.png", images / "bright" / "alias.png")
    os.symlink(images / "dark", images / "dark" / "loop")  # a cycle must not hang the walk
    ds = load_data(images)
    assert str(images / "bright" / "alias.png") in ds.items
    assert sum(1 for o in ds.origins if "/loop/" in o) == 0 and len(ds) == 13


# --- tables: encodings -----------------------------------------------------------------------


def _csv_text(n: int = 10) -> str:
    texts, labels = synthetic_reviews(n)
    return "text,label\n" + "".join(f"{t} café,{lab}\n" for t, lab in zip(texts, labels))


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-be", "utf-32"])
def test_byte_order_marks_are_honoured(tmp_path, encoding):
    data = _csv_text().encode(encoding)
    if encoding == "utf-16-be":
        data = codecs.BOM_UTF16_BE + data
    (tmp_path / "d.csv").write_bytes(data)
    ds = load_data(tmp_path / "d.csv")
    assert ds.items[0].endswith("café") and set(ds.labels) == {"pos", "neg"}


def test_latin1_is_refused_naming_the_line(tmp_path):
    (tmp_path / "d.csv").write_bytes(_csv_text().encode("latin-1"))
    _error(lambda: load_data(tmp_path / "d.csv"), "d.csv line 2", "not valid UTF-8", "UTF-8")


def test_utf16_without_bom_is_refused(tmp_path):
    (tmp_path / "d.csv").write_bytes(_csv_text().encode("utf-16-le"))
    _error(lambda: load_data(tmp_path / "d.csv"), "d.csv", "UTF-16", "UTF-8")


# --- tables: shape -----------------------------------------------------------------------------


def _write(tmp_path, name: str, content: str) -> Path:
    (tmp_path / name).write_text(content, encoding="utf-8")
    return tmp_path / name


ROWS = "".join(f"t{i} words,{'ab'[i % 2]}\n" for i in range(10))


def test_missing_extra_and_duplicate_columns(tmp_path):
    p = _write(tmp_path, "d.csv", "body,label\n" + ROWS)
    _error(lambda: load_data(p), "No text column in d.csv", "body, label", "--text-column")
    p = _write(tmp_path, "e.csv", "text,label,extra,more\n" + ROWS.replace("\n", ",1,2\n"))
    assert len(load_data(p)) == 10
    p = _write(tmp_path, "f.csv", "text,label,label\n" + ROWS.replace("\n", ",x\n"))
    _error(lambda: load_data(p), "f.csv", "more than one column named 'label'", "Rename")
    p = _write(tmp_path, "g.csv", "text,text,label\n" + ROWS.replace(",", ",y,"))
    _error(lambda: load_data(p), "g.csv", "more than one column named 'text'")


def test_same_column_for_text_and_label(tmp_path):
    p = _write(tmp_path, "d.csv", "text,label\n" + ROWS)
    _error(lambda: load_data(p, text_column="text", label_column="text"), "'text'", "both the text and the label")


def test_ragged_rows(tmp_path):
    p = _write(tmp_path, "d.csv", "text,label\n" + ROWS + "one,two,three\n")
    _error(lambda: load_data(p), "d.csv", "line 12", "Expected 2 fields")
    p = _write(tmp_path, "e.csv", "text,label\n" + ROWS + "lonely\n")
    _error(lambda: load_data(p), "e.csv row 12", "label column 'label' is empty")


@pytest.mark.parametrize("bad", ["", "   ", "\t", "NaN-missing"])
def test_missing_labels_name_the_row(tmp_path, bad):
    if bad == "NaN-missing":
        lines = [json.dumps({"text": f"t{i}", "label": None if i == 3 else "ab"[i % 2]}) for i in range(8)]
        p = _write(tmp_path, "d.jsonl", "\n".join(lines))
        _error(lambda: load_data(p), "d.jsonl row 4", "label column 'label' is empty")
        return
    p = _write(tmp_path, "d.csv", "text,label\n" + ROWS + f'hello,"{bad}"\n')
    _error(lambda: load_data(p), "d.csv row 12", "label column 'label' is empty")


def test_numeric_and_mixed_labels(tmp_path):
    lines = [json.dumps({"text": f"t{i}", "label": [1, 1.0, "1", 2, 2.0][i % 5]}) for i in range(10)]
    ds = load_data(_write(tmp_path, "d.jsonl", "\n".join(lines)))
    assert sorted(set(ds.labels)) == ["1", "2"]
    ds = load_data(_write(tmp_path, "d.csv", "text,label\n" + "".join(f"t{i},{i % 3}\n" for i in range(9))))
    assert sorted(set(ds.labels)) == ["0", "1", "2"]


def test_parquet_with_non_string_labels_and_texts(tmp_path):
    pd.DataFrame({"text": [f"t{i}" for i in range(8)], "label": [True, False] * 4}).to_parquet(tmp_path / "b.parquet")
    assert sorted(set(load_data(tmp_path / "b.parquet").labels)) == ["False", "True"]
    pd.DataFrame({"text": [f"t{i}" for i in range(8)], "label": [0.0, 1.0] * 3 + [np.nan, 1.0]}).to_parquet(
        tmp_path / "f.parquet"
    )
    _error(lambda: load_data(tmp_path / "f.parquet"), "f.parquet row 7", "label column 'label' is empty")
    pd.DataFrame({"text": [[1, 2]] * 4, "label": ["a", "b"] * 2}).to_parquet(tmp_path / "l.parquet")
    _error(lambda: load_data(tmp_path / "l.parquet"), "l.parquet row 1", "text column 'text'", "expected a string")


def test_nested_values_in_jsonl(tmp_path):
    lines = [json.dumps({"text": {"a": 1} if i == 2 else f"t{i}", "label": "ab"[i % 2]}) for i in range(6)]
    _error(lambda: load_data(_write(tmp_path, "d.jsonl", "\n".join(lines))), "d.jsonl row 3", "expected a string")
    lines = [json.dumps({"text": f"t{i}", "label": ["x"] if i == 4 else "ab"[i % 2]}) for i in range(6)]
    _error(lambda: load_data(_write(tmp_path, "e.jsonl", "\n".join(lines))), "e.jsonl row 5", "label column")


def test_jsonl_broken_line_and_blank_lines(tmp_path):
    lines = [json.dumps({"text": f"t{i}", "label": "ab"[i % 2]}) for i in range(8)]
    p = _write(tmp_path, "ok.jsonl", "\n".join(lines[:4]) + "\n\n  \n" + "\n".join(lines[4:]) + "\n")
    ds = load_data(p)
    assert len(ds) == 8 and ds.origins[4] == "ok.jsonl row 7"  # the line a user sees in an editor
    p = _write(tmp_path, "bad.jsonl", "\n".join(lines[:5] + ['{"text": "oops", "label": '] + lines[5:]))
    _error(lambda: load_data(p), "bad.jsonl line 6", "not valid JSON", "Fix or remove")
    p = _write(tmp_path, "arr.jsonl", "\n".join(lines[:2] + ['["t", "a"]']))
    _error(lambda: load_data(p), "arr.jsonl line 3", "JSON object")


@pytest.mark.parametrize(
    "name,content",
    [
        ("e.csv", ""),
        ("e.jsonl", ""),
        ("e.parquet", ""),
        ("w.csv", "\n\n  \n"),
        ("w.jsonl", "\n \n"),
        ("h.csv", "text,label\n"),
        ("j.parquet", "PAR1junk"),
    ],
)
def test_empty_and_header_only_files(tmp_path, name, content):
    p = _write(tmp_path, name, content)
    msg = _error(lambda: load_data(p), name)
    assert any(w in msg for w in ("empty", "no rows", "Could not read")), msg


def test_single_class_and_class_of_one(tmp_path):
    p = _write(tmp_path, "one.csv", "text,label\n" + "".join(f"t{i},a\n" for i in range(6)))
    _error(lambda: make_task(load_data(p)), "one.csv", "every example has the label 'a'")
    p = _write(tmp_path, "lone.csv", "text,label\n" + ROWS + "t99,zebra\n")
    _error(lambda: make_task(load_data(p)), "lone.csv", "class 'zebra' (1)")


def test_empty_texts_name_the_row(tmp_path):
    p = _write(tmp_path, "d.csv", "text,label\n" + ROWS + ",a\n")
    _error(lambda: load_data(p), "d.csv row 12", "text column 'text' is empty")
    p = _write(tmp_path, "e.csv", "text,label\n" + ROWS + '"   ",a\n')
    _error(lambda: load_data(p), "e.csv row 12", "text column 'text' is empty")


def test_split_group_and_time_columns_with_bad_values(tmp_path):
    base = "text,label,split,g,t\n" + "".join(
        f"t{i},{'ab'[i % 2]},{['train', 'val', 'test'][i % 3]},g{i % 4},2024-01-{i + 1:02d}\n" for i in range(12)
    )
    ok = _write(tmp_path, "ok.csv", base)
    assert len(load_data(ok, split_column="split", group_column="g", time_column="t")) == 12
    p = _write(tmp_path, "s.csv", base + "x,a,,g1,2024-02-01\n")
    _error(lambda: load_data(p, split_column="split"), "s.csv row 14", "split column 'split' is empty")
    p = _write(tmp_path, "s2.csv", base + "x,a,training-2,g1,2024-02-01\n")
    _error(lambda: load_data(p, split_column="split"), "s2.csv row 14", "'training-2'", "train, val or test")
    p = _write(tmp_path, "g.csv", base + "x,a,train,,2024-02-01\n")
    _error(lambda: load_data(p, group_column="g"), "g.csv row 14", "group column 'g' is empty")
    p = _write(tmp_path, "t.csv", base + "x,a,train,g1,\n")
    _error(lambda: load_data(p, time_column="t"), "t.csv row 14", "time column 't'")
    p = _write(tmp_path, "t2.csv", base + "x,a,train,g1,yesterday-ish\n")
    _error(lambda: load_data(p, time_column="t"), "t2.csv row 14", "'yesterday-ish'")


# --- strange texts: accepted and carried through unharmed -----------------------------------


@HYPOTHESIS
@given(
    texts=st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=6),
    labels=st.lists(st.text(max_size=8), min_size=1, max_size=6),
)
def test_any_unicode_text_and_label_round_trip_through_csv(tmp_path_factory, texts, labels):
    """Whatever the characters, a CSV row either loads as written or is refused naming its row."""
    n = min(len(texts), len(labels))
    texts, labels = texts[:n], labels[:n]
    p = tmp_path_factory.mktemp("csv") / "u.csv"
    # every field quoted: pandas leaves a lone carriage return unquoted, and a CSV reader rightly
    # takes that as the end of a line, so the file would not say what the test wrote
    pd.DataFrame({"text": texts, "label": labels}).to_csv(p, index=False, encoding="utf-8", quoting=csv.QUOTE_ALL)
    try:
        ds = load_data(p)
    except DataError as exc:
        assert "u.csv" in str(exc) and ("row" in str(exc) or "line" in str(exc)), str(exc)
        return
    assert len(ds) == n
    for got, want in zip(ds.items, texts):
        assert got.replace("\r\n", "\n").replace("\r", "\n") == want.replace("\r\n", "\n").replace("\r", "\n")


def test_strange_texts_run_end_to_end(tmp_path):
    texts, labels = synthetic_reviews(12)
    texts[0] = "😀🎉🔥" * 5
    texts[1] = "\x01\x02\x03\x07\x1b"
    texts[2] = "\x00\x00 nul \x00"
    texts[3] = "\u200b\u200d\ufeff"
    texts[12] = "word " * 200_000  # 1 MB
    p = tmp_path / "strange.jsonl"
    p.write_text("\n".join(json.dumps({"text": t, "label": lab}) for t, lab in zip(texts, labels)), encoding="utf-8")
    ds = load_data(p)
    assert ds.items[2] == "\x00\x00 nul \x00" and len(ds.items[12]) == 1_000_000
    res = transferlab.run(p, out=str(tmp_path / "r"), **FAST)
    assert [r["name"] for r in res["rungs"]] == ["majority", "classical"]
    saved = json.loads((tmp_path / "r" / "results.json").read_text(encoding="utf-8"))
    assert saved["task"]["splits"] == res["task"]["splits"]


def test_html_in_labels_is_escaped_in_the_report(tmp_path):
    texts, labels = synthetic_reviews(10)
    evil = {"pos": "<script>alert(1)</script>", "neg": '"><img src=x onerror=alert(2)>'}
    p = tmp_path / "xss.csv"
    texts[0] = texts[-1] = "<script>alert(3)</script> the same text twice"  # shown in the audit's examples
    pd.DataFrame({"text": texts, "label": [evil[x] for x in labels]}).to_csv(p, index=False)
    res = transferlab.run(p, out=str(tmp_path / "r"), on_leakage="warn", **FAST)
    assert any("alert(3)" in json.dumps(f["examples"]) for f in res["audit"]["findings"])
    html = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    assert "<script>" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;script&gt;alert(3)" in html


# --- the command line: one line, exit 2, nothing that looks finished ------------------------

CLI_CASES = {
    "latin-1 csv": ("d.csv", lambda d: d.write_bytes(_csv_text().encode("latin-1")), "d.csv line 2"),
    "broken jsonl": ("d.jsonl", lambda d: d.write_text('{"text": "a", "label": "x"}\n{oops\n'), "d.jsonl line 2"),
    "duplicate columns": ("d.csv", lambda d: d.write_text("text,label,label\na,b,c\n"), "column named 'label'"),
    "zero-byte parquet": ("d.parquet", lambda d: d.write_bytes(b""), "d.parquet is empty"),
}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_cli_turns_hostile_input_into_one_line(tmp_path, case):
    name, make, fragment = CLI_CASES[case]
    make(tmp_path / name)
    res = CliRunner().invoke(app, ["run", str(tmp_path / name), "--rungs", "majority", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2, res.output
    msg = res.stderr.strip()
    assert msg.startswith("error: ") and len(msg.splitlines()) == 1 and fragment in msg, msg
    assert not (tmp_path / "o" / "results.json").exists()


def test_cli_unreadable_image_and_symlink(images, tmp_path):
    (images / "dark" / "half.png").write_bytes(_truncated_png())
    res = CliRunner().invoke(app, ["audit", str(images), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "half.png is not a readable image" in res.stderr, res.output
    assert isinstance(DataError("x"), TransferlabError)
