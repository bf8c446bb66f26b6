"""``lora``: low-rank adapters (PEFT) inside the frozen pretrained backbone, and a new head.

Every pretrained weight stays as it is; beside each adapted layer LoRA learns an update
``B @ A`` of rank r, scaled by alpha / r. ``B`` starts at zero, so training starts from the
pretrained features, and what is trained (and saved) is a few percent of the model. Layers
adapted by default, per architecture (``--lora-targets`` overrides them):

* BERT-like text encoders: ``query``, ``key``, ``value`` and the ``dense`` layers of the
  encoder blocks (every linear layer of the blocks; the unused pooler is left out);
* ViT (timm): ``qkv``;  CLIP and other Hugging Face vision transformers: ``q/k/v/out_proj``;
* CNNs (MobileNetV2...): the pointwise 1x1 convolutions of the stages.

Training is the shared loop: adapters at half the head's rate (``--lr``, the rate the LoRA
paper used for RoBERTa relative to its heads), warm-up, cosine decay, early stopping, best
epoch restored. A backbone whose layers PEFT cannot adapt (EfficientNet-Lite's
``Conv2dStaticSamePadding``) makes the rung not applicable rather than failing the run.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from ..backbones.base import Backbone, largest_block_list
from ..config import RunSpec
from ..training import ParamGroup
from .base import RUNGS, Context, RungOutput
from .trainable import Classifier, ClassifierFitted, TrainableRung

ADAPTER_LR_RATIO = 0.5  # adapters' learning rate relative to the head's (--lr)
ADAPTABLE = (nn.Linear, nn.Conv2d)  # exact types: a subclass with its own forward is not what PEFT rewrites
DEFAULT_TARGETS = (  # (architecture, layer names that identify it, layer names adapted)
    ("BERT-like encoder", {"query", "key", "value"}, ("query", "key", "value", "dense")),
    ("ViT", {"qkv"}, ("qkv",)),
    ("CLIP / Hugging Face ViT", {"q_proj", "v_proj"}, ("q_proj", "k_proj", "v_proj", "out_proj")),
)


def find_targets(encoder: nn.Module, names: list[str] | None = None) -> tuple[list[str], str]:
    """(full names of the layers to adapt, what they are); no names and the reason when none can be.

    Defaults look inside the backbone's blocks only (its largest layer list); names the user
    gives match the last part of a layer's name anywhere in the encoder, as in PEFT.
    """
    blocks = largest_block_list(encoder) if names is None else None
    inside = {id(m) for m in (blocks or encoder).modules()}
    layers = [(n, m) for n, m in encoder.named_modules() if n and id(m) in inside]
    leaf = {n: n.rsplit(".", 1)[-1] for n, _ in layers}
    if names is not None:
        wanted = [(n, m) for n, m in layers if leaf[n] in names]
        what = f"the layers named {', '.join(names)}"
        if not wanted:
            kinds = sorted({leaf[n] for n, m in layers if isinstance(m, ADAPTABLE)})[:12]
            return [], (
                f"it has no layer named {', '.join(names)} (--lora-targets); its linear and convolution "
                f"layers are named {', '.join(kinds) or 'nothing adaptable'}"
            )
    else:
        present = set(leaf.values())
        for arch, marker, targets in DEFAULT_TARGETS:
            if marker <= present:
                wanted, what = [(n, m) for n, m in layers if leaf[n] in targets], f"{arch}: {', '.join(targets)}"
                break
        else:
            wanted = [
                (n, m) for n, m in layers if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and m.groups == 1
            ]
            what = "pointwise (1x1) convolutions"
        if not wanted:
            return [], "it has no attention projections or pointwise convolutions to adapt; pass --lora-targets"
    odd = sorted({type(m).__name__ for _, m in wanted if type(m) not in ADAPTABLE})
    if odd:
        return [], (
            f"its {what} are {', '.join(odd)} layers, which PEFT's LoRA cannot adapt "
            f"(it adapts plain Linear and Conv2d layers)"
        )
    return [n for n, _ in wanted], what


@RUNGS.register("lora")
class Lora(TrainableRung):
    strategy = "lora"
    settings = TrainableRung.settings + ("lora_rank", "lora_alpha", "lora_dropout", "lora_targets")
    trains_backbone = True
    simplicity = 60
    trained_learning_curve = True
    description = (
        "Low-rank adapters (PEFT LoRA) in the frozen pretrained backbone and a new head, trained with early stopping."
    )

    def applies_to(self, backbone: Backbone, spec: RunSpec) -> str | None:
        targets, why = find_targets(backbone.encoder(), spec.lora_targets)
        return None if targets else why

    def build(self, ctx: Context) -> Classifier:
        from peft import LoraConfig, get_peft_model

        model = super().build(ctx)
        spec = ctx.spec
        self.targets_, self.what_ = find_targets(model.encoder, spec.lora_targets)
        config = LoraConfig(
            r=spec.lora_rank,
            lora_alpha=spec.lora_alpha,
            lora_dropout=spec.lora_dropout,
            target_modules=self.targets_,
            bias="none",
        )
        model.encoder = get_peft_model(model.encoder, config)  # freezes every non-adapter weight
        self.model_ = model
        return model

    def train(self, ctx: Context, model: Classifier) -> tuple[dict, list[str]]:
        adapters = [p for p in model.encoder.parameters() if p.requires_grad]
        lr = ctx.spec.lr * ADAPTER_LR_RATIO
        groups = [ParamGroup("adapters", adapters, lr), ParamGroup("head", list(model.head.parameters()), ctx.spec.lr)]
        curves, notes = self._fit_backbone(ctx, model, groups, lambda epoch: "adapters + head")
        spec = ctx.spec
        return curves, [
            f"LoRA rank {spec.lora_rank}, alpha {spec.lora_alpha:g}, dropout {spec.lora_dropout:g} on "
            f"{len(self.targets_)} layers ({self.what_}); adapters at learning rate {lr:.1e}, head at "
            f"{spec.lr:.1e}; every pretrained weight frozen."
        ] + notes

    def run(self, ctx: Context) -> RungOutput:
        out = super().run(ctx)
        model = self.model_
        adapter = [p for n, p in model.encoder.named_parameters() if "lora_" in n]
        out.cost["adapter_params"] = sum(p.numel() for p in adapter)
        out.cost["adapter_bytes"] = sum(p.numel() * p.element_size() for p in adapter)
        out.chosen.update(
            {
                "lora_rank": ctx.spec.lora_rank,
                "lora_alpha": ctx.spec.lora_alpha,
                "lora_dropout": ctx.spec.lora_dropout,
                "lora_layers": len(self.targets_),
                "lora_targets": self.what_,
            }
        )
        return out

    def fitted(self, ctx: Context, model: Classifier) -> ClassifierFitted:
        return LoraFitted(model, ctx.backbone, ctx.spec.extract_batch_size)


class LoraFitted(ClassifierFitted):
    """The adapters merged into the encoder (``W + (alpha / r) B A``: a plain classifier again, which
    predicts, saves and loads as ``classifier``), and the adapter as PEFT saves it (``adapter/``)
    with the head (``head.safetensors``) beside it, to load onto the backbone with PEFT."""

    def __init__(self, model: Classifier, backbone: Backbone, batch_size: int):
        import copy

        self.adapter, self.head = model.encoder, model.head
        merged = Classifier(
            copy.deepcopy(model.encoder).merge_and_unload(), backbone.feature_dim, model.head[-1].out_features
        )
        merged.head = model.head
        super().__init__(merged.eval(), backbone, batch_size, "lora")

    def save(self, folder: Path) -> dict:
        from safetensors.torch import save_file

        self.adapter.save_pretrained(str(folder / "adapter"))
        head = {k: v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()}
        save_file(head, str(folder / "head.safetensors"))
        return {**super().save(folder), "adapter": "adapter", "adapter_head": "head.safetensors"}
