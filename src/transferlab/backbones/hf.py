"""Hugging Face text encoders: ``hf:<repo id>`` from the Hub, or ``hf:<folder>`` on disk.

(Audio models behind ``hf:`` — wav2vec2, HuBERT, AST... — are recognised from their config and
handled by ``backbones/audio.py``.)

Loading goes through ``transformers.AutoModel`` / ``AutoTokenizer``. Pooling follows the
model's sentence-transformers configuration when it has one (``modules.json`` and
``1_Pooling/config.json``: mean, CLS or max pooling, then L2 normalisation if configured);
plain encoders get mean pooling over non-padding tokens, the usual robust default.
``trust_remote_code`` stays off unless the user asks for it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import BackboneError, require
from .base import SAVED_FORMATS, SOURCES, UNKNOWN, Backbone, groups_from_blocks, largest_block_list


class PooledTextEncoder(nn.Module):
    """transformer -> token embeddings (B, T, H) -> pooled (B, H) [-> L2-normalised]."""

    def __init__(self, transformer: nn.Module, pooling: str = "mean", normalize: bool = False):
        super().__init__()
        self.transformer = transformer
        self.pooling = pooling
        self.normalize = normalize

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **extra: torch.Tensor) -> torch.Tensor:
        tokens = self.transformer(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(tokens.dtype)  # (B, T, 1)
        if self.pooling == "cls":
            pooled = tokens[:, 0]
        elif self.pooling == "max":
            pooled = tokens.masked_fill(mask == 0, torch.finfo(tokens.dtype).min).max(dim=1).values
        else:
            pooled = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        if self.normalize:
            pooled = nn.functional.normalize(pooled, dim=-1)
        return pooled


def _read_json(folder: Path | None, repo: str, filename: str, revision: str | None) -> Any:
    """A small config file from a local folder, or from the Hub (None if it has none)."""
    if folder is not None:
        path = folder / filename
        return json.loads(path.read_text()) if path.is_file() else None
    try:
        from huggingface_hub import hf_hub_download

        return json.loads(Path(hf_hub_download(repo, filename, revision=revision)).read_text())
    except Exception:  # the file is optional; a missing one means "not a sentence-transformers model"
        return None


def hub_weights_id(folder: Path | None, repo: str, revision: str | None) -> str:
    """A local folder: its path and each weights file's name, size and time; a Hub model: id@revision."""
    if folder is not None:
        weights = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
        stamp = ";".join(f"{w.name}:{w.stat().st_size}:{int(w.stat().st_mtime)}" for w in weights)
        return f"{folder}|{stamp}"
    return f"{repo}@{revision or 'main'}"


def card_provenance(folder: Path | None, repo: str) -> dict[str, str]:
    """Pretraining data and licence from the model card's YAML header, where there is one."""
    text = None
    if folder is not None and (folder / "README.md").is_file():
        text = (folder / "README.md").read_text(encoding="utf-8", errors="replace")
    elif folder is None:
        try:
            from huggingface_hub import ModelCard

            text = ModelCard.load(repo).content
        except Exception:
            text = None
    if not text or not text.startswith("---"):
        return {}
    import yaml

    try:
        meta = yaml.safe_load(text.split("---", 2)[1]) or {}
    except yaml.YAMLError:
        return {}
    out = {}
    if meta.get("license"):
        out["licence"] = str(meta["license"])
    datasets = meta.get("datasets")
    if datasets:
        datasets = [datasets] if isinstance(datasets, str) else list(datasets)
        more = f" and {len(datasets) - 8} more" if len(datasets) > 8 else ""
        out["pretrained_on"] = ", ".join(str(d) for d in datasets[:8]) + more
    if meta.get("base_model"):
        out["base_model"] = str(meta["base_model"])
    return out


def _refuse_remote_code(folder: Path | None, name: str, trust_remote_code: bool) -> None:
    """A local folder whose config maps to Python files in the folder runs that code when loaded."""
    if trust_remote_code or folder is None:
        return
    maps: dict = {}
    for f in (folder / "config.json", folder / "tokenizer_config.json"):
        try:
            config = json.loads(f.read_text(encoding="utf-8")) if f.is_file() else {}
        except ValueError:
            continue  # transformers reports a malformed config itself
        if isinstance(config, dict) and isinstance(config.get("auto_map"), dict):
            maps.update(config["auto_map"])
    if maps:
        raise BackboneError(
            f"Model folder '{name}' needs to run its own code ({', '.join(sorted(maps))} map to Python files in "
            "the folder). transferlab does not run it unless you pass --trust-remote-code; do so only if you "
            "trust the folder's author."
        )


class HFTextBackbone(Backbone):
    modality = "text"
    library = "transformers"

    def __init__(
        self,
        repo_or_path: str,
        *,
        name: str | None = None,
        max_length: int = 256,
        revision: str | None = None,
        trust_remote_code: bool = False,
        provenance: dict[str, str] | None = None,
        **options: Any,
    ):
        transformers = require("transformers", "text")
        folder = Path(repo_or_path).expanduser()
        self.folder = folder if folder.is_dir() else None
        if self.folder is None and (repo_or_path.startswith((".", "/", "~")) or repo_or_path.count("/") > 1):
            raise BackboneError(
                f"Model folder '{repo_or_path}' does not exist. Pass an existing folder or a Hub id like org/model."
            )
        self.repo = str(self.folder) if self.folder else repo_or_path
        self.revision = revision
        self.trust_remote_code = trust_remote_code
        self.max_length = int(max_length)
        _refuse_remote_code(self.folder, repo_or_path, trust_remote_code)
        card = card_provenance(self.folder, self.repo)
        super().__init__(
            name or f"hf:{repo_or_path}",
            provenance={
                "source": f"Hugging Face {'folder' if self.folder else 'Hub'}: {self.repo}",
                **card,
                **(provenance or {}),
            },
            **options,
        )
        if revision:
            self.provenance["revision"] = revision
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(
                self.repo, revision=revision, trust_remote_code=trust_remote_code
            )
            self.config = transformers.AutoConfig.from_pretrained(
                self.repo, revision=revision, trust_remote_code=trust_remote_code
            )
        except Exception as exc:
            if "trust_remote_code" in str(exc) and not trust_remote_code:
                raise BackboneError(
                    f"Hugging Face model '{repo_or_path}' needs to run its own code. Pass "
                    "--trust-remote-code only if you trust its author."
                ) from None
            raise BackboneError(
                f"Could not load Hugging Face model '{repo_or_path}': {str(exc).splitlines()[0]} "
                "Without internet, pass a local folder: --backbone hf:/path/to/model."
            ) from None
        self.pooling, self.normalize = self._pooling_config()

    def _pooling_config(self) -> tuple[str, bool]:
        modules = _read_json(self.folder, self.repo, "modules.json", self.revision) or []
        pooling, normalize = "mean", False
        for module in modules:
            kind = str(module.get("type", ""))
            if kind.endswith("Pooling"):
                cfg = (
                    _read_json(self.folder, self.repo, f"{module.get('path', '1_Pooling')}/config.json", self.revision)
                    or {}
                )
                if cfg.get("pooling_mode_cls_token"):
                    pooling = "cls"
                elif cfg.get("pooling_mode_max_tokens"):
                    pooling = "max"
            elif kind.endswith("Normalize"):
                normalize = True
        return pooling, normalize

    def _build(self, pretrained: bool) -> nn.Module:
        import transformers

        try:
            if pretrained:
                model = transformers.AutoModel.from_pretrained(
                    self.repo, revision=self.revision, trust_remote_code=self.trust_remote_code
                )
            else:
                model = transformers.AutoModel.from_config(self.config, trust_remote_code=self.trust_remote_code)
        except Exception as exc:
            raise BackboneError(f"Could not load weights of '{self.name}': {str(exc).splitlines()[0]}") from None
        encoder = PooledTextEncoder(model, self.pooling, self.normalize)
        self.feature_dim = int(getattr(self.config, "hidden_size", 0) or 0) or None
        return encoder

    def preprocess(self, items: list, train: bool = False) -> dict[str, torch.Tensor]:
        enc = self.tokenizer(
            list(items), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        return {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}

    def layer_groups(self, encoder: nn.Module) -> list[list[nn.Parameter]]:
        blocks = largest_block_list(encoder)
        if blocks is None:
            return [list(encoder.parameters())]
        return groups_from_blocks(encoder, blocks)

    def preprocessing_id(self) -> str:
        return f"tok={type(self.tokenizer).__name__}|max_length={self.max_length}|pool={self.pooling}|norm={self.normalize}"

    def weights_id(self) -> str:
        return hub_weights_id(self.folder, self.repo, self.revision)

    def sort_key(self, item: str) -> int:
        """Batches of similar length pad less: extraction orders items by length."""
        return len(item)

    # --- saved with a fitted model ---
    def architecture(self) -> dict[str, Any]:
        return {
            "resolve": {
                "name": self.name,
                "options": {"max_length": self.max_length, "trust_remote_code": self.trust_remote_code},
            },
            "library": "transformers",
            "model_type": self.config.model_type,
            "architectures": self.config.architectures,
            "config": "backbone/config.json",
        }

    def saved_preprocessing(self) -> dict[str, Any]:
        return {
            "modality": "text",
            "tokenizer": "tokenizer",
            "max_length": self.max_length,
            "padding": "longest",
            "truncation": True,
            "pooling": self.pooling,
            "normalize": self.normalize,
            "sort_by": "character length",
        }

    def write_files(self, folder: Path) -> None:
        self.tokenizer.save_pretrained(folder / "tokenizer")
        self.config.save_pretrained(folder / "backbone")

    @classmethod
    def rebuild(cls, desc: dict[str, Any], prep: dict[str, Any], folder: Path) -> "HFTextBackbone":
        """The tokenizer and model config saved beside the weights; pooling and length as saved."""
        import transformers

        config_dir, tokenizer_dir = folder / Path(desc["config"]).parent, folder / prep["tokenizer"]
        for saved in (config_dir, tokenizer_dir):
            _refuse_remote_code(saved, str(saved), False)
        self = cls.__new__(cls)
        Backbone.__init__(self, desc["name"], provenance={"source": f"saved model: {folder}"})
        self.folder, self.repo, self.revision, self.trust_remote_code = config_dir, str(config_dir), None, False
        self.max_length, self.pooling, self.normalize = (
            int(prep["max_length"]),
            prep["pooling"],
            bool(prep["normalize"]),
        )
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(tokenizer_dir))
        self.config = transformers.AutoConfig.from_pretrained(str(config_dir))
        return self


SAVED_FORMATS.register("transformers")(HFTextBackbone)


@SOURCES.register("hf")
def _hf(rest: str, **options: Any) -> Backbone:
    from .audio import HFAudioBackbone, audio_config

    config = audio_config(rest, options.get("revision"), bool(options.get("trust_remote_code", False)))
    if config is not None:  # wav2vec2, HuBERT, AST, Whisper...: an audio encoder, not a text one
        return HFAudioBackbone(rest, config, **options)
    options.pop("image_size", None)
    options.pop("clip_seconds", None)
    return HFTextBackbone(rest, **options)


__all__ = ["HFTextBackbone", "PooledTextEncoder", "UNKNOWN"]
