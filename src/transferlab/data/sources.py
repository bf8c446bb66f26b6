"""Where examples come from: an image folder, a CSV/JSONL/Parquet table, or in-memory lists.

Every source produces a :class:`Dataset`: items (texts, image paths or image arrays), string
labels, the split each item belongs to when the user gave one, and an ``origin`` per item
(``reviews.csv row 12``, a file path) so that every later error can point at the example.
The user's files are only ever read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import DataError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
TABLE_EXTENSIONS = {".csv", ".tsv", ".jsonl", ".json", ".parquet"}
SPLIT_NAMES = ("train", "val", "test")
_SPLIT_ALIASES = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validation": "val", "dev": "val",
    "test": "test", "testing": "test", "holdout": "test",
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

    def __post_init__(self) -> None:
        n = len(self.items)
        if not (len(self.labels) == len(self.origins) == n):
            raise DataError(
                f"{self.description or 'dataset'}: {n} items but {len(self.labels)} labels; "
                "pass one label per item."
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
        return from_table(p, text_column=text_column, label_column=label_column, split_column=split_column,
                          group_column=group_column, time_column=time_column)
    raise DataError(
        f"Don't know how to read '{p.name}' (extension '{p.suffix}'). Expected a folder of images "
        f"or a file ending in {', '.join(sorted(TABLE_EXTENSIONS))}."
    )


# --- tables of texts ------------------------------------------------------------------------

def _read_table(p: Path):
    import pandas as pd

    if p.stat().st_size == 0:
        raise DataError(f"{p} is empty (0 bytes). Expected a table with a text and a label column.")
    suffix = p.suffix.lower()
    try:
        if suffix in (".csv", ".tsv"):
            return pd.read_csv(p, sep="\t" if suffix == ".tsv" else ",", dtype=str, keep_default_na=False,
                               na_values=[""], encoding="utf-8")
        if suffix in (".jsonl", ".json"):
            return pd.read_json(p, lines=suffix == ".jsonl", dtype=False)
        return pd.read_parquet(p)
    except UnicodeDecodeError as exc:
        raise DataError(f"{p} is not valid UTF-8 ({exc.reason} at byte {exc.start}). Re-save it as UTF-8.") from None
    except Exception as exc:  # pandas raises many types for malformed files
        raise DataError(f"Could not read {p} as {suffix[1:].upper()}: {exc}".rstrip()) from None


def _pick_column(df, wanted: str | None, role: str, flag: str, candidates: Sequence[str], p: Path) -> str:
    columns = [str(c) for c in df.columns]
    if wanted is not None:
        if wanted not in columns:
            raise DataError(
                f"Column '{wanted}' not found in {p.name} (columns: {', '.join(columns)}). "
                f"Pass {flag} with one of those."
            )
        return wanted
    for name in candidates:
        if name in columns:
            return name
    raise DataError(
        f"No {role} column in {p.name} (columns: {', '.join(columns)}); looked for "
        f"{', '.join(candidates)}. Pass {flag} COLUMN."
    )


def _is_missing(value: Any) -> bool:
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
    df = _read_table(p)
    if len(df) == 0:
        raise DataError(f"{p} has a header but no rows. Expected one example per row.")
    text_col = _pick_column(df, text_column, "text", "--text-column", ("text", "review", "sentence", "content"), p)
    label_col = _pick_column(df, label_column, "label", "--label-column", ("label", "labels", "class", "target"), p)
    split_col = None
    if split_column is not None:
        split_col = _pick_column(df, split_column, "split", "--split-column", (), p)
    row_offset = 2 if p.suffix.lower() in (".csv", ".tsv") else 1  # the row number a user sees in an editor

    texts, labels, splits, origins = [], [], [], []
    for i, (text, label) in enumerate(zip(df[text_col].tolist(), df[label_col].tolist())):
        where = f"{p.name} row {i + row_offset}"
        if _is_missing(label):
            raise DataError(f"{where}: the label column '{label_col}' is empty. Give every row a label or remove the row.")
        if _is_missing(text):
            raise DataError(f"{where}: the text column '{text_col}' is empty. Give every row a text or remove the row.")
        texts.append(str(text))
        labels.append(_label_str(label))
        origins.append(where)
        if split_col is not None:
            splits.append(_parse_split(df[split_col].iloc[i], where, split_col))
    groups = times = None
    if group_column is not None:
        col = _pick_column(df, group_column, "group", "--group-column", (), p)
        groups = []
        for i, g in enumerate(df[col].tolist()):
            if _is_missing(g):
                raise DataError(f"{p.name} row {i + row_offset}: the group column '{col}' is empty. "
                                "Give every row a group (e.g. its product or patient id).")
            groups.append(str(g))
    if time_column is not None:
        times = _parse_times(df, _pick_column(df, time_column, "time", "--time-column", (), p), p, row_offset)
    return Dataset("text", texts, labels, origins, splits if split_col else None, description=str(p),
                   groups=groups, times=times)


def _parse_times(df, col: str, p: Path, row_offset: int) -> list:
    """Numbers stay numbers; anything else must parse as a date/time."""
    import pandas as pd

    values = df[col]
    parsed = pd.to_numeric(values, errors="coerce")
    if parsed.isna().any():
        parsed = pd.to_datetime(values, errors="coerce", utc=True)
    bad = parsed.isna().to_numpy().nonzero()[0]
    if len(bad):
        i = int(bad[0])
        raise DataError(f"{p.name} row {i + row_offset}: time column '{col}' has {values.iloc[i]!r}, which is not a "
                        "date, time or number. Fix the value (e.g. 2024-05-01) or remove the row.")
    return parsed.tolist()


def _label_str(label: Any) -> str:
    if isinstance(label, float) and label.is_integer():
        return str(int(label))
    return str(label).strip()


def _parse_split(value: Any, where: str, column: str) -> str:
    key = str(value).strip().lower()
    if key not in _SPLIT_ALIASES:
        raise DataError(
            f"{where}: split column '{column}' has '{value}'; expected train, val or test. "
            "Fix the value or drop --split-column to let transferlab split."
        )
    return _SPLIT_ALIASES[key]


# --- folders of images ----------------------------------------------------------------------

def _folder_modality(folder: Path) -> str:
    """"audio" when the folder holds sound files and no images, else "image"."""
    from .audio import AUDIO_EXTENSIONS

    suffixes = {f.suffix.lower() for f in folder.rglob("*") if not f.name.startswith(".")}
    if suffixes & AUDIO_EXTENSIONS and suffixes & IMAGE_EXTENSIONS:
        raise DataError(f"{folder} holds both images ({', '.join(sorted(suffixes & IMAGE_EXTENSIONS))}) and audio "
                        f"({', '.join(sorted(suffixes & AUDIO_EXTENSIONS))}) files. Keep one modality per folder.")
    return "audio" if suffixes & AUDIO_EXTENSIONS else "image"


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        f for f in folder.rglob("*")
        if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS and not f.name.startswith(".")
    )


def _check_image(f: Path) -> None:
    from PIL import Image, UnidentifiedImageError

    if f.stat().st_size == 0:
        raise DataError(f"{f} is an empty file (0 bytes). Remove it or replace it with a valid image.")
    try:
        with Image.open(f) as im:
            im.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{f} is not a readable image ({exc}). Remove it or replace it with a valid image.") from None


def from_image_folder(root: str | Path) -> Dataset:
    """``root/<class>/*.jpg``, or ``root/{train,val,test}/<class>/*.jpg`` to give the split."""
    root = Path(root)
    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not subdirs:
        raise DataError(
            f"{root} has no subfolders. Expected one subfolder per class (e.g. {root}/cat/1.jpg), "
            "optionally below train/, val/ and test/."
        )
    split_dirs = [d for d in subdirs if d.name.lower() in _SPLIT_ALIASES]
    if split_dirs and len(split_dirs) != len(subdirs):
        other = [d.name for d in subdirs if d not in split_dirs]
        raise DataError(
            f"{root} mixes split folders ({', '.join(d.name for d in split_dirs)}) with other folders "
            f"({', '.join(other)}). Put every class folder under train/, val/ or test/, or use no split folders."
        )
    parts = [(_SPLIT_ALIASES[d.name.lower()], d) for d in split_dirs] if split_dirs else [(None, root)]

    items, labels, origins, splits = [], [], [], []
    for split, base in parts:
        for class_dir in sorted(d for d in base.iterdir() if d.is_dir() and not d.name.startswith(".")):
            for f in _image_files(class_dir):
                _check_image(f)
                items.append(str(f))
                labels.append(class_dir.name)
                origins.append(str(f))
                splits.append(split)
    if not items:
        raise DataError(
            f"No images found under {root} (looked for {', '.join(sorted(IMAGE_EXTENSIONS))} "
            "inside one subfolder per class)."
        )
    return Dataset("image", items, labels, origins, splits if split_dirs else None, description=str(root))


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
        if _is_missing(label):
            raise DataError(f"{origins[i]}: the label is empty or NaN. Give every item a label.")
    if modality == "image":
        items = [np.asarray(x) if isinstance(x, np.ndarray) else str(x) for x in items]
    elif modality == "audio":
        items = [str(x) if isinstance(x, Path) else x for x in items]  # paths or Clips
    else:
        for i, text in enumerate(items):
            if not isinstance(text, str) or not text.strip():
                raise DataError(f"{origins[i]}: expected a non-empty string, got {type(text).__name__} {text!r:.40}.")
    parsed = None
    if splits is not None:
        parsed = [_parse_split(s, origins[i], "splits") for i, s in enumerate(splits)]
    return Dataset(modality, items, [_label_str(x) for x in labels], origins, parsed, description=description,
                   groups=None if groups is None else [str(g) for g in groups],
                   times=None if times is None else list(times))


def _is_audio(item: Any) -> bool:
    from .audio import is_audio

    return is_audio(item)
