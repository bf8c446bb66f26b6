"""What every backbone exposes, whatever its source.

A backbone turns a batch of raw items (texts, images) into a ``(B, D)`` feature tensor. It says
how to preprocess an input, how to build its encoder (pretrained, or randomly initialised for
the ``scratch`` rung), its layer groups ordered from the input (stem) to the top for gradual
unfreezing and layer-wise learning rates, its parameter count and its provenance.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from ..errors import BackboneError
from ..registry import Registry

# Backbone sources by prefix: "hf", "timm", "torchvision". Packaged offline models are looked up
# by their short name in PACKAGED.
SOURCES: Registry[Callable[..., "Backbone"]] = Registry("backbone source")
PACKAGED: Registry[Callable[..., "Backbone"]] = Registry("packaged backbone")
# Backbone classes a saved model can rebuild, by the ``library`` their description names
# (backbones/saving.py): the architecture with random weights, and the same preprocessing.
SAVED_FORMATS: Registry[type["Backbone"]] = Registry("saved backbone format")

UNKNOWN = "unknown"


class Backbone:
    """Base class. Subclasses implement ``_build``, ``preprocess`` and ``layer_groups``."""

    modality: str = ""
    may_have_source_head: bool = False  # image classifiers; source_head() skips loading the others

    def __init__(self, name: str, *, provenance: dict[str, str] | None = None, **options: Any):
        self.name = name
        self.options = options  # settings a source does not use (e.g. max_length for images) are kept, unused
        self.provenance = {"pretrained_on": UNKNOWN, "licence": UNKNOWN, "source": name, **(provenance or {})}
        self._pretrained: nn.Module | None = None
        self._source_head: nn.Module | None = None  # set by _build(pretrained=True) when the model has one
        self.feature_dim: int | None = None
        self.recipe: tuple[str, dict[str, Any]] | None = None  # (name, options) that ``resolve`` built it from

    # --- to implement ----------------------------------------------------------------------
    def _build(self, pretrained: bool) -> nn.Module:
        """An encoder whose forward(**batch) returns (B, D) features."""
        raise NotImplementedError

    def preprocess(self, items: list, train: bool = False) -> dict[str, torch.Tensor]:
        """Raw items -> the keyword tensors the encoder takes. ``train`` enables augmentation."""
        raise NotImplementedError

    def layer_groups(self, encoder: nn.Module) -> list[list[nn.Parameter]]:
        """Parameters grouped from the stem (index 0) to the top block."""
        raise NotImplementedError

    def preprocessing_id(self) -> str:
        """Everything about preprocessing that changes the features (sizes, lengths, norms)."""
        raise NotImplementedError

    # --- shared ----------------------------------------------------------------------------
    def encoder(self) -> nn.Module:
        """The pretrained encoder, loaded once and shared (read-only) by extraction."""
        if self._pretrained is None:
            self._pretrained = self._build(pretrained=True).eval()
        return self._pretrained

    def source_head(self) -> nn.Module | None:
        """The pretrained classifier over the source classes (e.g. ImageNet-1k), in eval mode:
        ``encoder()``'s (B, D) features -> (B, Z) logits. None for backbones without one
        (sentence embedders, models loaded without their classifier). LEEP and NCE need it."""
        if not self.may_have_source_head:
            return None
        self.encoder()
        return self._source_head

    def trainable_copy(self, pretrained: bool = True) -> nn.Module:
        """A fresh encoder to train: a copy of the pretrained one, or a random initialisation."""
        if pretrained:
            return copy.deepcopy(self.encoder())
        torch.manual_seed(int(self.options.get("seed", 0)))
        return self._build(pretrained=False)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.encoder().parameters())

    def cache_id(self) -> str:
        """Identifies the features: which weights, and how inputs were preprocessed."""
        return f"{self.name}|{self.weights_id()}|{self.preprocessing_id()}"

    def weights_id(self) -> str:
        return str(self.provenance.get("revision", self.provenance.get("source", self.name)))

    def describe(self) -> dict[str, Any]:
        return {
            "backbone": self.name,
            "modality": self.modality,
            "params": self.num_params(),
            "feature_dim": self.feature_dim,
            **self.provenance,
        }

    # --- saved with a fitted model (backbones/saving.py) -----------------------------------
    library: str | None = None  # the SAVED_FORMATS key that rebuilds this class; None: no saved format yet

    def architecture(self) -> dict[str, Any]:
        """What rebuilds the encoder's architecture offline: ``resolve`` (the original source) and
        the library's own keys. Classes with a ``library`` implement it."""
        raise NotImplementedError

    def saved_preprocessing(self) -> dict[str, Any]:
        """Every setting that turns a raw item into the encoder's input (preprocessing.json)."""
        raise NotImplementedError

    def write_files(self, folder: Path) -> None:
        """Files beside the weights that ``rebuild`` reads (a tokenizer, a model config)."""

    @classmethod
    def rebuild(cls, desc: dict[str, Any], prep: dict[str, Any], folder: Path) -> "Backbone":
        """This class from a saved description alone: same architecture and preprocessing, no weights read."""
        raise NotImplementedError

    def load_encoder_state(self, state: dict[str, torch.Tensor]) -> nn.Module:
        """Make ``encoder()`` this architecture holding ``state`` (a saved model's weights)."""
        encoder = self._build(pretrained=False)
        encoder.load_state_dict(state)
        self._pretrained = encoder.eval()
        return self._pretrained


def groups_from_blocks(model: nn.Module, blocks: nn.Module) -> list[list[nn.Parameter]]:
    """[everything before the blocks] + [one group per block] + [everything after them].

    Parameter registration order follows the forward order for the architectures we load
    (embeddings before encoder layers, stem before stages, pooler/head norm last).
    """
    block_ids = {id(p): i for i, child in enumerate(blocks.children()) for p in child.parameters()}
    before: list[nn.Parameter] = []
    after: list[nn.Parameter] = []
    per_block: list[list[nn.Parameter]] = [[] for _ in blocks.children()]
    seen_block = False
    for p in model.parameters():
        if id(p) in block_ids:
            per_block[block_ids[id(p)]].append(p)
            seen_block = True
        elif seen_block:
            after.append(p)
        else:
            before.append(p)
    return [g for g in [before, *per_block, after] if g]


def largest_block_list(model: nn.Module) -> nn.Module | None:
    """The ModuleList/Sequential with the most parameters: a transformer's layers, a CNN's stages."""
    best, best_n = None, 0
    for module in model.modules():
        if isinstance(module, (nn.ModuleList, nn.Sequential)) and len(module) >= 2:
            n = sum(p.numel() for p in module.parameters())
            if n > best_n:
                best, best_n = module, n
    return best


def resolve(name: str, **options: Any) -> Backbone:
    """``hf:<repo or path>``, ``timm:<name>``, ``torchvision:<name>`` or a packaged short name."""
    from . import audio, clip, hf, images, packaged  # noqa: F401  (registers the sources)

    backbone = _resolve(name.strip(), **options)
    backbone.recipe = (name.strip(), dict(options))
    return backbone


def _resolve(name: str, **options: Any) -> Backbone:
    if ":" in name and not name.startswith(("/", ".")):
        prefix, _, rest = name.partition(":")
        if prefix in SOURCES:
            if not rest:
                raise BackboneError(
                    f"Backbone '{name}' names no model after '{prefix}:'. Example: {prefix}:{_EXAMPLES.get(prefix, '<name>')}."
                )
            return SOURCES.get(prefix)(rest, **options)
    if name in PACKAGED:
        return PACKAGED.get(name)(**options)
    raise BackboneError(
        f"Unknown backbone '{name}'. Use hf:<repo or folder>, timm:<name>, torchvision:<name>, "
        f"or a packaged offline model: {', '.join(PACKAGED.list_())}."
    )


_EXAMPLES = {
    "hf": "sentence-transformers/all-MiniLM-L6-v2",
    "timm": "resnet18",
    "torchvision": "mobilenet_v2",
    "clip": "openai/clip-vit-base-patch32",
}


def list_backbones() -> dict[str, list[str]]:
    from . import audio, clip, hf, images, packaged  # noqa: F401

    return {"sources": [f"{s}:" for s in SOURCES.list_()], "packaged": PACKAGED.list_()}
