"""What a rung's fit returns: a fitted model that predicts, saves and loads itself.

As with scikit-learn's estimators, the object a rung fits is the object that predicts, during
the run (test split, out-of-distribution sets) and after it: ``save(folder)`` writes it as
safetensors and JSON (nothing is pickled), and ``Fitted.load(folder)`` rebuilds it, picking the
subclass by the head kind the folder names (``FITTED``). A model that holds a backbone saves the
backbone's description and rebuilds it with the backbone's own code (backbones/saving.py), so a
loaded model prepares its inputs exactly as the run did. ``transferlab export`` only copies a
saved folder and adds what makes it standalone.

Kinds: ``prior`` (majority), ``logreg`` (classical, frozen: a logistic regression over
``Features``), ``classifier`` (finetune, full, scratch, lora merged), ``small`` (scratch_small),
``zero_shot`` (label embeddings). Each subclass lives with its rung.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..backbones.base import Backbone
from ..errors import ArtifactError
from ..registry import Registry

SAVED = "transferlab.saved/1"  # a run's models/<rung>/
ARTIFACT = "transferlab.artifact/1"  # a folder written by transferlab export
WEIGHTS, CONFIG, SAVED_INFO = "model.safetensors", "config.json", "model.json"


class Fitted:
    """A fitted model: ``predict_proba(items) -> (N, C) float64``, ``save(folder) -> metadata``,
    ``Fitted.load(folder)``. Subclasses set ``kind``, implement ``predict_proba``, ``parts`` (what
    ``save`` writes) and ``from_saved`` (what ``load`` rebuilds), and register with ``FITTED``."""

    kind: ClassVar[str] = ""
    strategy: str = ""
    n_classes: int = 0
    backbone: Backbone | None = None  # saved as a description, rebuilt on load
    includes_encoder: bool = False  # with a backbone, False: its pretrained weights are read from its source
    batch_size: int = 32  # items per forward pass, as the run batched them
    reason: str | None = None  # why this model cannot be saved in a loadable form (set by the rung)

    def predict_proba(self, items: list) -> np.ndarray:
        raise NotImplementedError

    def predict(self, items: list) -> np.ndarray:
        return self.predict_proba(items).argmax(1)

    def parts(self) -> tuple[dict, dict, dict]:
        """(tensors, head settings, extra JSON files by name): what ``save`` writes."""
        raise NotImplementedError

    @classmethod
    def from_saved(cls, saved: "Saved") -> "Fitted":
        raise NotImplementedError

    @property
    def not_exportable(self) -> str | None:
        """Why the saved model cannot be loaded again or exported (then ``load`` refuses it), or None."""
        if self.reason:
            return self.reason
        if self.backbone is not None:
            from ..backbones.saving import unsupported

            return unsupported(self.backbone)
        return None

    def save(self, folder: Path) -> dict[str, Any]:
        """Write the model into ``folder``; returns the metadata results.json keeps."""
        tensors, head, files = self.parts()
        return write_saved(
            folder,
            strategy=self.strategy,
            tensors=tensors,
            files=files,
            head={"kind": self.kind, "n_classes": self.n_classes, **head},
            backbone=self.backbone,
            batch_size=self.batch_size,
            includes_encoder=self.includes_encoder,
            unsafe=self.not_exportable,
        )

    @classmethod
    def load(cls, folder: str | Path) -> "Fitted":
        """The model saved in ``folder`` (a run's models/<rung>/ or an exported artifact)."""
        saved = read_saved(Path(folder))
        kind = saved.head["kind"]
        if kind not in FITTED:
            raise ArtifactError(
                f"{saved.describing}: head kind {kind!r} is not known to this version of transferlab "
                f"(known: {', '.join(FITTED.list_())}). Upgrade transferlab."
            )
        found = FITTED.get(kind)
        if not issubclass(found, cls):
            raise ArtifactError(f"{saved.describing} holds a {kind!r} model, not a {cls.__name__}.")
        model = found.from_saved(saved)
        model.strategy = saved.info.get("strategy", "")
        return model


FITTED: Registry[type[Fitted]] = Registry("fitted model kind")


# --- reading a saved folder ----------------------------------------------------------------------


@dataclass
class Saved:
    """A saved model's folder as read back: its description, its tensors, and the pieces it names."""

    folder: Path
    info: dict  # model.json, or an artifact's config.json
    tensors: dict
    _backbone: Backbone | None = field(default=None, repr=False)

    @property
    def describing(self) -> Path:
        return self.folder / (CONFIG if self.info.get("format") == ARTIFACT else SAVED_INFO)

    @property
    def head(self) -> dict:
        return self.info["head"]

    @property
    def n_classes(self) -> int:
        n = self.head.get("n_classes") or len(self.info.get("labels") or [])
        if not n:
            raise ArtifactError(
                f"{self.describing} does not say how many classes the model has. "
                "Save or export it again with this version of transferlab."
            )
        return int(n)

    @property
    def preprocessing(self) -> dict:
        """preprocessing.json: how the backbone prepared inputs, and in batches of what size."""
        from ..backbones.saving import PREPROCESSING

        if "preprocessing" not in self.info:  # an artifact's config.json does not repeat it
            self.info["preprocessing"] = self.json(PREPROCESSING, "the preprocessing settings")
        return self.info["preprocessing"]

    @property
    def batch_size(self) -> int:
        """Items per forward pass, as the run batched them (the same batches give the same numbers)."""
        size = self.preprocessing.get("batch_size") if self.info.get("backbone") else self.head.get("batch_size")
        return int(size or 32)

    def json(self, name: str, what: str) -> Any:
        return read_json(self.folder / name, what)

    def backbone(self) -> Backbone:
        """The backbone the model was fitted with: its class rebuilt from the saved description,
        preprocessing as saved, and no encoder weights yet (see ``encoder_state``)."""
        if self._backbone is None:
            from ..backbones.saving import rebuild

            desc = self.info.get("backbone")
            if not desc:
                raise ArtifactError(
                    f"{self.describing} describes no backbone, but a {self.head['kind']!r} model needs one."
                )
            self._backbone = rebuild(desc, self.preprocessing, self.folder)
        return self._backbone

    def encoder_state(self) -> dict:
        """The encoder's weights: saved with the model, or (a frozen encoder saved in a run) the
        pretrained ones from the backbone's source, checked to be the weights the run used."""
        if self.info.get("includes_encoder", True):
            return {k[len("encoder.") :]: v for k, v in self.tensors.items() if k.startswith("encoder.")}
        from ..backbones.saving import pretrained_state

        return pretrained_state(self.info["backbone"], f"The model in {self.folder}")

    def frozen_backbone(self) -> Backbone:
        """The backbone with its encoder's weights in place, for models over its features."""
        backbone = self.backbone()
        try:
            backbone.load_encoder_state(self.encoder_state())
        except RuntimeError as exc:
            raise ArtifactError(
                f"{self.folder / WEIGHTS} does not match the backbone described in {self.describing} "
                f"({str(exc).splitlines()[0]}). Save or export the model again."
            ) from None
        return backbone


def read_saved(folder: Path) -> Saved:
    if not folder.is_dir():
        raise ArtifactError(
            f"Model folder '{folder}' does not exist. Pass a folder written by a run "
            "(RUN_DIR/models/<rung>) or by transferlab export."
        )
    if (folder / SAVED_INFO).is_file() or not (folder / CONFIG).is_file():
        info = read_json(folder / SAVED_INFO, "the description of the saved model")
        expected = SAVED
    else:
        info = read_json(folder / CONFIG, "the artifact's config")
        expected = ARTIFACT
    where = folder / (SAVED_INFO if expected == SAVED else CONFIG)
    if info.get("format") != expected:
        raise ArtifactError(
            f"{where} has format {info.get('format')!r}; this version of transferlab reads {expected!r}."
        )
    if info.get("not_exportable"):
        raise ArtifactError(f"The model in {folder} cannot be loaded: {info['not_exportable']}")
    return Saved(folder, info, load_tensors(folder / WEIGHTS))


# --- files -------------------------------------------------------------------------------------


def write_saved(
    folder: Path,
    *,
    strategy: str,
    tensors: dict,
    head: dict,
    backbone: Backbone | None = None,
    batch_size: int = 32,
    includes_encoder: bool = False,
    files: dict[str, Any] | None = None,
    unsafe: str | None = None,
) -> dict[str, Any]:
    """Write a fitted model's pieces into ``folder`` (format ``transferlab.saved/1``); returns the
    metadata results.json keeps. ``tensors`` maps names to numpy arrays or torch tensors; ``files``
    are extra JSON files; ``unsafe`` says why the model cannot be loaded again (export then refuses it)."""
    import torch
    from safetensors.torch import save_file

    from ..backbones.saving import unsupported, write

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    info: dict[str, Any] = {"format": SAVED, "strategy": strategy, "head": head, "includes_encoder": includes_encoder}
    if backbone is not None and unsupported(backbone):  # the weights are still kept, for the record
        unsafe = unsafe or unsupported(backbone)
    elif backbone is not None:
        info["backbone"], info["preprocessing"] = write(backbone, folder, batch_size)
    if unsafe:
        info["not_exportable"] = unsafe
    for name, content in (files or {}).items():
        write_json(folder / name, content)
    as_torch = {
        k: (
            torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v.detach().cpu().clone()
        ).contiguous()
        for k, v in tensors.items()
    }  # weights trained on a GPU are saved from the CPU
    save_file(as_torch, str(folder / WEIGHTS), metadata={"format": "pt", "transferlab": SAVED})
    write_json(folder / SAVED_INFO, info)
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    meta = {
        "format": SAVED,
        "bytes": size,
        "encoder_weights": "included"
        if includes_encoder
        else ("from the backbone source at export" if backbone is not None else "none"),
    }
    if unsafe:
        meta["not_exportable"] = unsafe
    return meta


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")


def read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise ArtifactError(
            f"{path} is missing: {what}. Export the rung again (transferlab export RUN_DIR --rung NAME)."
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path} is not valid JSON ({exc}); the file is damaged. Export the rung again.") from None


def load_tensors(path: Path) -> dict:
    from safetensors.torch import load_file

    if not path.is_file():
        raise ArtifactError(f"{path} is missing: the model weights. Export the rung again.")
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for truncated or foreign files
        raise ArtifactError(
            f"{path} is not a readable safetensors file ({str(exc).splitlines()[0]}); "
            "the file is damaged or incomplete. Export the rung again."
        ) from None


# --- features a model reads ------------------------------------------------------------------------


class Features:
    """Items -> (N, D) features for a model over features (``logreg``, ``zero_shot``). Subclasses
    register by ``name`` in ``FEATURES``; ``parts`` is what they save, ``from_saved`` rebuilds them."""

    name: ClassVar[str] = ""
    backbone: Backbone | None = None
    reason: str | None = None  # why these features cannot be saved, or None

    def __call__(self, items: list):
        raise NotImplementedError

    def parts(self) -> tuple[dict, dict]:
        """(tensors, JSON files by name)."""
        return {}, {}

    @classmethod
    def from_saved(cls, saved: Saved) -> "Features":
        raise NotImplementedError


FEATURES: Registry[type[Features]] = Registry("model features")


def features_from_saved(saved: Saved) -> Features:
    name = saved.head.get("features", "backbone")
    if name not in FEATURES:
        raise ArtifactError(f"{saved.describing}: features {name!r} are not known to this version of transferlab.")
    return FEATURES.get(name).from_saved(saved)


@FEATURES.register("backbone")
class BackboneFeatures(Features):
    """The pretrained backbone's frozen features. During a run they come through the run's
    feature cache (``cache_dir``); a loaded model embeds with the backbone rebuilt from its saved
    description, in the same batches, so both give the same features."""

    name = "backbone"
    backbone: Backbone

    def __init__(self, backbone: Backbone, batch_size: int, cached: bool = False, cache_dir: str | Path | None = None):
        self.backbone, self.batch_size, self.cached = backbone, batch_size, cached
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None

    @classmethod
    def for_run(cls, backbone: Backbone, spec) -> "BackboneFeatures":
        """Features of new items during a run: through the run's cache, in the run's batches."""
        return cls(backbone, spec.extract_batch_size, cached=True, cache_dir=spec.cache_dir)

    def __call__(self, items: list) -> np.ndarray:
        from ..features import embed, extract

        if not self.cached:
            return embed(self.backbone, items, self.batch_size)
        from ..data.splits import content_hash

        hashes = [content_hash(x, self.backbone.modality) for x in items]
        return np.asarray(
            extract(self.backbone, items, hashes, cache_dir=self.cache_dir, batch_size=self.batch_size).features
        )

    @classmethod
    def from_saved(cls, saved: Saved) -> "BackboneFeatures":
        return cls(saved.frozen_backbone(), saved.batch_size)


__all__ = [
    "ARTIFACT",
    "FEATURES",
    "FITTED",
    "SAVED",
    "BackboneFeatures",
    "Features",
    "Fitted",
    "Saved",
    "read_json",
    "read_saved",
    "write_saved",
]
