"""``zero_shot``: no training. Each example takes the label whose prompt embeds closest to it.

Text: the backbone embeds the inputs (the cached features) and one prompt per label, the label
name or the user's description of it put into ``--zero-shot-template`` (default ``{}``).
Images: only CLIP backbones, whose text tower embeds ``a photo of a {label}.`` into the space
of the image embeddings; other image backbones have no text side and the rung does not apply.

The prediction is the most cosine-similar prompt and uses no label at all. Probabilities are a
softmax of the similarities times one temperature, the one that minimises the validation
log-loss: calibration only, it cannot change a prediction.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from ..backbones.base import Backbone
from ..config import RunSpec
from ..errors import ConfigError
from .base import RUNGS, Context, Rung, RungOutput
from .fitted import FITTED, BackboneFeatures, Features, Fitted, Saved, features_from_saved

IMAGE_TEMPLATE = "a photo of a {}."
TEMPERATURES = (np.log(0.1), np.log(1000.0))  # search range of log(temperature)


def read_label_descriptions(value: dict | str | None, classes: list[str]) -> dict[str, str]:
    """label -> description for every class, from a mapping or a JSON/YAML/CSV file (label, description)."""
    if value is None:
        return {}
    where = "label_descriptions"
    if isinstance(value, (str, Path)):
        path, where = Path(value), f"label descriptions file {value}"
        try:
            if path.suffix.lower() == ".csv":
                import pandas as pd

                table = pd.read_csv(path, dtype=str, keep_default_na=False)
                if table.shape[1] != 2:
                    raise ConfigError(
                        f"{path} must have two columns, label and description; it has "
                        f"{table.shape[1]} ({', '.join(table.columns)})."
                    )
                value = dict(zip(table.iloc[:, 0], table.iloc[:, 1]))
            elif path.suffix.lower() == ".json":
                value = json.loads(path.read_text(encoding="utf-8"))
            else:
                import yaml

                value = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (ValueError, OSError) as exc:  # json and yaml errors are ValueErrors or yaml.YAMLError
            raise ConfigError(
                f"Could not read {where}: {str(exc).splitlines()[0]}. It must map each label to a description."
            ) from None
        except Exception as exc:
            raise ConfigError(f"Could not read {where}: {exc}. It must map each label to a description.") from None
    if not isinstance(value, dict) or not all(isinstance(v, str) and v.strip() for v in value.values()):
        raise ConfigError(
            f'The {where} must map each label to a non-empty description string, e.g. {{"{classes[0]}": "..."}}.'
        )
    value = {str(k): v.strip() for k, v in value.items()}
    unknown = sorted(set(value) - set(classes))
    missing = [c for c in classes if c not in value]
    if unknown:
        raise ConfigError(
            f"The {where} names label(s) {', '.join(map(repr, unknown))} that are not in the data "
            f"(labels: {', '.join(classes)}). Fix or remove those entries."
        )
    if missing:
        raise ConfigError(
            f"The {where} has no description for label(s) {', '.join(map(repr, missing))}. "
            f"Add one for every label: {', '.join(classes)}."
        )
    return value


def label_prompts(classes: list[str], spec: RunSpec, modality: str) -> list[str]:
    descriptions = read_label_descriptions(spec.label_descriptions, classes)
    template = spec.zero_shot_template or ("{}" if modality == "text" else IMAGE_TEMPLATE)
    return [template.replace("{}", descriptions.get(c, c.replace("_", " "))) for c in classes]


def embed_prompts(backbone: Backbone, prompts: list[str]) -> np.ndarray:
    """(C, D) embeddings of the prompts in the space of the backbone's features."""
    if callable(getattr(backbone, "embed_texts", None)):  # a CLIP-like backbone's text tower
        return np.asarray(backbone.embed_texts(prompts), dtype=np.float64)
    encoder = backbone.encoder()
    with torch.inference_mode():
        return encoder(**backbone.preprocess(prompts, train=False)).double().numpy()


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def fit_temperature(similarity: np.ndarray, y: np.ndarray) -> float:
    """The temperature minimising the log-loss of softmax(t * similarity) on (validation) labels."""
    from scipy.optimize import minimize_scalar

    def nll(log_t: float) -> float:
        p = softmax(np.exp(log_t) * similarity)
        return float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None)).mean())

    if len(y) == 0:
        return 1.0
    return float(np.exp(minimize_scalar(nll, bounds=TEMPERATURES, method="bounded").x))


@RUNGS.register("zero_shot")
class ZeroShot(Rung):
    strategy = "zero_shot"
    settings = ("label_descriptions", "zero_shot_template", "extract_batch_size")
    learns_from_labels = False
    cheap = True
    simplicity = 20
    needs_backbone = True
    needs_features = True
    seeding = "none"  # the predictions use no training or validation labels: every seed would give the same
    description = (
        "No training: each example gets the label whose name (or description) embeds closest; "
        "a temperature for the probabilities is fitted on validation."
    )

    def applies_to(self, backbone: Backbone, spec: RunSpec) -> str | None:
        if backbone.modality == "text" or callable(getattr(backbone, "embed_texts", None)):
            return None
        return (
            f"{backbone.name} has no text encoder to embed label names; zero-shot {backbone.modality} "
            f"classification needs a CLIP backbone (e.g. --backbone clip:openai/clip-vit-base-patch32)"
        )

    def run(self, ctx: Context) -> RungOutput:
        classes = ctx.task.classes
        prompts = label_prompts(classes, ctx.spec, ctx.task.modality)
        start = time.perf_counter()
        labels = _normalise(embed_prompts(ctx.backbone, prompts))  # (C, D)
        sim_val = _normalise(ctx.features("val")) @ labels.T  # (N_val, C) cosine similarities
        temperature = fit_temperature(sim_val, ctx.val()[1])
        fitted = ZeroShotFitted(BackboneFeatures.for_run(ctx.backbone, ctx.spec), labels, temperature, prompts)
        fit = time.perf_counter() - start
        start = time.perf_counter()
        proba = fitted.proba_of(ctx.features("test"))
        predict = time.perf_counter() - start
        shown = "; ".join(f"{c}: '{p}'" for c, p in list(zip(classes, prompts))[:6])
        more = f" and {len(classes) - 6} more" if len(classes) > 6 else ""
        return RungOutput(
            sim_val.argmax(1),
            proba.argmax(1),
            fit,
            predict,
            0,
            ctx.backbone.num_params(),
            test_proba=proba,
            model=fitted,
            chosen={"temperature": temperature, "prompts": dict(zip(classes, prompts))},
            notes=[
                f"No training: the most similar label prompt ({shown}{more}). The softmax "
                f"temperature {temperature:.1f} was fitted on validation for calibration only.",
                "Fit time is embedding the prompts and fitting the temperature; the inputs' "
                "embeddings are the cached features.",
            ],
        )


@FITTED.register("zero_shot")
class ZeroShotFitted(Fitted):
    """softmax(temperature * cosine(features, label embeddings)): the label prompts' embeddings and
    the temperature are saved; the encoder is the pretrained backbone's (read from its source)."""

    kind = "zero_shot"
    strategy = "zero_shot"

    def __init__(self, features: Features, labels: np.ndarray, temperature: float, prompts: list[str]):
        self.features, self.backbone, self.batch_size = features, features.backbone, getattr(features, "batch_size", 32)
        self.labels = np.asarray(labels, dtype=np.float64)  # (C, D), unit rows
        self.temperature, self.prompts, self.n_classes = float(temperature), list(prompts), len(labels)

    def proba_of(self, X) -> np.ndarray:
        return softmax(self.temperature * (_normalise(X) @ self.labels.T))

    def predict_proba(self, items: list) -> np.ndarray:
        if not len(items):
            return np.zeros((0, self.n_classes))
        return self.proba_of(self.features(list(items)))

    def parts(self) -> tuple[dict, dict, dict]:
        return (
            {"label_embeddings": self.labels, "temperature": np.array([self.temperature])},
            {"features": self.features.name, "prompts": self.prompts, "similarity": "cosine"},
            {},
        )

    @classmethod
    def from_saved(cls, saved: Saved) -> "ZeroShotFitted":
        return cls(
            features_from_saved(saved),
            saved.tensors["label_embeddings"].double().numpy(),
            float(saved.tensors["temperature"][0]),
            saved.head.get("prompts", []),
        )
