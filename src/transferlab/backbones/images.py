"""Image backbones: ``timm:<name>`` and ``torchvision:<name>``, optionally ``@<weights file>``.

Without a file, weights come from the library's own hub/URL loading (the path users with
internet take). With ``@/path/to/weights.safetensors`` (or a ``.pth`` state dict, read with
``weights_only=True``), the architecture is built by the library and the file is loaded
offline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import BackboneError, DataError, require
from .base import SAVED_FORMATS, SOURCES, Backbone, groups_from_blocks, largest_block_list

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_image(item) -> "Image.Image":  # noqa: F821
    """A path or an image array -> an RGB PIL image, upright (EXIF orientation applied).

    16-bit and 32-bit integer images are scaled from 0..65535 to 0..255, float images from 0..1
    when their values lie there (else clipped to 0..255), palette images with transparency go
    through RGBA, and alpha is dropped. Unreadable files raise DataError naming the file.
    """
    from PIL import Image, ImageOps

    if isinstance(item, np.ndarray):
        return Image.fromarray(array_to_uint8(item)).convert("RGB")
    try:
        with Image.open(item) as im:
            return _to_rgb(ImageOps.exif_transpose(im))
    except Image.DecompressionBombError as exc:
        raise DataError(f"{item} is not a readable image ({exc}). Remove or replace it.") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise DataError(f"{item} is not a readable image ({exc}). Remove or replace it.") from None


def array_to_uint8(arr: np.ndarray) -> np.ndarray:
    """(H, W), (H, W, 1), (H, W, 3) or (H, W, 4) numbers -> uint8 with 1, 3 or 4 channels."""
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    return np.clip(np.nan_to_num(arr.astype(np.float64)), 0, 255).astype(np.uint8)


def _to_rgb(im) -> "Image.Image":  # noqa: F821
    from PIL import Image

    if im.mode in ("I", "F") or im.mode.startswith("I;16"):
        arr = np.asarray(im, dtype=np.float64)
        if im.mode == "F" and arr.size and np.nanmax(arr) <= 1.0:
            arr = arr * 255.0
        elif im.mode != "F":
            arr = arr / 257.0  # 16-bit range onto 8 bits
        return Image.fromarray(np.clip(np.nan_to_num(arr), 0, 255).astype(np.uint8)).convert("RGB")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    return im.convert("RGB")


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Weights from a safetensors file, or a torch file read with ``weights_only=True``."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise BackboneError(f"Weights file '{path}' does not exist. Pass an existing .safetensors or .pth file.")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(p))
        except Exception as exc:  # SafetensorError on a damaged or foreign file
            raise BackboneError(
                f"Could not read weights from '{p}': {str(exc).splitlines()[0]}. Pass a complete .safetensors file."
            ) from None
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise BackboneError(f"Could not read weights from '{p}': {str(exc).splitlines()[0]}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return state


class ImageBackbone(Backbone):
    """Shared preprocessing: resize, light train-only augmentation, normalise."""

    modality = "image"
    may_have_source_head = True

    def __init__(
        self,
        name: str,
        *,
        image_size: int = 224,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        **kwargs: Any,
    ):
        super().__init__(name, **kwargs)
        self.configure(image_size, mean, std)

    def configure(self, image_size: int, mean: Sequence[float], std: Sequence[float]) -> None:
        """Set the input size and normalisation, and the transforms built from them."""
        self.image_size = int(image_size)
        self.mean, self.std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
        from torchvision.transforms import v2 as T

        size = (self.image_size, self.image_size)
        norm = [T.ToImage(), T.ToDtype(torch.float32, scale=True), T.Normalize(self.mean, self.std)]
        self._eval_tf = T.Compose([T.Resize(size, antialias=True), *norm])
        # Augmentation exists only in the training transform, so it can only touch training data.
        self._train_tf = T.Compose(
            [T.RandomResizedCrop(size, scale=(0.8, 1.0), antialias=True), T.RandomHorizontalFlip(), *norm]
        )

    def preprocess(self, items: list, train: bool = False) -> dict[str, torch.Tensor]:
        tf = self._train_tf if train else self._eval_tf
        return {"pixel_values": torch.stack([tf(load_image(x)) for x in items])}

    def preprocessing_id(self) -> str:
        return f"size={self.image_size}|mean={self.mean}|std={self.std}"

    def saved_preprocessing(self) -> dict[str, Any]:
        return {
            "modality": "image",
            "convert": "RGB",
            "image_size": self.image_size,
            "resize": "bilinear, antialiased, to image_size x image_size (aspect ratio not kept), no crop",
            "scale": "pixel / 255",
            "mean": list(self.mean),
            "std": list(self.std),
        }

    def _resolve_recipe(self) -> dict[str, Any]:
        return {"name": self.name, "options": {"image_size": self.image_size}}

    def layer_groups(self, encoder: nn.Module) -> list[list[nn.Parameter]]:
        blocks = largest_block_list(encoder)
        return groups_from_blocks(encoder, blocks) if blocks is not None else [list(encoder.parameters())]


class PixelEncoder(nn.Module):
    """Adapts a model whose forward takes one image tensor to forward(pixel_values=...)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        out = self.model(pixel_values)
        return out.flatten(1) if out.dim() > 2 else out


def checked_head(head, dim: int) -> nn.Module | None:
    """The model's own classifier if it maps the encoder's (B, dim) output to (B, Z) logits, in
    eval mode (it was detached from the model before ``eval()``); a head that expected a
    (B, dim, 1, 1) map gets an unflatten in front; None when there is none or it does not fit."""
    if not isinstance(head, nn.Module) or isinstance(head, nn.Identity):
        return None
    feats = torch.zeros(2, dim)
    with torch.inference_mode():
        for candidate in (head, nn.Sequential(nn.Unflatten(1, (dim, 1, 1)), head)):
            try:
                out = candidate.eval()(feats)
            except (RuntimeError, ValueError, IndexError):
                continue
            if out.dim() == 2 and out.shape[0] == 2:
                return candidate
    return None


def _split_weights(rest: str) -> tuple[str, str | None]:
    name, _, weights = rest.partition("@")
    return name, (weights or None)


class TimmBackbone(ImageBackbone):
    library = "timm"

    def __init__(self, rest: str, **kwargs: Any):
        self.timm = require("timm", "image")
        self.arch, self.weights_file = _split_weights(rest)
        if (
            self.arch not in self.timm.list_models(pretrained=False)
            and self.arch.split(".")[0] not in self.timm.list_models()
        ):
            raise BackboneError(f"timm has no model '{self.arch}'. See timm.list_models(); e.g. timm:resnet18.")
        cfg = self.timm.get_pretrained_cfg(self.arch) if hasattr(self.timm, "get_pretrained_cfg") else None
        mean = getattr(cfg, "mean", None) or IMAGENET_MEAN
        std = getattr(cfg, "std", None) or IMAGENET_STD
        pretrained_on = self._pretrained_on(cfg)
        super().__init__(
            f"timm:{rest}",
            mean=mean,
            std=std,
            provenance={
                "source": f"timm {self.arch}"
                + (f" with {self.weights_file}" if self.weights_file else " (Hugging Face Hub weights)"),
                "pretrained_on": pretrained_on,
                "licence": str(getattr(cfg, "license", None) or "unknown"),
            },
            **kwargs,
        )

    @staticmethod
    def _pretrained_on(cfg: Any) -> str:
        tag = str(getattr(cfg, "tag", "") or "")
        if "in22k" in tag or "in21k" in tag:
            return "ImageNet-21k" + (" then ImageNet-1k" if "ft_in1k" in tag else "")
        if cfg is not None and getattr(cfg, "num_classes", None) == 1000:
            return "ImageNet-1k"
        return "unknown"

    def _build(self, pretrained: bool) -> nn.Module:
        try:
            if pretrained and self.weights_file:
                model = self.timm.create_model(self.arch, pretrained=False)
                model.load_state_dict(load_state_dict_file(self.weights_file))
            else:
                model = self.timm.create_model(self.arch, pretrained=pretrained)
            head = model.get_classifier() if getattr(model, "num_classes", 0) else None
            model.reset_classifier(0)  # the rungs add their own head
        except BackboneError:
            raise
        except Exception as exc:
            raise BackboneError(
                f"Could not load timm model '{self.arch}': {str(exc).splitlines()[0]} "
                f"Without internet, pass a weights file: --backbone timm:{self.arch}@/path/weights.safetensors."
            ) from None
        self.feature_dim = int(model.num_features)
        encoder = PixelEncoder(model)
        if pretrained:
            self._source_head = checked_head(head, self.feature_dim)
        return encoder

    def architecture(self) -> dict[str, Any]:
        return {"resolve": self._resolve_recipe(), "library": "timm", "arch": self.arch}

    @classmethod
    def rebuild(cls, desc: dict[str, Any], prep: dict[str, Any], folder: Path) -> "TimmBackbone":
        backbone = cls(desc["arch"])
        backbone.name = desc["name"]
        backbone.configure(prep["image_size"], prep["mean"], prep["std"])
        return backbone

    def layer_groups(self, encoder: nn.Module) -> list[list[nn.Parameter]]:
        from timm.models import group_parameters

        model = encoder.model
        if not hasattr(model, "group_matcher"):
            return super().layer_groups(encoder)
        named = dict(model.named_parameters())
        grouped = group_parameters(model, model.group_matcher(coarse=False))
        return [[named[n] for n in names] for _, names in sorted(grouped.items())]


_TORCHVISION_HEADS = ("classifier", "fc", "head", "heads")


class TorchvisionBackbone(ImageBackbone):
    library = "torchvision"

    def __init__(self, rest: str, *, provenance: dict[str, str] | None = None, **kwargs: Any):
        import torchvision

        self.arch, self.weights_file = _split_weights(rest)
        if self.arch not in torchvision.models.list_models():
            raise BackboneError(
                f"torchvision has no model '{self.arch}'. See torchvision.models.list_models(); e.g. torchvision:resnet18."
            )
        default = None if self.weights_file else torchvision.models.get_model_weights(self.arch).DEFAULT
        prov = {
            "source": f"torchvision {self.arch}"
            + (f" with {self.weights_file}" if self.weights_file else f" ({default})"),
            "pretrained_on": "ImageNet-1k" if default is None or "IMAGENET1K" in str(default) else str(default),
            "licence": "BSD-3-Clause (torchvision weights)",
        }
        super().__init__(f"torchvision:{rest}", provenance={**prov, **(provenance or {})}, **kwargs)

    def _build(self, pretrained: bool) -> nn.Module:
        import torchvision

        try:
            if pretrained and not self.weights_file:
                model = torchvision.models.get_model(self.arch, weights="DEFAULT")
            else:
                model = torchvision.models.get_model(self.arch, weights=None)
                if pretrained:
                    model.load_state_dict(load_state_dict_file(self.weights_file))
        except BackboneError:
            raise
        except Exception as exc:
            raise BackboneError(
                f"Could not load torchvision model '{self.arch}': {str(exc).splitlines()[0]} "
                f"Without internet, pass a weights file: --backbone torchvision:{self.arch}@/path/weights.pth."
            ) from None
        head = None
        for attr in _TORCHVISION_HEADS:  # drop the ImageNet classifier: the rungs add their own head
            if isinstance(getattr(model, attr, None), nn.Module):
                head = getattr(model, attr)
                setattr(model, attr, nn.Identity())
                break
        encoder = PixelEncoder(model)
        with torch.inference_mode():
            self.feature_dim = int(encoder.eval()(torch.zeros(1, 3, 64, 64)).shape[1])
        if pretrained:
            self._source_head = checked_head(head, self.feature_dim)
        return encoder

    def architecture(self) -> dict[str, Any]:
        model = self.encoder().model
        removed = next((a for a in _TORCHVISION_HEADS if isinstance(getattr(model, a, None), nn.Identity)), None)
        return {"resolve": self._resolve_recipe(), "library": "torchvision", "arch": self.arch, "head_removed": removed}

    @classmethod
    def rebuild(cls, desc: dict[str, Any], prep: dict[str, Any], folder: Path) -> "TorchvisionBackbone":
        """``_build`` drops the same classifier attribute the run's did (``head_removed``)."""
        backbone = cls(desc["arch"])
        backbone.name = desc["name"]
        backbone.configure(prep["image_size"], prep["mean"], prep["std"])
        return backbone

    def layer_groups(self, encoder: nn.Module) -> list[list[nn.Parameter]]:
        model = encoder.model
        features = getattr(model, "features", None)  # mobilenet, efficientnet, vgg, convnext...
        if isinstance(features, nn.Sequential):
            return groups_from_blocks(encoder, features)
        stages = [c for c in model.children() if any(True for _ in c.parameters())]
        return [list(c.parameters()) for c in stages]  # resnet-style: stem, layer1..4


SAVED_FORMATS.register("timm")(TimmBackbone)
SAVED_FORMATS.register("torchvision")(TorchvisionBackbone)


@SOURCES.register("timm")
def _timm(rest: str, **options: Any) -> Backbone:
    return TimmBackbone(rest, **options)


@SOURCES.register("torchvision")
def _torchvision(rest: str, **options: Any) -> Backbone:
    return TorchvisionBackbone(rest, **options)
