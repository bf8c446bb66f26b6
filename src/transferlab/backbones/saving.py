"""A backbone saved with a fitted model, and rebuilt from what was saved.

A fitted model that holds a backbone (``frozen``, ``zero_shot``, ``finetune``...) saves its
description (``describe``: the library and architecture, and how to resolve the original
source), its preprocessing (``preprocessing.json``) and the files its class needs (a tokenizer,
a model config). ``rebuild`` makes the same backbone class again from those alone, so a loaded
model prepares its inputs with the backbone's own ``preprocess`` and builds its encoder with
the backbone's own ``_build``: there is no second implementation of either. The classes that
can be rebuilt register under their ``library`` in ``SAVED_FORMATS``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ArtifactError, TransferlabError
from .base import SAVED_FORMATS, Backbone

PREPROCESSING = "preprocessing.json"


def unsupported(backbone: Backbone) -> str | None:
    """Why a model holding ``backbone`` cannot be saved in a loadable form, or None."""
    if backbone.library is None or backbone.library not in SAVED_FORMATS:
        return (
            f"Backbone '{backbone.name}' ({type(backbone).__name__}) has no export format yet, so a model on it "
            f"is kept in the run but cannot be loaded again or exported (backbone formats: "
            f"{', '.join(_supported())})."
        )
    return None


def _supported() -> list[str]:
    from . import audio, clip, hf, images, packaged  # noqa: F401  (registers the formats)

    return SAVED_FORMATS.list_()


def describe(backbone: Backbone) -> dict[str, Any]:
    """How to rebuild the encoder without the original source, and which weights the run used."""
    reason = unsupported(backbone)
    if reason:
        raise ArtifactError(reason)
    return {
        "name": backbone.name,
        "source": backbone.provenance.get("source", backbone.name),
        "modality": backbone.modality,
        "feature_dim": backbone.feature_dim,
        "weights_id": backbone.cache_id(),
        **backbone.architecture(),
    }


def write(backbone: Backbone, folder: Path, batch_size: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The description and preprocessing (also written to preprocessing.json) and the backbone's files."""
    desc = describe(backbone)
    prep = {**backbone.saved_preprocessing(), "batch_size": batch_size}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / PREPROCESSING).write_text(json.dumps(prep, indent=2, ensure_ascii=False), encoding="utf-8")
    backbone.write_files(folder)
    return desc, prep


def rebuild(desc: dict[str, Any], prep: dict[str, Any], folder: Path) -> Backbone:
    """The backbone class ``desc`` names, with the saved preprocessing; its encoder gets no weights here."""
    _supported()
    library = str(desc.get("library"))
    if library not in SAVED_FORMATS:
        raise ArtifactError(
            f"{folder}: backbone library {library!r} is not known to this version of transferlab "
            f"(known: {', '.join(SAVED_FORMATS.list_())}). Upgrade transferlab."
        )
    try:
        return SAVED_FORMATS.get(library).rebuild(desc, prep, folder)
    except (KeyError, TypeError) as exc:
        raise ArtifactError(
            f"{folder}: the saved description of backbone '{desc.get('name')}' cannot be read "
            f"({exc!r}). Save or export the model again with this version of transferlab."
        ) from None


def pretrained_state(desc: dict[str, Any], who: str) -> dict:
    """The unchanged pretrained encoder's weights, from the source the run used (checked by ``weights_id``)."""
    from . import resolve

    try:
        backbone = resolve(desc["resolve"]["name"], **desc["resolve"]["options"])
    except TransferlabError as exc:
        raise ArtifactError(
            f"{who} keeps its backbone frozen, so its encoder's weights are read from "
            f"'{desc['resolve']['name']}', which cannot be loaded now: {exc}"
        ) from None
    encoder = backbone.encoder()
    if backbone.cache_id() != desc["weights_id"]:
        raise ArtifactError(
            f"The weights or preprocessing of backbone '{desc['name']}' changed since the run "
            f"({backbone.cache_id()} now, {desc['weights_id']} then). Run the ladder again, then export."
        )
    return encoder.state_dict()
