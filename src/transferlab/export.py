"""Ship a rung: ``export`` writes a self-contained artifact folder, ``load_artifact`` and
``predict_file`` apply it to new data.

During a run each rung's fitted model (``rungs.fitted.Fitted``) saves itself under
``models/<rung>/`` (``model.safetensors`` + ``model.json``, and for backbone rungs the files that
describe the backbone: ``preprocessing.json``, ``tokenizer/``, ``backbone/config.json``).
``export`` copies them, adds the pretrained encoder weights a ``frozen`` or ``zero_shot`` rung did
not store and the held-out metrics, and writes ``config.json``. ``Predictor`` loads the artifact
with ``Fitted.load``: the model classes the run used predict, with no second implementation here.
Weights are safetensors and settings JSON: nothing is unpickled. The layout is documented in
docs/EXPORT.md.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import ArtifactError, DataError
from .rungs.fitted import ARTIFACT, CONFIG, SAVED, SAVED_INFO, WEIGHTS, Fitted, load_tensors, read_json, write_json

FORMAT = ARTIFACT
__all__ = ["FORMAT", "SAVED", "ArtifactError", "Predictor", "export", "load_artifact", "predict_file", "read_items"]


# --- export ---------------------------------------------------------------------------------


def export(run_dir: str | Path, rung: str | None = None, out: str | Path | None = None) -> Path:
    """Write the fitted model of ``rung`` (default: the recommended one) as an artifact folder."""
    from .results import load_run
    from .version import __version__

    results = load_run(run_dir)
    run_path = results.path
    names = [r["name"] for r in results["rungs"]]
    if rung is None:
        rec = results.get("recommendation") or {}
        if not rec.get("rung"):
            raise ArtifactError(
                f"{run_path} has no recommended rung. Pass --rung with one of: {', '.join(names) or '(none)'}."
            )
        rung = rec["rung"]
    if rung not in names:
        raise ArtifactError(
            f"No rung '{rung}' in {run_path}. Available: {', '.join(names) or '(none: the run trained no rung)'}."
        )
    record = results.rung(rung)
    if "artifact" not in record:
        spec = _read_spec(run_path)
        if spec.get("save_models") is False:
            raise ArtifactError(
                f"{run_path} was run with save_models=False, so no fitted model was kept. "
                "Run it again with save_models=True (the default) to export a rung."
            )
        saved = [r["name"] for r in results["rungs"] if "artifact" in r]
        raise ArtifactError(
            f"Rung '{rung}' saved no model in {run_path} (strategy {record['strategy']} has no saved "
            f"format). Rungs with a saved model: {', '.join(saved) or '(none)'}."
        )
    src = run_path / record["artifact"]["path"]
    info = read_json(src / SAVED_INFO, f"the description of rung '{rung}'s saved model")
    if info.get("not_exportable"):
        raise ArtifactError(f"Rung '{rung}' cannot be exported: {info['not_exportable']}")
    tensors = load_tensors(src / WEIGHTS)
    backbone = info.get("backbone")
    if backbone is not None and not info.get("includes_encoder"):  # the unchanged pretrained encoder
        from .backbones.saving import pretrained_state

        encoder = pretrained_state(backbone, f"Rung '{rung}'")
        tensors = {**{f"encoder.{k}": v for k, v in encoder.items()}, **tensors}

    out = Path(out) if out else run_path / "exported" / Path(record["artifact"]["path"]).name
    if out.exists() and any(out.iterdir()):
        raise ArtifactError(f"'{out}' already exists and is not empty. Pass another --out or remove it.")
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp, ignore=shutil.ignore_patterns(SAVED_INFO, WEIGHTS))
    from safetensors.torch import save_file

    save_file(
        {k: v.contiguous() for k, v in tensors.items()},
        str(tmp / WEIGHTS),
        metadata={"format": "pt", "transferlab": FORMAT},
    )
    labels, spec = list(results["task"]["labels"]), _read_spec(run_path)
    write_json(
        tmp / CONFIG,
        {
            "format": FORMAT,
            "transferlab": __version__,
            "rung": rung,
            "strategy": record["strategy"],
            "modality": results["task"]["modality"],
            "labels": labels,
            "label_map": {l: i for i, l in enumerate(labels)},
            "head": info["head"],
            "backbone": backbone,
            "seed": (record.get("seeds") or [None])[0],
            "metrics": _metrics(record),
            "chosen": record.get("chosen", {}),
            "run": {
                "path": str(run_path),
                "source": results["task"].get("source"),
                "splits": results["task"].get("splits"),
                **{k: spec[k] for k in ("text_column", "label_column") if spec.get(k)},
            },
        },
    )
    if out.exists():
        out.rmdir()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(out)
    return out


def _read_spec(run_path: Path) -> dict:
    try:
        return json.loads((run_path / "spec.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def _metrics(record: dict) -> dict:
    """The held-out test metrics with their intervals; with several seeds, this model's own value too."""
    out: dict[str, Any] = {"test_n": record["test"].get("n")}
    for split in ("test", "val"):
        block = record.get(split) or {}
        out[split] = {m: dict(block[m]) for m in ("accuracy", "balanced_accuracy", "macro_f1") if m in block}
        for m, v in out[split].items():
            if v.get("seeds"):
                v["this_model"] = v["seeds"][0]
    if "ece" in record["test"]:
        out["test"]["ece"] = record["test"]["ece"]
    return out


# --- loading and predicting ---------------------------------------------------------------------


class Predictor:
    """An exported rung: ``predict_proba(items) -> (N, C)``, ``predict(items) -> labels``.

    Items are texts, or image paths / uint8 arrays, as for ``transferlab.run``. The model is the
    fitted model class the run used, loaded with ``Fitted.load`` (by the head kind config.json names).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_dir():
            raise ArtifactError(f"Artifact folder '{path}' does not exist. Pass the folder transferlab export wrote.")
        self.config = read_json(self.path / CONFIG, "the artifact's config")
        if self.config.get("format") != FORMAT:
            raise ArtifactError(
                f"{self.path / CONFIG} has format {self.config.get('format')!r}; this version of "
                f"transferlab reads {FORMAT!r}."
            )
        self.labels: list[str] = list(self.config["labels"])
        self.modality: str = self.config["modality"]
        self.model = Fitted.load(self.path)

    def __repr__(self) -> str:
        return f"Predictor({self.config['rung']!r}, {len(self.labels)} classes, {self.path})"

    def predict_proba(self, items: Sequence) -> np.ndarray:
        items = list(items)
        self._check_items(items)
        return self.model.predict_proba(items) if items else np.zeros((0, len(self.labels)))

    def predict(self, items: Sequence) -> list[str]:
        return [self.labels[i] for i in self.predict_proba(items).argmax(1)]

    def _check_items(self, items: list) -> None:
        from .data.sources import IMAGE_EXTENSIONS

        for i, x in enumerate(items):
            is_text = isinstance(x, str) and not (
                self.modality == "image" and Path(x).suffix.lower() in IMAGE_EXTENSIONS
            )
            if self.modality == "text" and not is_text:
                raise DataError(f"Item {i} is {type(x).__name__}, but the model '{self.config['rung']}' reads text.")
            if self.modality == "image" and is_text and not Path(x).is_file():
                raise DataError(
                    f"Item {i} ('{str(x)[:60]}') is not an image file or array, but the model "
                    f"'{self.config['rung']}' reads images. Pass image paths or uint8 arrays."
                )


def load_artifact(path: str | Path) -> Predictor:
    """Load a folder written by ``transferlab export``; returns a :class:`Predictor`."""
    return Predictor(path)


def read_items(
    data: Sequence[str | Path],
    modality: str,
    text_column: str | None = None,
    label_column: str | None = None,
    run_columns: dict | None = None,
) -> tuple[list, list[str], list[str] | None]:
    """Items, their origins and (if the data has them) labels, read like ``transferlab run`` reads data.

    ``data`` is one table (CSV/TSV/JSONL/Parquet), one folder of images (labelled when every image
    sits in a class subfolder) or several image files.
    """
    from .data.sources import IMAGE_EXTENSIONS, TABLE_EXTENSIONS

    paths = [Path(d).expanduser() for d in data]
    for p in paths:
        if not p.exists():
            raise DataError(
                f"Data path '{p}' does not exist. Pass a CSV/JSONL/Parquet file, a folder of images or image files."
            )
    table = len(paths) == 1 and paths[0].is_file() and paths[0].suffix.lower() in TABLE_EXTENSIONS
    if (modality == "text") != table:
        found = (
            "a table of texts"
            if table
            else "a folder"
            if paths[0].is_dir()
            else f"a '{paths[0].suffix or paths[0].name}' file"
            + (f" and {len(paths) - 1} more" if len(paths) > 1 else "")
        )
        raise DataError(
            f"The model reads {modality} but {', '.join(map(str, paths[:3]))} is {found}. Pass "
            f"{'a CSV/JSONL/Parquet file of texts' if modality == 'text' else 'image files or a folder of images'}."
        )
    if table:
        return _read_text_table(paths[0], text_column, label_column, run_columns or {})
    if len(paths) == 1 and paths[0].is_dir():
        root = paths[0]
        files = sorted(
            f
            for f in root.rglob("*")
            if f.is_file()
            and f.suffix.lower() in IMAGE_EXTENSIONS
            and not any(part.startswith(".") for part in f.relative_to(root).parts)
        )
        if not files:
            raise DataError(f"{root} holds no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}).")
        if all(f.parent != root for f in files):  # class subfolders: labelled, read like a training folder
            from .data import load_data

            ds = load_data(root)
            return ds.items, ds.origins, ds.labels
        paths = files
    from .backbones.images import load_image

    for p in paths:
        if p.is_dir() or p.suffix.lower() not in IMAGE_EXTENSIONS:
            raise DataError(
                f"{p} is not an image file ({', '.join(sorted(IMAGE_EXTENSIONS))}). Pass image files, "
                "one folder of images, or one table of texts."
            )
        load_image(p)  # a DataError naming the file if it cannot be decoded
    return [str(p) for p in paths], [str(p) for p in paths], None


def _read_text_table(p: Path, text_column: str | None, label_column: str | None, run_columns: dict):
    """With a label column (given, the run's, or label/labels/class/target): read by ``from_table``
    like a training file. Without one: texts only. Columns not given default to the run's."""
    from .data.sources import from_table, is_missing, pick_column, read_table

    read = read_table(p)
    df, rows = read if isinstance(read, tuple) else (read, None)
    if len(df) == 0:
        raise DataError(f"{p} has a header but no rows. Expected one text per row.")
    columns = [str(c) for c in df.columns]
    if text_column is None and run_columns.get("text_column") in columns:
        text_column = run_columns["text_column"]
    if label_column is None:
        label_column = next(
            (
                c
                for c in (run_columns.get("label_column"), "label", "labels", "class", "target")
                if c in columns and c != text_column
            ),
            None,
        )
    if label_column is not None:
        ds = from_table(p, text_column=text_column, label_column=label_column)
        return ds.items, ds.origins, ds.labels
    text_col = pick_column(df, text_column, "text", "--text-column", ("text", "review", "sentence", "content"), p)
    rows = rows or list(range(2 if p.suffix.lower() in (".csv", ".tsv") else 1, len(df) + 2))
    texts, origins = [], []
    for i, text in enumerate(df[text_col].tolist()):
        where = f"{p.name} row {rows[i]}"
        if is_missing(text):
            raise DataError(f"{where}: the text column '{text_col}' is empty. Give every row a text or remove the row.")
        texts.append(str(text))
        origins.append(where)
    return texts, origins, None


def predict_file(
    artifact: str | Path | Predictor,
    data: Sequence[str | Path] | str | Path,
    out: str | Path = "predictions.csv",
    text_column: str | None = None,
    label_column: str | None = None,
) -> dict[str, Any]:
    """Predict ``data`` with an artifact and write a CSV (origin, predicted, one probability per class).

    Returns ``{"path", "n", "metrics"}``; metrics (accuracy, macro-F1 with 95% intervals) only
    when the data has labels.
    """
    import pandas as pd

    from .evaluation import evaluate

    predictor = artifact if isinstance(artifact, Predictor) else load_artifact(artifact)
    data = [data] if isinstance(data, (str, Path)) else list(data)
    out = Path(out)
    if any(out.resolve() == Path(d).expanduser().resolve() for d in data):
        raise DataError(f"--out {out} is the input data; transferlab never overwrites your data. Pass another --out.")
    items, origins, labels = read_items(
        data, predictor.modality, text_column, label_column, predictor.config.get("run", {})
    )
    index = {label: i for i, label in enumerate(predictor.labels)}
    if labels is not None:
        for origin, label in zip(origins, labels):
            if label not in index:
                raise DataError(
                    f"{origin}: label '{label}' is not a class of the model ({', '.join(predictor.labels)}). "
                    "Fix the label, remove the row, or predict without the label column."
                )
    proba = predictor.predict_proba(items)
    pred = proba.argmax(1)
    table = {"origin": origins, "predicted": [predictor.labels[i] for i in pred]}
    if labels is not None:
        table["label"] = labels
    table.update({f"p_{label}": proba[:, i] for i, label in enumerate(predictor.labels)})
    out.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(table).to_csv(out, index=False)
    metrics = None
    if labels is not None:
        y = np.array([index[label] for label in labels])
        scores = evaluate(y, pred, predictor.labels, with_details=False)
        metrics = {m: scores[m] for m in ("accuracy", "macro_f1")}
    return {"path": out, "n": len(items), "metrics": metrics, "predictions": pred, "proba": proba}
