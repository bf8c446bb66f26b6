"""CLIP image backbones: ``clip:<hub id>`` (e.g. ``clip:openai/clip-vit-base-patch32``) or ``clip:<folder>``.

The encoder is CLIP's vision tower and its projection: (B, 3, H, W) -> (B, projection_dim)
image embeddings, the same as ``CLIPModel.get_image_features``. The text tower stays beside it
(never trained) so the ``zero_shot`` rung can embed prompts such as ``a photo of a cat.`` into
the same space with :meth:`CLIPBackbone.embed_texts`. Loading goes through ``transformers``
(``CLIPModel``, the tokenizer and image processor saved with it); sizes other than the model's
own are fed with interpolated position embeddings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import BackboneError, require
from .base import SAVED_FORMATS, SOURCES, Backbone, groups_from_blocks
from .hf import card_provenance, hub_weights_id
from .images import ImageBackbone

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class CLIPImageEncoder(nn.Module):
    """pixels (B, 3, H, W) -> vision tower -> pooled CLS state (B, H) -> projection (B, D)."""

    def __init__(self, vision_model: nn.Module, projection: nn.Module, interpolate: bool):
        super().__init__()
        self.vision_model = vision_model
        self.projection = projection
        self.interpolate = interpolate

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        out = self.vision_model(pixel_values=pixel_values, interpolate_pos_encoding=self.interpolate)
        return self.projection(out.pooler_output)


class CLIPBackbone(ImageBackbone):
    library = "clip"

    def __init__(
        self,
        repo_or_path: str,
        *,
        image_size: int = 224,
        revision: str | None = None,
        provenance: dict[str, str] | None = None,
        **options: Any,
    ):
        transformers = require("transformers", "image")
        folder = Path(repo_or_path).expanduser()
        self.folder = folder if folder.is_dir() else None
        if self.folder is None and (repo_or_path.startswith((".", "/", "~")) or repo_or_path.count("/") > 1):
            raise BackboneError(
                f"CLIP model folder '{repo_or_path}' does not exist. Pass an existing folder or a "
                "Hub id like openai/clip-vit-base-patch32."
            )
        self.repo, self.revision = (str(self.folder) if self.folder else repo_or_path), revision
        options.pop("max_length", None)
        options.pop("trust_remote_code", None)
        try:
            self.config = transformers.CLIPConfig.from_pretrained(self.repo, revision=revision)
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(self.repo, revision=revision)
        except Exception as exc:
            raise BackboneError(
                f"Could not load CLIP model '{repo_or_path}': {str(exc).splitlines()[0]} "
                "Without internet, pass a local folder: --backbone clip:/path/to/clip."
            ) from None
        if getattr(self.config, "model_type", "") != "clip":
            raise BackboneError(
                f"'{repo_or_path}' is a {self.config.model_type} model, not CLIP. Use hf: for text "
                "encoders and timm: or torchvision: for other image models."
            )
        try:
            processor = transformers.CLIPImageProcessor.from_pretrained(self.repo, revision=revision)
            mean, std = processor.image_mean, processor.image_std
        except Exception:  # no preprocessor_config.json: CLIP's own normalisation
            mean, std = OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
        card = card_provenance(self.folder, self.repo)
        pretrained_on = "400M image-text pairs (OpenAI WIT)" if repo_or_path.startswith("openai/") else "unknown"
        super().__init__(
            f"clip:{repo_or_path}",
            image_size=image_size,
            mean=mean,
            std=std,
            provenance={
                "source": f"CLIP, Hugging Face {'folder' if self.folder else 'Hub'}: {self.repo}",
                "pretrained_on": pretrained_on,
                **card,
                **(provenance or {}),
            },
            **options,
        )
        if revision:
            self.provenance["revision"] = revision
        self._text: tuple[nn.Module, nn.Module] | None = None

    def _build(self, pretrained: bool) -> nn.Module:
        from transformers import CLIPModel

        try:
            model = (
                CLIPModel.from_pretrained(self.repo, revision=self.revision) if pretrained else CLIPModel(self.config)
            )
        except Exception as exc:
            raise BackboneError(f"Could not load weights of '{self.name}': {str(exc).splitlines()[0]}") from None
        if pretrained:  # the text side embeds prompts for zero-shot; it is never trained
            self._text = (model.text_model.eval(), model.text_projection.eval())
        self.feature_dim = int(self.config.projection_dim)
        interpolate = self.image_size != int(self.config.vision_config.image_size)
        return CLIPImageEncoder(model.vision_model, model.visual_projection, interpolate)

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """(N, D) text embeddings in the space of the image features (CLIPModel.get_text_features)."""
        self.encoder()
        if self._text is None:
            raise BackboneError(
                f"'{self.name}' was rebuilt from a saved model, which keeps CLIP's vision tower only; "
                "resolve the original CLIP model to embed texts."
            )
        text_model, projection = self._text
        limit = int(self.config.text_config.max_position_embeddings)
        batch = self.tokenizer(list(texts), padding=True, truncation=True, max_length=limit, return_tensors="pt")
        with torch.inference_mode():
            pooled = text_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).pooler_output
            return projection(pooled).float().numpy()

    def layer_groups(self, encoder: nn.Module) -> list[list[nn.Parameter]]:
        return groups_from_blocks(encoder, encoder.vision_model.encoder.layers)

    def weights_id(self) -> str:
        return hub_weights_id(self.folder, self.repo, self.revision)

    # --- saved with a fitted model: the model config; the vision tower's weights come with the model ---
    def architecture(self) -> dict[str, Any]:
        return {
            "resolve": self._resolve_recipe(),
            "library": "clip",
            "model_type": "clip",
            "config": "backbone/config.json",
            "interpolate_pos_encoding": self.image_size != int(self.config.vision_config.image_size),
        }

    def write_files(self, folder: Path) -> None:
        self.config.save_pretrained(folder / "backbone")

    @classmethod
    def rebuild(cls, desc: dict[str, Any], prep: dict[str, Any], folder: Path) -> "CLIPBackbone":
        """The vision tower from the saved config; no text tower (a saved model's prompts are embedded)."""
        import transformers

        config_dir = folder / Path(desc["config"]).parent
        self = cls.__new__(cls)
        self.folder, self.repo, self.revision, self.tokenizer, self._text = (
            config_dir,
            str(config_dir),
            None,
            None,
            None,
        )
        self.config = transformers.CLIPConfig.from_pretrained(str(config_dir))
        ImageBackbone.__init__(
            self,
            desc["name"],
            image_size=prep["image_size"],
            mean=prep["mean"],
            std=prep["std"],
            provenance={"source": f"saved model: {folder}"},
        )
        return self


SAVED_FORMATS.register("clip")(CLIPBackbone)


@SOURCES.register("clip")
def _clip(rest: str, **options: Any) -> Backbone:
    return CLIPBackbone(rest, **options)


__all__ = ["CLIPBackbone", "CLIPImageEncoder"]
