"""Ship a rung: ``export`` writes a self-contained artifact folder, ``load_artifact`` and
``predict_file`` apply it to new data.

During a run each rung's ``save`` writes its fitted pieces under ``models/<rung>/`` with
``write_saved`` (``model.safetensors`` + ``model.json``, and for backbone rungs the files that
describe the backbone: ``preprocessing.json``, ``tokenizer/``, ``backbone/config.json``).
``export`` copies them, adds the pretrained encoder weights a ``frozen`` rung did not store and
the held-out metrics, and writes ``config.json``. Weights are safetensors and settings JSON:
nothing is unpickled. The layout is documented in docs/EXPORT.md.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import DataError, TransferlabError

FORMAT = "transferlab.artifact/1"
SAVED = "transferlab.saved/1"
WEIGHTS, CONFIG, PREPROCESSING, SAVED_INFO = "model.safetensors", "config.json", "preprocessing.json", "model.json"


class ArtifactError(TransferlabError):
    """A run cannot be exported, or an artifact folder cannot be loaded."""


# --- saving during a run -----------------------------------------------------------------------

def describe_backbone(backbone) -> dict[str, Any]:
    """How to rebuild the encoder without the original source, and how to prepare its inputs."""
    from torch import nn

    from .backbones.hf import HFTextBackbone
    from .backbones.images import ImageBackbone, TimmBackbone, TorchvisionBackbone

    desc: dict[str, Any] = {"name": backbone.name, "source": backbone.provenance.get("source", backbone.name),
                            "modality": backbone.modality, "feature_dim": backbone.feature_dim,
                            "weights_id": backbone.cache_id()}
    if isinstance(backbone, HFTextBackbone):
        desc["resolve"] = {"name": backbone.name, "options": {"max_length": backbone.max_length,
                                                              "trust_remote_code": backbone.trust_remote_code}}
        desc.update(library="transformers", model_type=backbone.config.model_type,
                    architectures=backbone.config.architectures, config="backbone/config.json")
        return desc
    if backbone.modality != "image" or not isinstance(backbone, ImageBackbone):
        raise ArtifactError(f"Backbone '{backbone.name}' ({type(backbone).__name__}) has no export format yet; "
                            "export supports Hugging Face text, torchvision, timm and EfficientNet-Lite backbones.")
    desc["resolve"] = {"name": backbone.name, "options": {"image_size": backbone.image_size}}
    if isinstance(backbone, TorchvisionBackbone):
        model = backbone.encoder().model
        removed = next((a for a in ("classifier", "fc", "head", "heads") if isinstance(getattr(model, a, None), nn.Identity)), None)
        desc.update(library="torchvision", arch=backbone.arch, head_removed=removed)
    elif isinstance(backbone, TimmBackbone):
        desc.update(library="timm", arch=backbone.arch)
    elif type(backbone).__name__ == "EfficientNetLiteBackbone":
        desc.update(library="efficientnet_lite_pytorch", arch=f"efficientnet-lite{backbone.variant}",
                    image_size=backbone.image_size)
    else:
        raise ArtifactError(f"Image backbone '{backbone.name}' ({type(backbone).__name__}) has no export format yet.")
    return desc


def preprocessing_of(backbone, batch_size: int) -> dict[str, Any]:
    """Everything that turns a raw item into the encoder's input, as the run did it."""
    if backbone.modality == "text":
        return {"modality": "text", "tokenizer": "tokenizer", "max_length": backbone.max_length, "padding": "longest",
                "truncation": True, "pooling": backbone.pooling, "normalize": backbone.normalize,
                "batch_size": batch_size, "sort_by": "character length"}
    return {"modality": "image", "convert": "RGB", "image_size": backbone.image_size,
            "resize": "bilinear, antialiased, to image_size x image_size (aspect ratio not kept), no crop",
            "scale": "pixel / 255", "mean": list(backbone.mean), "std": list(backbone.std), "batch_size": batch_size}


def write_saved(folder: Path, *, strategy: str, tensors: dict, head: dict, backbone=None, batch_size: int = 32,
                includes_encoder: bool = False, files: dict[str, Any] | None = None,
                unsafe: str | None = None) -> dict[str, Any]:
    """Write a rung's fitted model into ``folder``; returns the metadata results.json keeps.

    ``tensors`` maps names to numpy arrays or torch tensors; ``files`` are extra JSON files;
    ``unsafe`` says which piece could not be stored safely (export then refuses the rung).
    """
    import torch
    from safetensors.torch import save_file

    folder = Path(folder)
    info: dict[str, Any] = {"format": SAVED, "strategy": strategy, "head": head, "includes_encoder": includes_encoder}
    try:  # a backbone export cannot describe must not fail the run: the weights are still kept
        described = describe_backbone(backbone) if backbone is not None else None
    except ArtifactError as exc:
        described, unsafe = None, unsafe or str(exc)
    if unsafe:
        info["not_exportable"] = unsafe
    if described is not None:
        info["backbone"] = described
        info["preprocessing"] = preprocessing_of(backbone, batch_size)
        _write_json(folder / PREPROCESSING, info["preprocessing"])
        if backbone.modality == "text":
            backbone.tokenizer.save_pretrained(folder / "tokenizer")
            backbone.config.save_pretrained(folder / "backbone")
    for name, content in (files or {}).items():
        _write_json(folder / name, content)
    as_torch = {k: (torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v.detach().cpu().clone())
                .contiguous() for k, v in tensors.items()}  # weights trained on a GPU are saved from the CPU
    save_file(as_torch, str(folder / WEIGHTS), metadata={"format": "pt", "transferlab": SAVED})
    _write_json(folder / SAVED_INFO, info)
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    meta = {"format": SAVED, "bytes": size, "encoder_weights": "included" if includes_encoder else
            ("from the backbone source at export" if backbone is not None else "none")}
    if unsafe:
        meta["not_exportable"] = unsafe
    return meta


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")


def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise ArtifactError(f"{path} is missing: {what}. Export the rung again (transferlab export RUN_DIR --rung NAME).")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path} is not valid JSON ({exc}); the file is damaged. Export the rung again.") from None


def _load_tensors(path: Path) -> dict:
    from safetensors.torch import load_file

    if not path.is_file():
        raise ArtifactError(f"{path} is missing: the model weights. Export the rung again.")
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for truncated or foreign files
        raise ArtifactError(f"{path} is not a readable safetensors file ({str(exc).splitlines()[0]}); "
                            "the file is damaged or incomplete. Export the rung again.") from None


# --- export ---------------------------------------------------------------------------------

def export(run_dir: str | Path, rung: str | None = None, out: str | Path | None = None) -> Path:
    """Write the fitted model of ``rung`` (default: the recommended one) as an artifact folder."""
    from . import __version__
    from .results import load_run

    results = load_run(run_dir)
    run_path = results.path
    names = [r["name"] for r in results["rungs"]]
    if rung is None:
        rec = results.get("recommendation") or {}
        if not rec.get("rung"):
            raise ArtifactError(f"{run_path} has no recommended rung. Pass --rung with one of: {', '.join(names) or '(none)'}.")
        rung = rec["rung"]
    if rung not in names:
        raise ArtifactError(f"No rung '{rung}' in {run_path}. Available: {', '.join(names) or '(none: the run trained no rung)'}.")
    record = results.rung(rung)
    if "artifact" not in record:
        spec = _read_spec(run_path)
        if spec.get("save_models") is False:
            raise ArtifactError(f"{run_path} was run with save_models=False, so no fitted model was kept. "
                                "Run it again with save_models=True (the default) to export a rung.")
        saved = [r["name"] for r in results["rungs"] if "artifact" in r]
        raise ArtifactError(f"Rung '{rung}' saved no model in {run_path} (strategy {record['strategy']} has no saved "
                            f"format). Rungs with a saved model: {', '.join(saved) or '(none)'}.")
    src = run_path / record["artifact"]["path"]
    info = _read_json(src / SAVED_INFO, f"the description of rung '{rung}'s saved model")
    if info.get("not_exportable"):
        raise ArtifactError(f"Rung '{rung}' cannot be exported: {info['not_exportable']}")
    tensors = _load_tensors(src / WEIGHTS)
    backbone = info.get("backbone")
    if backbone is not None and not info.get("includes_encoder"):
        tensors = {**_pretrained_encoder(backbone, rung), **tensors}

    out = Path(out) if out else run_path / "exported" / Path(record["artifact"]["path"]).name
    if out.exists() and any(out.iterdir()):
        raise ArtifactError(f"'{out}' already exists and is not empty. Pass another --out or remove it.")
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp, ignore=shutil.ignore_patterns(SAVED_INFO, WEIGHTS))
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp / WEIGHTS), metadata={"format": "pt", "transferlab": FORMAT})
    labels, spec = list(results["task"]["labels"]), _read_spec(run_path)
    _write_json(tmp / CONFIG, {
        "format": FORMAT, "transferlab": __version__, "rung": rung, "strategy": record["strategy"],
        "modality": results["task"]["modality"], "labels": labels, "label_map": {l: i for i, l in enumerate(labels)},
        "head": info["head"], "backbone": backbone, "seed": (record.get("seeds") or [None])[0],
        "metrics": _metrics(record), "chosen": record.get("chosen", {}),
        "run": {"path": str(run_path), "source": results["task"].get("source"), "splits": results["task"].get("splits"),
                **{k: spec[k] for k in ("text_column", "label_column") if spec.get(k)}},
    })
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


def _pretrained_encoder(desc: dict, rung: str) -> dict:
    """The frozen encoder's weights, from the backbone source the run used (checked to be unchanged)."""
    from .backbones import resolve

    try:
        backbone = resolve(desc["resolve"]["name"], **desc["resolve"]["options"])
    except TransferlabError as exc:
        raise ArtifactError(f"Rung '{rung}' keeps its backbone frozen and export reads its weights from "
                            f"'{desc['resolve']['name']}', which cannot be loaded now: {exc}") from None
    encoder = backbone.encoder()
    if backbone.cache_id() != desc["weights_id"]:
        raise ArtifactError(f"The weights or preprocessing of backbone '{desc['name']}' changed since the run "
                            f"({backbone.cache_id()} now, {desc['weights_id']} then). Run the ladder again, then export.")
    return {f"encoder.{k}": v for k, v in encoder.state_dict().items()}


# --- loading and predicting ---------------------------------------------------------------------

class Predictor:
    """An exported rung: ``predict_proba(items) -> (N, C)``, ``predict(items) -> labels``.

    Items are texts, or image paths / uint8 arrays, as for ``transferlab.run``.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_dir():
            raise ArtifactError(f"Artifact folder '{path}' does not exist. Pass the folder transferlab export wrote.")
        self.config = _read_json(self.path / CONFIG, "the artifact's config")
        if self.config.get("format") != FORMAT:
            raise ArtifactError(f"{self.path / CONFIG} has format {self.config.get('format')!r}; this version of "
                                f"transferlab reads {FORMAT!r}.")
        self.labels: list[str] = list(self.config["labels"])
        self.modality: str = self.config["modality"]
        self.tensors = _load_tensors(self.path / WEIGHTS)
        head = self.config["head"]
        heads = {"prior": self._prior, "logreg": self._logreg, "classifier": self._classifier, "small": self._small}
        self._proba = heads.get(head["kind"])
        if self._proba is None:
            raise ArtifactError(f"{self.path / CONFIG}: head kind {head['kind']!r} is not known to this version of "
                                f"transferlab (known: {', '.join(heads)}). Upgrade transferlab.")
        if head["kind"] == "small":  # a whole small model with its own input pipeline, no backbone
            self._small_model, self._small_prep = self._build_small(head)
            self.preprocessing = self._encoder = self._features = None
            return
        self.preprocessing = _read_json(self.path / PREPROCESSING, "the preprocessing settings") \
            if self.config.get("backbone") else None
        self._encoder = self._build_encoder() if self.config.get("backbone") else None
        self._features = self._build_features(head.get("features", "backbone"))

    def __repr__(self) -> str:
        return f"Predictor({self.config['rung']!r}, {len(self.labels)} classes, {self.path})"

    def predict_proba(self, items: Sequence) -> np.ndarray:
        items = list(items)
        self._check_items(items)
        return self._proba(items) if items else np.zeros((0, len(self.labels)))

    def predict(self, items: Sequence) -> list[str]:
        return [self.labels[i] for i in self.predict_proba(items).argmax(1)]

    # --- pieces ---
    def _check_items(self, items: list) -> None:
        for i, x in enumerate(items):
            is_text = isinstance(x, str) and not (self.modality == "image" and Path(x).suffix.lower() in _image_suffixes())
            if self.modality == "text" and not is_text:
                raise DataError(f"Item {i} is {type(x).__name__}, but the model '{self.config['rung']}' reads text.")
            if self.modality == "image" and is_text and not Path(x).is_file():
                raise DataError(f"Item {i} ('{str(x)[:60]}') is not an image file or array, but the model "
                                f"'{self.config['rung']}' reads images. Pass image paths or uint8 arrays.")

    def _prior(self, items: list) -> np.ndarray:
        return np.tile(self.tensors["prior"].double().numpy(), (len(items), 1))

    def _logreg(self, items: list) -> np.ndarray:
        return logreg_proba(self.tensors, self._features(items), len(self.labels))

    def _classifier(self, items: list) -> np.ndarray:
        import torch

        logits = self._batched(items, lambda batch: self._model(**batch))
        return torch.softmax(torch.from_numpy(logits).double(), dim=1).numpy()

    def _small(self, items: list) -> np.ndarray:
        import torch

        from .training import predict_logits

        X = self._small_prep.encode(items)
        logits = predict_logits(self._small_model, lambda rows, train: self._small_prep.batch(X, rows, False),
                                list(range(len(items))), 256)
        return torch.softmax(torch.from_numpy(logits).double(), dim=1).numpy()

    def _build_small(self, head: dict):
        """The scratch_small model (architecture from config.json) and its input preparation (JSON)."""
        from .rungs.small_models import build_model, prep_from_json

        prep_json = _read_json(self.path / head["preprocessing"], "the small model's input preparation")
        vocabulary = _read_json(self.path / "vocabulary.json", "the text model's vocabulary") \
            if prep_json.get("kind") == "text" else None
        try:
            model = build_model(head["architecture"], len(self.labels))
            prep = prep_from_json(prep_json, vocabulary)
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"{self.path / CONFIG}: the small model's description cannot be read ({exc!r}). "
                                "Export the rung again with this version of transferlab.") from None
        try:
            model.load_state_dict(self.tensors)
        except RuntimeError as exc:
            raise ArtifactError(f"{self.path / WEIGHTS} does not match the architecture in {self.path / CONFIG} "
                                f"({str(exc).splitlines()[0]}). Export the rung again.") from None
        return model.eval(), prep

    def _build_encoder(self):
        import torch

        encoder = build_encoder(self.config["backbone"], self.path)
        if self.config["head"]["kind"] == "classifier":
            from .rungs.trainable import Classifier

            model = Classifier(encoder, int(self.config["backbone"]["feature_dim"]), len(self.labels))
            state = {k: v for k, v in self.tensors.items() if k.startswith(("encoder.", "head."))}
        else:
            model = torch.nn.Module()
            model.encoder = encoder
            state = {k: v for k, v in self.tensors.items() if k.startswith("encoder.")}
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ArtifactError(f"{self.path / WEIGHTS} does not match the architecture in {self.path / CONFIG} "
                                f"(missing {missing[:3]}, unexpected {unexpected[:3]}). Export the rung again.")
        self._model = model.eval()
        self._prepare = _input_pipeline(self.preprocessing, self.path)
        return model.encoder

    def _build_features(self, kind: str):
        if kind == "backbone":
            return lambda items: self._batched(items, lambda batch: self._encoder(**batch))
        if kind == "tfidf":
            from sklearn.feature_extraction.text import TfidfVectorizer

            settings = _read_json(self.path / "tfidf.json", "the TF-IDF settings")
            vocabulary = _read_json(self.path / "vocabulary.json", "the TF-IDF vocabulary")
            vec = TfidfVectorizer(**settings, vocabulary=vocabulary)
            vec.idf_ = self.tensors["tfidf.idf"].double().numpy()
            return vec.transform
        if kind == "image_features":
            from .rungs.classical import IMAGE_FEATURES, image_features

            saved = _read_json(self.path / "image_features.json", "the image-feature settings")
            if saved != IMAGE_FEATURES:
                raise ArtifactError(f"{self.path / 'image_features.json'} describes image features ({saved}) that this "
                                    f"version of transferlab does not compute ({IMAGE_FEATURES}). Use the version "
                                    f"that exported it ({self.config.get('transferlab')}).")
            return image_features
        raise ArtifactError(f"{self.path / CONFIG}: features {kind!r} are not known to this version of transferlab.")

    def _batched(self, items: list, forward) -> np.ndarray:
        """Run ``forward`` over batches like the run did (texts sorted by length); output in input order."""
        import torch

        prep = self.preprocessing
        order = sorted(range(len(items)), key=lambda i: len(items[i])) if prep["modality"] == "text" else range(len(items))
        order = list(order)
        out = None
        with torch.inference_mode():
            for lo in range(0, len(order), int(prep.get("batch_size", 32))):
                idx = order[lo:lo + int(prep.get("batch_size", 32))]
                values = forward(self._prepare([items[i] for i in idx])).float().numpy()
                if out is None:
                    out = np.empty((len(items), values.shape[1]), dtype=np.float32)
                out[idx] = values
        return out


def _image_suffixes() -> set[str]:
    from .data.sources import IMAGE_EXTENSIONS

    return IMAGE_EXTENSIONS


def logreg_proba(tensors: dict, X, n_classes: int) -> np.ndarray:
    """Class probabilities of a saved logistic regression (with its scaler), as sklearn computes them."""
    if "scaler.mean" in tensors:
        X = np.array(X, copy=True)  # in place, in the features' own dtype, like StandardScaler.transform
        X -= tensors["scaler.mean"].numpy()
        X /= tensors["scaler.scale"].numpy()
    logits = X @ tensors["logreg.coef"].numpy().T + tensors["logreg.intercept"].numpy()
    logits = np.asarray(logits, dtype=np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    proba = np.exp(logits)
    proba /= proba.sum(axis=1, keepdims=True)
    out = np.zeros((proba.shape[0], n_classes))
    out[:, tensors["logreg.classes"].numpy()] = proba
    return out


def build_encoder(desc: dict, folder: Path):
    """The backbone's encoder with random weights, rebuilt from the artifact's description alone."""
    from torch import nn

    library = desc.get("library")
    if library == "transformers":
        import transformers

        from .backbones.hf import PooledTextEncoder

        prep = _read_json(folder / PREPROCESSING, "the preprocessing settings")
        config = transformers.AutoConfig.from_pretrained(str(folder / "backbone"))
        return PooledTextEncoder(transformers.AutoModel.from_config(config), prep["pooling"], prep["normalize"])
    if library == "torchvision":
        import torchvision

        from .backbones.images import PixelEncoder

        model = torchvision.models.get_model(desc["arch"], weights=None)
        if desc.get("head_removed"):
            setattr(model, desc["head_removed"], nn.Identity())
        return PixelEncoder(model)
    if library == "timm":
        import timm

        from .backbones.images import PixelEncoder

        return PixelEncoder(timm.create_model(desc["arch"], pretrained=False, num_classes=0))
    if library == "efficientnet_lite_pytorch":
        from .backbones.packaged import LiteEncoder
        from .errors import require

        model = require("efficientnet_lite_pytorch", "demo").EfficientNet.from_name(desc["arch"], image_size=desc["image_size"])
        model._fc = nn.Identity()
        return LiteEncoder(model)
    raise ArtifactError(f"{folder / CONFIG}: backbone library {library!r} is not known to this version of transferlab.")


def _input_pipeline(prep: dict, folder: Path):
    """Raw items -> the encoder's keyword tensors, as the backbone prepared them during the run."""
    import torch

    if prep["modality"] == "text":
        import transformers

        tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder / prep["tokenizer"]))

        def text_batch(texts: list) -> dict:
            enc = tokenizer(list(texts), padding=True, truncation=True, max_length=prep["max_length"], return_tensors="pt")
            return {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}

        return text_batch
    from torchvision.transforms import v2 as T

    from .backbones.images import load_image

    size = (prep["image_size"], prep["image_size"])
    tf = T.Compose([T.Resize(size, antialias=True), T.ToImage(), T.ToDtype(torch.float32, scale=True),
                    T.Normalize(prep["mean"], prep["std"])])
    return lambda items: {"pixel_values": torch.stack([tf(load_image(x)) for x in items])}


def load_artifact(path: str | Path) -> Predictor:
    """Load a folder written by ``transferlab export``; returns a :class:`Predictor`."""
    return Predictor(path)


def read_items(data: Sequence[str | Path], modality: str, text_column: str | None = None,
               label_column: str | None = None, run_columns: dict | None = None) -> tuple[list, list[str], list[str] | None]:
    """Items, their origins and (if the data has them) labels, read like ``transferlab run`` reads data.

    ``data`` is one table (CSV/TSV/JSONL/Parquet), one folder of images (labelled when every image
    sits in a class subfolder) or several image files.
    """
    from .data.sources import IMAGE_EXTENSIONS, TABLE_EXTENSIONS

    paths = [Path(d).expanduser() for d in data]
    for p in paths:
        if not p.exists():
            raise DataError(f"Data path '{p}' does not exist. Pass a CSV/JSONL/Parquet file, a folder of images "
                            "or image files.")
    table = len(paths) == 1 and paths[0].is_file() and paths[0].suffix.lower() in TABLE_EXTENSIONS
    if (modality == "text") != table:
        found = ("a table of texts" if table else "a folder" if paths[0].is_dir() else
                 f"a '{paths[0].suffix or paths[0].name}' file" + (f" and {len(paths) - 1} more" if len(paths) > 1 else ""))
        raise DataError(f"The model reads {modality} but {', '.join(map(str, paths[:3]))} is {found}. Pass "
                        f"{'a CSV/JSONL/Parquet file of texts' if modality == 'text' else 'image files or a folder of images'}.")
    if table:
        return _read_text_table(paths[0], text_column, label_column, run_columns or {})
    if len(paths) == 1 and paths[0].is_dir():
        root = paths[0]
        files = sorted(f for f in root.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS
                       and not any(part.startswith(".") for part in f.relative_to(root).parts))
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
            raise DataError(f"{p} is not an image file ({', '.join(sorted(IMAGE_EXTENSIONS))}). Pass image files, "
                            "one folder of images, or one table of texts.")
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
        label_column = next((c for c in (run_columns.get("label_column"), "label", "labels", "class", "target")
                             if c in columns and c != text_column), None)
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


def predict_file(artifact: str | Path | Predictor, data: Sequence[str | Path] | str | Path, out: str | Path = "predictions.csv",
                 text_column: str | None = None, label_column: str | None = None) -> dict[str, Any]:
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
    items, origins, labels = read_items(data, predictor.modality, text_column, label_column,
                                        predictor.config.get("run", {}))
    index = {label: i for i, label in enumerate(predictor.labels)}
    if labels is not None:
        for origin, label in zip(origins, labels):
            if label not in index:
                raise DataError(f"{origin}: label '{label}' is not a class of the model ({', '.join(predictor.labels)}). "
                                "Fix the label, remove the row, or predict without the label column.")
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
