"""Where examples come from: an image folder, a CSV/JSONL/Parquet table, or in-memory lists.

Every source produces a :class:`Dataset`: items (texts, image paths or image arrays), string
labels, the split each item belongs to when the user gave one, and an ``origin`` per item
(``reviews.csv row 12``, a file path) so that every later error can point at the example.
The user's files are only ever read.
"""

from __future__ import annotations

import codecs
import json
import math
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import DataError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
TABLE_EXTENSIONS = {".csv", ".tsv", ".jsonl", ".json", ".parquet"}
SPLIT_NAMES = ("train", "val", "test")
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
    "holdout": "test",
}


@dataclass
class Dataset:
    """Labelled examples of one modality, as the user gave them."""

    modality: str  # "text", "image" or "audio"
    items: list  # str texts | image or audio file paths (str) | uint8 arrays (H, W) or (H, W, 3) | audio Clips
    labels: list[str]
    origins: list[str]  # where each item came from, for error messages and the manifest
    splits: list[str] | None = None  # "train" / "val" / "test" per item, if the user gave them
    description: str = ""
    notes: list[str] = field(default_factory=list)
    groups: list[str] | None = None  # e.g. patient or product id: a group never spans two splits
    times: list | None = None  # timestamps (numpy datetime64 or numbers): train on the past, test on the future
    # what the loader passed over, one {"origin", "kind", "reason"} per file or folder: kind "ignored"
    # (not an example: hidden, not an image, outside a class folder) or "empty_class" (a class folder without images)
    skipped: list[dict] = field(default_factory=list)
    text_column: str | None = None  # the table column the texts came from, for messages about them

    def __post_init__(self) -> None:
        n = len(self.items)
        if not (len(self.labels) == len(self.origins) == n):
            raise DataError(
                f"{self.description or 'dataset'}: {n} items but {len(self.labels)} labels; pass one label per item."
            )
        for name in ("splits", "groups", "times"):
            values = getattr(self, name)
            if values is not None and len(values) != n:
                raise DataError(f"{self.description}: {n} items but {len(values)} {name} values; pass one per item.")

    def __len__(self) -> int:
        return len(self.items)


def load_data(
    path: str | Path,
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    split_column: str | None = None,
    group_column: str | None = None,
    time_column: str | None = None,
) -> Dataset:
    """Read a folder of images or a table of texts, detected from what ``path`` is."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"Data path '{path}' does not exist. Pass a folder of images or a CSV/JSONL/Parquet file.")
    if p.is_dir():
        if group_column or time_column:
            raise DataError(f"{p} is a folder: --group-column and --time-column apply to CSV/JSONL/Parquet files.")
        if _folder_modality(p) == "audio":
            from .audio import from_audio_folder

            return from_audio_folder(p)
        return from_image_folder(p)
    if p.suffix.lower() in TABLE_EXTENSIONS:
        return from_table(
            p,
            text_column=text_column,
            label_column=label_column,
            split_column=split_column,
            group_column=group_column,
            time_column=time_column,
        )
    raise DataError(
        f"Don't know how to read '{p.name}' (extension '{p.suffix}'). Expected a folder of images "
        f"or a file ending in {', '.join(sorted(TABLE_EXTENSIONS))}."
    )


# --- tables of texts ------------------------------------------------------------------------

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _decode(p: Path, raw: bytes) -> str:
    """UTF-8, or the encoding its byte-order mark names; anything else is refused naming the line."""
    encoding = next((enc for bom, enc in _BOMS if raw.startswith(bom)), "utf-8")
    if encoding == "utf-8" and b"\x00" in raw.split(b"\n", 1)[0]:
        raise DataError(
            f"{p} has NUL bytes in its first line: it looks like UTF-16 or UTF-32 without a byte-order "
            "mark. Re-save the file as UTF-8."
        )
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{p} line {line} is not valid {encoding.upper().replace('-SIG', '')} (byte 0x{raw[exc.start]:02x} at "
            f"offset {exc.start}: {exc.reason}). Re-save the file as UTF-8 (e.g. from Latin-1 or Windows-1252)."
        ) from None
    return text


def _read_jsonl(p: Path, text: str):
    """One JSON object per line; blank lines are passed over. Returns the frame and each row's line."""
    import pandas as pd

    rows, lines = [], []
    for n, line in enumerate(text.split("\n"), 1):  # not splitlines: JSON strings may hold U+2028
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{p.name} line {n} is not valid JSON ({exc.msg} at column {exc.colno}). Fix or remove the line."
            ) from None
        if not isinstance(obj, dict):
            raise DataError(
                f'{p.name} line {n}: expected a JSON object like {{"text": ..., "label": ...}}, got '
                f"a {type(obj).__name__}. Put one object per line."
            )
        rows.append(obj)
        lines.append(n)
    return pd.DataFrame(rows), lines


@contextmanager
def _csv_field_limit(chars: int):
    """Let Python's csv reader take fields as long as the whole file: its default limit (131,072
    characters) rejects long documents, which are ordinary texts. Restored afterwards (it is global)."""
    import csv

    before = csv.field_size_limit()
    csv.field_size_limit(max(before, min(chars + 1, sys.maxsize)))
    try:
        yield
    finally:
        csv.field_size_limit(before)


def read_table(p: Path):
    """The table and the row number a user sees in an editor for each of its rows."""
    import csv
    import io

    import pandas as pd

    if p.stat().st_size == 0:
        raise DataError(f"{p} is empty (0 bytes). Expected a table with a text and a label column.")
    suffix = p.suffix.lower()
    try:
        if suffix == ".parquet":
            df = pd.read_parquet(p)
            header = [str(c) for c in df.columns]
            rows = list(range(1, len(df) + 1))
        else:
            text = _decode(p, p.read_bytes())
            if not text.strip():
                raise DataError(f"{p} holds only blank lines. Expected a table with a text and a label column.")
            if suffix == ".jsonl":
                df, rows = _read_jsonl(p, text)
                header = [str(c) for c in df.columns]
            elif suffix == ".json":
                df = pd.read_json(io.StringIO(text), dtype=False)
                header, rows = [str(c) for c in df.columns], list(range(1, len(df) + 1))
            else:
                sep = "\t" if suffix == ".tsv" else ","
                with _csv_field_limit(len(text)):
                    header = next(csv.reader(io.StringIO(text), delimiter=sep), [])
                    records = list(csv.reader(io.StringIO(text, newline=""), delimiter=sep))[1:]
                # pandas would also drop rows whose fields are all empty (",,"), silently; keep them (they
                # fail with their row named) and drop only truly blank lines
                df = pd.read_csv(
                    io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, na_values=[""], skip_blank_lines=False
                )
                rows = list(range(2, len(df) + 2))  # the header is row 1
                if len(records) == len(df):
                    keep = [i for i, r in enumerate(records) if r]
                    df, rows = df.iloc[keep].reset_index(drop=True), [rows[i] for i in keep]
                else:  # the two parsers disagree on the records: fall back to pandas' own blank-line rule
                    df = df.dropna(how="all").reset_index(drop=True)
                    rows = list(range(2, len(df) + 2))
    except DataError:
        raise
    except Exception as exc:  # pandas and pyarrow raise many types for malformed files
        detail = " ".join(str(exc).split()).replace("Error tokenizing data. C error: ", "")
        raise DataError(
            f"Could not read {p} as {suffix[1:].upper()}: {detail}. Fix the file (every row needs the "
            "same number of fields as the header) or re-save it from a spreadsheet or pandas."
        ) from None
    df.columns = [str(c) for c in df.columns]
    df.attrs["duplicates"] = sorted({c for c in header if header.count(c) > 1})
    return df, rows


def pick_column(df, wanted: str | None, role: str, flag: str, candidates: Sequence[str], p: Path) -> str:
    columns = [str(c) for c in df.columns]
    if wanted is not None:
        if wanted not in columns:
            raise DataError(
                f"Column '{wanted}' not found in {p.name} (columns: {', '.join(columns)}). "
                f"Pass {flag} with one of those."
            )
        return _unique(df, wanted, p)
    for name in candidates:
        if name in columns:
            return _unique(df, name, p)
    raise DataError(
        f"No {role} column in {p.name} (columns: {', '.join(columns)}); looked for "
        f"{', '.join(candidates)}. Pass {flag} COLUMN."
    )


def _unique(df, name: str, p: Path) -> str:
    if name in df.attrs.get("duplicates", ()):
        raise DataError(
            f"{p.name} has more than one column named '{name}', so which one to use is ambiguous. "
            "Rename the others (transferlab only reads your file)."
        )
    return name


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == ""


def from_table(
    path: str | Path,
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    split_column: str | None = None,
    group_column: str | None = None,
    time_column: str | None = None,
) -> Dataset:
    """A CSV, TSV, JSONL or Parquet file with one text and one label per row."""
    p = Path(path)
    df, rows = read_table(p)
    if len(df) == 0:
        raise DataError(f"{p} has a header but no rows. Expected one example per row.")
    text_col = pick_column(df, text_column, "text", "--text-column", ("text", "review", "sentence", "content"), p)
    label_col = pick_column(df, label_column, "label", "--label-column", ("label", "labels", "class", "target"), p)
    if text_col == label_col:
        raise DataError(
            f"Column '{text_col}' of {p.name} is both the text and the label column. Pass "
            "--text-column and --label-column with two different columns."
        )
    split_col = None
    if split_column is not None:
        split_col = pick_column(df, split_column, "split", "--split-column", (), p)

    texts, labels, splits, origins = [], [], [], []
    for i, (text, label) in enumerate(zip(df[text_col].tolist(), df[label_col].tolist())):
        where = f"{p.name} row {rows[i]}"
        _check_scalar(label, where, "label", label_col)
        _check_scalar(text, where, "text", text_col)
        if is_missing(label):
            raise DataError(
                f"{where}: the label column '{label_col}' is empty. Give every row a label or remove the row."
            )
        if is_missing(text):
            raise DataError(f"{where}: the text column '{text_col}' is empty. Give every row a text or remove the row.")
        texts.append(str(text))
        labels.append(_label_str(label))
        origins.append(where)
        if split_col is not None:
            splits.append(_parse_split(df[split_col].iloc[i], where, split_col))
    groups = times = None
    if group_column is not None:
        col = pick_column(df, group_column, "group", "--group-column", (), p)
        groups = []
        for i, g in enumerate(df[col].tolist()):
            if is_missing(g):
                raise DataError(
                    f"{p.name} row {rows[i]}: the group column '{col}' is empty. "
                    "Give every row a group (e.g. its product or patient id)."
                )
            groups.append(str(g))
    if time_column is not None:
        times = _parse_times(df, pick_column(df, time_column, "time", "--time-column", (), p), p, rows)
    return Dataset(
        "text",
        texts,
        labels,
        origins,
        splits if split_col else None,
        description=str(p),
        groups=groups,
        times=times,
        text_column=text_col,
    )


def _check_scalar(value: Any, where: str, role: str, column: str) -> None:
    """A cell must hold a string or a number, not a list, a mapping or bytes."""
    if isinstance(value, (list, tuple, dict, set, bytes, bytearray, np.ndarray)):
        raise DataError(
            f"{where}: the {role} column '{column}' holds a {type(value).__name__} "
            f"({str(value)[:40]}); expected a string. Store one plain value per cell."
        )


def _parse_times(df, col: str, p: Path, rows: list[int]) -> list:
    """Numbers stay numbers; anything else must parse as a date/time."""
    import pandas as pd

    values = df[col]
    parsed = pd.to_numeric(values, errors="coerce")
    if parsed.isna().any():
        parsed = pd.to_datetime(values, errors="coerce", utc=True)
    bad = parsed.isna().to_numpy().nonzero()[0]
    if len(bad):
        i = int(bad[0])
        raise DataError(
            f"{p.name} row {rows[i]}: time column '{col}' has {values.iloc[i]!r}, which is not a "
            "date, time or number. Fix the value (e.g. 2024-05-01) or remove the row."
        )
    return parsed.tolist()


def _label_str(label: Any) -> str:
    if isinstance(label, float) and label.is_integer():
        return str(int(label))
    return str(label).strip()


def _parse_split(value: Any, where: str, column: str) -> str:
    if is_missing(value):
        raise DataError(
            f"{where}: the split column '{column}' is empty; expected train, val or test. "
            "Fill it in or drop --split-column to let transferlab split."
        )
    key = str(value).strip().lower()
    if key not in SPLIT_ALIASES:
        raise DataError(
            f"{where}: split column '{column}' has '{value}'; expected train, val or test. "
            "Fix the value or drop --split-column to let transferlab split."
        )
    return SPLIT_ALIASES[key]


# --- folders of images ----------------------------------------------------------------------


def _folder_modality(folder: Path) -> str:
    """ "audio" when the folder holds sound files and no images, else "image"."""
    from .audio import AUDIO_EXTENSIONS

    suffixes = {f.suffix.lower() for f in folder.rglob("*") if not f.name.startswith(".")}
    if suffixes & AUDIO_EXTENSIONS and suffixes & IMAGE_EXTENSIONS:
        raise DataError(
            f"{folder} holds both images ({', '.join(sorted(suffixes & IMAGE_EXTENSIONS))}) and audio "
            f"({', '.join(sorted(suffixes & AUDIO_EXTENSIONS))}) files. Keep one modality per folder."
        )
    return "audio" if suffixes & AUDIO_EXTENSIONS else "image"


_IGNORED_NAMES = {"__MACOSX", "Thumbs.db", "desktop.ini"}  # debris archivers and file browsers leave behind
MAX_LISTED = 5  # unreadable files named in one error message


def _passed_over(name: str) -> bool:
    return name.startswith(".") or name in _IGNORED_NAMES


def skip_file(path: Path, kind: str, reason: str) -> dict:
    return {"origin": str(path), "kind": kind, "reason": reason}


def _inside(path: Path, root_real: Path) -> Path:
    """The real path of ``path``; a symbolic link that leads out of the data folder is refused."""
    real = Path(os.path.realpath(path))
    if real != root_real and root_real not in real.parents:
        raise DataError(
            f"{path} is a symbolic link to {real}, outside the data folder {root_real}. transferlab reads only "
            "files inside the folder you pass: copy the files in, or pass a folder that holds both."
        )
    return real


def media_files(folder: Path, root_real: Path, skipped: list[dict], extensions, kind: str) -> list[Path]:
    """Files with ``extensions`` below ``folder`` (``kind``: "image", "audio"); links are followed
    inside the data folder, each real folder once; everything else is listed in ``skipped``."""
    files, seen, stack = [], set(), [folder]
    while stack:
        d = stack.pop()
        real = _inside(d, root_real)
        if real in seen:  # a link back to a folder already walked (or a cycle)
            continue
        seen.add(real)
        for entry in sorted(d.iterdir()):
            if _passed_over(entry.name):
                skipped.append(skip_file(entry, "ignored", "hidden or system file"))
            elif entry.is_dir():
                stack.append(entry)
            elif entry.suffix.lower() in extensions:
                _inside(entry, root_real)
                files.append(entry)
            else:
                skipped.append(skip_file(entry, "ignored", f"not an {kind} file"))
    return sorted(files)


def _unreadable(f: Path) -> str | None:
    """Why ``f`` cannot be used as an image (decoded in full, so truncation shows), or None."""
    from PIL import Image, UnidentifiedImageError

    if not f.is_file():  # a broken link, a pipe (reading it would block) or a device
        return "not a regular file"
    if f.stat().st_size == 0:
        return "an empty file (0 bytes)"
    try:
        with Image.open(f) as im:
            im.draft(None, (64, 64))  # JPEG decodes at reduced scale: still reads every byte
            im.load()
    except UnidentifiedImageError:
        return "not a readable image (not a format PIL recognises)"
    except Exception as exc:  # PIL raises many types on malformed files, DecompressionBombError among them
        return f"not a readable image ({' '.join(str(exc).split()) or type(exc).__name__})"
    return None


def _refuse_unreadable(files: list[Path]) -> None:
    bad = [(f, reason) for f in files if (reason := _unreadable(f))]
    if not bad:
        return
    if len(bad) == 1:
        f, reason = bad[0]
        raise DataError(f"{f} is {reason}. Remove or replace it: transferlab does not drop examples it cannot read.")
    listed = "; ".join(f"{f} is {reason}" for f, reason in bad[:MAX_LISTED])
    more = f"; and {len(bad) - MAX_LISTED} more" if len(bad) > MAX_LISTED else ""
    raise DataError(
        f"{len(bad)} image files cannot be read: {listed}{more}. Remove or replace them: transferlab "
        "does not drop examples it cannot read."
    )


def subfolders(folder: Path, root_real: Path, skipped: list[dict]) -> list[Path]:
    """The visible subfolders of ``folder``; files and hidden entries beside them are passed over."""
    out = []
    for entry in sorted(folder.iterdir()):
        if _passed_over(entry.name):
            skipped.append(skip_file(entry, "ignored", "hidden or system file"))
        elif entry.is_dir():
            _inside(entry, root_real)
            out.append(entry)
        else:
            skipped.append(skip_file(entry, "ignored", "not inside a class folder"))
    return out


def from_image_folder(root: str | Path) -> Dataset:
    """``root/<class>/*.jpg``, or ``root/{train,val,test}/<class>/*.jpg`` to give the split.

    Hidden files and folders, files that are not images and files outside class folders are
    passed over and listed in ``Dataset.skipped``, as are class folders without images. An image
    file that cannot be decoded is refused (DataError naming every such file), and so is a
    symbolic link that leads out of ``root``.
    """
    root = Path(root)
    root_real = Path(os.path.realpath(root))
    skipped: list[dict] = []
    subdirs = subfolders(root, root_real, skipped)
    if not subdirs:
        raise DataError(
            f"{root} has no subfolders. Expected one subfolder per class (e.g. {root}/cat/1.jpg), "
            "optionally below train/, val/ and test/."
        )
    split_dirs = [d for d in subdirs if d.name.lower() in SPLIT_ALIASES]
    if split_dirs and len(split_dirs) != len(subdirs):
        other = [d.name for d in subdirs if d not in split_dirs]
        raise DataError(
            f"{root} mixes split folders ({', '.join(d.name for d in split_dirs)}) with other folders "
            f"({', '.join(other)}). Put every class folder under train/, val/ or test/, or use no split folders."
        )
    parts = [(SPLIT_ALIASES[d.name.lower()], d) for d in split_dirs] if split_dirs else [(None, root)]

    items, labels, origins, splits = [], [], [], []
    for split, base in parts:
        for class_dir in subdirs if base is root else subfolders(base, root_real, skipped):
            files = media_files(class_dir, root_real, skipped, IMAGE_EXTENSIONS, "image")
            if not files:
                skipped.append(skip_file(class_dir, "empty_class", "a class folder with no image files"))
            for f in files:
                items.append(str(f))
                labels.append(class_dir.name)
                origins.append(str(f))
                splits.append(split)
    if not items:
        seen = ", ".join(Path(s["origin"]).name for s in skipped[:MAX_LISTED])
        raise DataError(
            f"No images found under {root} (looked for {', '.join(sorted(IMAGE_EXTENSIONS))} "
            f"inside one subfolder per class)" + (f"; passed over: {seen}." if seen else ".")
        )
    _refuse_unreadable([Path(f) for f in items])
    return Dataset(
        "image",
        items,
        labels,
        origins,
        splits if split_dirs else None,
        description=str(root),
        notes=_skip_notes(skipped),
        skipped=skipped,
    )


def _skip_notes(skipped: list[dict]) -> list[str]:
    ignored = sum(s["kind"] == "ignored" for s in skipped)
    empty = [Path(s["origin"]).name for s in skipped if s["kind"] == "empty_class"]
    notes = []
    if ignored:
        notes.append(
            f"Passed over {ignored} file{'s' if ignored != 1 else ''} or folder{'s' if ignored != 1 else ''} "
            "that are not examples (hidden, not images, or outside a class folder); the audit lists them."
        )
    if empty:
        notes.append(
            f"Class folder{'s' if len(empty) != 1 else ''} without images, so not a class here: {', '.join(empty)}."
        )
    return notes


# --- in-memory ------------------------------------------------------------------------------


def from_arrays(
    items: Sequence[Any],
    labels: Sequence[Any],
    *,
    splits: Sequence[str] | None = None,
    modality: str | None = None,
    description: str = "in-memory data",
    groups: Sequence[Any] | None = None,
    times: Sequence[Any] | None = None,
) -> Dataset:
    """Lists or arrays from Python: texts (``str``), image paths, uint8 image arrays, audio paths or Clips."""
    items = list(items)
    labels = list(labels.tolist() if isinstance(labels, np.ndarray) else labels)
    if not items:
        raise DataError(f"{description}: no items. Pass at least one example per class.")
    if len(items) != len(labels):
        raise DataError(f"{description}: {len(items)} items but {len(labels)} labels; pass one label per item.")
    if modality is None:
        first = items[0]
        if isinstance(first, np.ndarray):
            modality = "image"
        elif isinstance(first, (str, Path)) and Path(str(first)).suffix.lower() in IMAGE_EXTENSIONS:
            modality = "image"
        elif _is_audio(first):
            modality = "audio"
        else:
            modality = "text"
    origins = [f"{description} item {i}" for i in range(len(items))]
    for i, label in enumerate(labels):
        if is_missing(label):
            raise DataError(f"{origins[i]}: the label is empty or NaN. Give every item a label.")
    if modality == "image":
        items = [np.asarray(x) if isinstance(x, np.ndarray) else str(x) for x in items]
        _check_image_arrays(items, origins)
    elif modality == "audio":
        items = [str(x) if isinstance(x, Path) else x for x in items]  # paths or Clips
    else:
        for i, text in enumerate(items):
            if not isinstance(text, str) or not text.strip():
                raise DataError(f"{origins[i]}: expected a non-empty string, got {type(text).__name__} {text!r:.40}.")
    parsed = None
    if splits is not None:
        parsed = [_parse_split(s, origins[i], "splits") for i, s in enumerate(splits)]
    return Dataset(
        modality,
        items,
        [_label_str(x) for x in labels],
        origins,
        parsed,
        description=description,
        groups=None if groups is None else [str(g) for g in groups],
        times=None if times is None else list(times),
    )


def _is_audio(item: Any) -> bool:
    from .audio import is_audio

    return is_audio(item)


def _check_image_arrays(items: list, origins: list[str]) -> None:
    """Arrays must be (H, W) or (H, W, C) numbers with C in 1, 3, 4, values 0..255 (not 0..1)."""
    peak = 0.0
    floats = False
    for item, where in zip(items, origins):
        if not isinstance(item, np.ndarray):
            continue
        if item.dtype.kind not in "biuf":
            raise DataError(f"{where}: an image array must hold numbers, got dtype {item.dtype}. Pass uint8 pixels.")
        if item.ndim not in (2, 3) or 0 in item.shape:
            raise DataError(
                f"{where}: an image array must have shape (H, W) or (H, W, C) with H, W > 0, got shape "
                f"{item.shape}. Pass one image per item."
            )
        if item.ndim == 3 and item.shape[2] not in (1, 3, 4):
            raise DataError(
                f"{where}: an image array needs 1, 3 or 4 channels (last axis), got shape {item.shape}. "
                "Channels-first arrays must be transposed to (H, W, C)."
            )
        if item.dtype.kind == "f":
            if not np.isfinite(item).all():
                raise DataError(f"{where}: the image array holds NaN or infinite values. Replace them with pixels.")
            floats, peak = True, max(peak, float(item.max()))
    if floats and 0 < peak <= 1.0:
        raise DataError(
            "Every float image array has values between 0 and 1, but pixels are read on a 0..255 scale "
            "(they would all look black). Multiply by 255 and pass uint8 arrays."
        )
