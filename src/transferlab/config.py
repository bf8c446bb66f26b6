"""The run spec: every setting of a run, with help text, validated where it is built.

A bad value fails here, naming the field, what was expected and what was given, before any
data is read or any model is loaded.
"""

from __future__ import annotations

import re
from dataclasses import Field, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError

# in a help text, "{rungs}" or "{rungs:seeding=cheap,needs_backbone=true}": the registered rungs so declared
_RUNG_LIST = re.compile(r"\{rungs(?::([^}]*))?\}")


def strategies(**declared: Any) -> list[str]:
    """The registered rungs declared so (see ``transferlab.rungs.strategies``). The registry is
    imported on first use: the rungs import torch, which ``import transferlab`` must not."""
    from .rungs import strategies as registered

    return registered(**declared)


def default_rungs() -> list[str]:
    return strategies(in_default_ladder=True)


def _help(text: str, default: Any, **cli: Any) -> Any:
    """A setting: its help text and default, and how the command line spells it if not ``--field-name``
    (``cli``: another flag, ``short``: a one-letter alias, ``repeatable``: a list given once per item);
    transferlab.cli_options turns every field into an option. A callable ``default`` is a factory,
    called when a spec is built (``lazy_default``: the command line does not show it).

    ``scope`` says what a setting changes, so the rung cache (``transferlab.stages.cache``) knows
    which settings belong in a finished rung's key: see ``SCOPES``."""
    metadata = {"help": text, **cli}
    if callable(default):
        return field(default_factory=default, metadata={**metadata, "lazy_default": True})
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


# What a setting changes, declared per field (``scope=``); the key of a finished rung holds:
SCOPES = {
    "rung": "the setting itself, for the rungs that read it (each rung's ``settings``): the default",
    "result": "the setting itself, for every rung: it shapes every rung's record (seed, metric...)",
    "input": "what the setting made instead: the data, the splits and seeds drawn, the OOD sets, the backbone",
    "none": "nothing: the setting changes where or how a run goes, never what a rung computes",
}


def setting_scope(f: Field) -> str:
    """A RunSpec field's scope (see ``SCOPES``)."""
    return f.metadata.get("scope", "rung")


def field_help(f: Field) -> str:
    """The help text of a RunSpec field, with its lists of rungs ("{rungs:...}") read from the registry."""
    return fill_rung_lists(f.metadata.get("help", ""))


def fill_rung_lists(text: str) -> str:
    """``text`` with each "{rungs}" or "{rungs:attribute=value,...}" replaced by the rungs so declared."""
    if "{rungs" not in text:
        return text
    return _RUNG_LIST.sub(lambda m: ", ".join(strategies(**_declared(m.group(1) or ""))), text)


def _declared(pairs: str) -> dict[str, Any]:
    """ "role=control,cheap=false" -> {"role": "control", "cheap": False}."""
    values = {"true": True, "false": False}
    return {k.strip(): values.get(v.strip(), v.strip()) for k, v in (p.split("=") for p in pairs.split(",") if p)}


@dataclass
class RunSpec:
    backbones: list[str] = _help(
        "Candidate base models: hf:<repo or folder>, timm:<name>, torchvision:<name>, "
        "or a packaged name (minilm, mobilenet_v2, efficientnet_lite0/1/2).",
        [],
        cli="--backbone",
        short="-b",
        repeatable=True,
        scope="input",
    )
    rungs: list[str] = _help("Which rungs of the ladder to run: {rungs}.", default_rungs, scope="none")
    text_column: str | None = _help("Column holding the text (CSV/JSONL/Parquet).", None, scope="input")
    label_column: str | None = _help("Column holding the label.", None, scope="input")
    split_column: str | None = _help(
        "Column with train/val/test per row; without it transferlab splits.", None, scope="input"
    )
    group_column: str | None = _help(
        "Column with a group id (patient, product...): no group is split across train, validation and test.",
        None,
        scope="input",
    )
    time_column: str | None = _help(
        "Column with a date/time or number: train on the oldest, test on the newest.", None, scope="input"
    )
    out: str | None = _help("Run directory (default runs/<name>-<time>).", None, short="-o", scope="none")
    name: str | None = _help("Run name, used for the default run directory.", None, scope="none")
    seed: int = _help("Seed for the split, subsampling, initialisation and batch order.", 0, scope="result")
    seeds: int = _help(
        "Seeds per rung for the cheap rungs ({rungs:seeding=cheap}): each extra seed refits on a "
        "different random train/validation partition of the same examples.",
        3,
        scope="input",
    )
    train_seeds: int = _help(
        "Seeds per rung for the rungs that train a backbone or a model from scratch "
        "({rungs:seeding=train}); each seed costs a whole training "
        "run.",
        1,
        scope="input",
    )
    executor: str = _help(
        "Where rungs run: local (this process), or ray (independent rungs, candidates and seeds "
        "as Ray tasks, on a local Ray or the cluster at ray_address).",
        "local",
        scope="none",
    )
    ray_address: str | None = _help(
        "With executor ray: the address of an existing cluster (e.g. auto or "
        "ray://head:10001); unset starts a local Ray.",
        None,
        scope="none",
    )
    ray_gpus: float = _help(
        "With executor ray: GPUs each task that trains a backbone ({rungs:seeding=train}) "
        "requests; a fraction shares one GPU between tasks (0.5: two per GPU). "
        "0 trains on CPUs.",
        0.0,
        scope="none",
    )
    save_models: bool = _help(
        "Keep each rung's fitted model under models/ in the run directory (for transferlab export).",
        True,
        scope="result",
    )
    val_fraction: float = _help(
        "Share of examples held out for validation when transferlab splits.", 0.15, scope="input"
    )
    test_fraction: float = _help("Share of examples held out for the test when transferlab splits.", 0.2, scope="input")
    max_train: int | None = _help(
        "Cap on training examples (stratified subsample); unset keeps all.", None, scope="input"
    )
    max_val: int | None = _help("Cap on validation examples.", None, scope="input")
    max_test: int | None = _help("Cap on test examples.", None, scope="input")
    top_k: int | None = _help(
        "Train ({rungs:needs_backbone=true,cheap=false}) only the best k backbones by kNN accuracy (the ranking's lead score); "
        "all get the cheap ones ({rungs:needs_backbone=true,cheap=true}).",
        None,
        scope="none",
    )
    audit: bool = _help(
        "Audit the data before training: duplicates and near-duplicates within and across "
        "splits, label conflicts, imbalance, label shift, group and time overlap.",
        True,
        scope="input",
    )
    on_leakage: str = _help(
        "What to do with cross-split (near-)duplicates: dedupe (drop the train/val copies; "
        "test is never touched), fail, or warn.",
        "dedupe",
        scope="input",
    )
    max_dedupe_share: float = _help(
        "dedupe: the largest share of the training or validation split it removes "
        "without asking; above it the run stops with sample pairs, unless "
        "confirm_dedupe.",
        0.05,
        scope="input",
    )
    confirm_dedupe: bool = _help(
        "dedupe: remove the cross-split copies even when they are more than "
        "max_dedupe_share of a split (after looking at the pairs with transferlab "
        "audit).",
        False,
        scope="input",
    )
    ood: str | None = _help(
        "An out-of-distribution test set (same format and columns as the data); every rung "
        "is scored on it and the drop from the clean test is reported.",
        None,
        scope="input",
    )
    corruptions: bool = _help(
        "Score every rung on corrupted copies of the test split (noise, blur, JPEG... "
        "for images; typos, casing, truncation, word dropout for text).",
        True,
        scope="input",
    )
    ood_max_items: int = _help(
        "Test examples (stratified subsample) the corruptions are applied to.", 300, scope="input"
    )
    learning_curve: bool = _help(
        "Refit the cheap rungs ({rungs:seeding=cheap}) on nested fractions of the training "
        "set to estimate how many examples per class reach --target.",
        True,
        scope="result",
    )
    learning_curve_trained: bool = _help(
        "Also measure the learning curve of {rungs:trained_learning_curve=true}: "
        "retrained on 25% and 50% of the training set, one subsample; costs about "
        "0.75 of one more training run each.",
        False,
    )
    target: float | None = _help(
        "The test metric value you need (e.g. 0.9); the learning curve estimates the examples per class to reach it.",
        None,
        scope="result",
    )
    time_limit: str | float | None = _help(
        "Wall-clock budget of the whole run: seconds, or with a unit (90s, 30m, 1.5h, 1h30m). "
        "The cheap rungs always run; the rungs that train a backbone are cut to fit, in a "
        "documented order (learning-curve refits, extra seeds, epochs, the learning-rate "
        "screen, a training subsample, then the costliest rungs), and a rung still running at "
        "the limit stops, keeping its best epoch. The report says what was cut. Unset: no limit.",
        None,
        scope="none",
    )
    ood_trained: bool = _help(
        "Score the rungs that train a backbone on the out-of-distribution sets (the corrupted test "
        "copies and --ood) too. --time-limit turns it off when the budget needs it.",
        True,
    )
    trained_fraction: float = _help(
        "Share of the training split the rungs that train a backbone fit on (a stratified "
        "subsample; the cheap rungs and the controls always use all of it). --time-limit lowers it "
        "when the budget needs it.",
        1.0,
    )
    epochs: float = _help(
        "Most epochs for the trainable rungs (early stopping may end sooner). A fraction trains that "
        "share of the last epoch's batches, as num_train_epochs in transformers (2.5: two epochs and "
        "half of a third); --time-limit uses one to fill what whole epochs leave.",
        10,
    )
    head_epochs: int = _help("Most epochs of head warm-up on cached features before unfreezing (finetune).", 30)
    batch_size: int = _help("Training batch size.", 16)
    lr: float = _help("Learning rate of a new head and of training from scratch (AdamW).", 1e-3)
    top_lr_ratio: float = _help(
        "finetune: learning rate of the top backbone block relative to lr (also the uniform rate of the full rung).",
        0.1,
    )
    bottom_lr_ratio: float = _help("finetune: learning rate of the stem relative to lr.", 0.01)
    lr_factors: list[float] = _help(
        "full and finetune: try the rung's learning rates times each of these "
        "factors, each for one epoch, and finish training only the one best on "
        "validation; [1] trains at the given rates alone.",
        [10.0, 1.0, 0.1],
    )
    unfreeze_stages: int = _help("finetune: unfreeze the backbone in this many steps, top first, one per epoch.", 3)
    patience: int = _help("Early stopping: epochs without validation improvement.", 3)
    small_epochs: int = _help(
        "scratch_small: most epochs of the small from-scratch model (it trains until "
        "validation stops improving, so this is only an upper bound).",
        60,
    )
    small_lr: float | None = _help(
        "scratch_small: learning rate (AdamW); unset: 1e-3 for the CNNs (images, audio), "
        "1e-2 for the text model, whose embeddings barely move at 1e-3.",
        None,
    )
    small_patience: int = _help(
        "scratch_small: early stopping: epochs without validation improvement (a small "
        "model's validation score is noisy and still climbs late).",
        15,
    )
    small_flip: bool = _help(
        "scratch_small, images: random horizontal flips while training. Turn off for "
        "digits, letters or anything a mirror image changes.",
        True,
    )
    lora_rank: int = _help("lora: rank r of the low-rank adapters.", 8)
    lora_alpha: float = _help("lora: adapter scale numerator (updates are scaled by alpha / r).", 16)
    lora_dropout: float = _help("lora: dropout on the adapters' inputs.", 0.1)
    lora_targets: list[str] | None = _help(
        "lora: names of the layers to adapt (e.g. query,value); unset: the "
        "architecture's default (BERT: query/key/value/dense, ViT: qkv, CLIP: "
        "q/k/v/out_proj, CNNs: pointwise 1x1 convolutions).",
        None,
    )
    label_descriptions: dict[str, str] | str | None = _help(
        "zero_shot: label -> description to embed instead of the label name; a mapping, or a JSON/YAML/CSV file.", None
    )
    zero_shot_template: str | None = _help(
        "zero_shot: prompt with {} for the label name or description "
        "(default: '{}' for text, 'a photo of a {}.' for CLIP).",
        None,
    )
    metric: str = _help("Validation metric used for model selection and early stopping.", "accuracy", scope="result")
    max_length: int = _help("Text: tokens per input (longer texts are truncated).", 256)
    image_size: int = _help("Images: side in pixels fed to image backbones.", 224)
    clip_seconds: float = _help(
        "Audio: seconds of each clip fed to audio backbones and the MFCC baseline (longer "
        "clips are centre-cropped, shorter ones zero-padded).",
        3.0,
    )
    extract_batch_size: int = _help("Batch size for feature extraction and prediction.", 32)
    cache_dir: str | None = _help(
        "Cache folder: the frozen features, and each finished rung under rungs/ (a "
        "re-run with the same data, settings and code reuses it). Default "
        "~/.cache/transferlab/features, rungs in ~/.cache/transferlab/rungs (or under "
        "$TRANSFERLAB_CACHE).",
        None,
        scope="none",
    )
    force: bool = _help(
        "Fit every rung again, even one found in the cache folder (finished before with the same "
        "data, settings, backbone weights and code); the new result replaces the cached one.",
        False,
        scope="none",
    )
    trust_remote_code: bool = _help(
        "Allow Hugging Face models to run their own code. Off unless you trust the model.", False, scope="input"
    )
    threads: int | None = _help("Torch CPU threads (default: all cores).", None, scope="none")
    mlflow: str | None = _help(
        "MLflow tracking URI (sqlite:///mlflow.db, file:./mlruns, http://host:5000): the "
        "finished run is logged there, one nested MLflow run per rung. Needs "
        "transferlab[tracking].",
        None,
        scope="none",
    )
    mlflow_experiment: str = _help("MLflow experiment the run is logged to (with mlflow).", "transferlab", scope="none")
    notes: list[str] = _help(
        "Lines shown at the top of the report (e.g. how the demo subsampled).",
        [],
        cli="--note",
        repeatable=True,
        scope="none",
    )

    def __post_init__(self) -> None:
        if isinstance(self.rungs, str):
            self.rungs = [r.strip() for r in self.rungs.split(",") if r.strip()]
        if isinstance(self.backbones, str):
            self.backbones = [self.backbones]
        self.rungs = list(dict.fromkeys(self.rungs))
        known = strategies()
        unknown = [r for r in self.rungs if r not in known]
        if unknown:
            raise ConfigError(
                f"Unknown rung '{unknown[0]}' in rungs. Expected a comma-separated subset of: {', '.join(known)}."
            )
        if not self.rungs:
            raise ConfigError("The 'rungs' setting is empty. Name at least one of: " + ", ".join(known) + ".")
        if isinstance(self.epochs, float) and self.epochs.is_integer():
            self.epochs = int(self.epochs)  # --epochs 10 and epochs: 10 are the same setting (and cache key)
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, (int, float)) or not self.epochs >= 1:
            raise ConfigError(
                f"The 'epochs' setting must be a number >= 1 (a fraction trains part of the last epoch). "
                f"Got {self.epochs!r} instead."
            )
        for name in (
            "head_epochs",
            "batch_size",
            "patience",
            "max_length",
            "image_size",
            "extract_batch_size",
            "unfreeze_stages",
            "ood_max_items",
            "seeds",
            "train_seeds",
            "small_epochs",
            "small_patience",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"The '{name}' setting must be a whole number >= 1. Got {value!r} instead.")
        for name in ("max_train", "max_val", "max_test", "threads", "top_k"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"The '{name}' setting must be a whole number >= 1 or unset. Got {value!r} instead.")
        for name in ("lr", "top_lr_ratio", "bottom_lr_ratio"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(f"The '{name}' setting must be a positive number. Got {value!r} instead.")
        if self.small_lr is not None and (
            isinstance(self.small_lr, bool) or not isinstance(self.small_lr, (int, float)) or not self.small_lr > 0
        ):
            raise ConfigError(
                f"The 'small_lr' setting must be a positive number or unset. Got {self.small_lr!r} instead."
            )
        _check_lr_factors(self)
        if self.time_limit is not None:
            parse_duration(self.time_limit, "time_limit")  # kept as written ("30m"): limit_seconds() reads it
        if (
            isinstance(self.trained_fraction, bool)
            or not isinstance(self.trained_fraction, (int, float))
            or not 0 < self.trained_fraction <= 1
        ):
            raise ConfigError(
                f"The 'trained_fraction' setting must be a share above 0 and at most 1 (e.g. 0.5). "
                f"Got {self.trained_fraction!r} instead."
            )
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0 < value < 0.5:
                raise ConfigError(f"The '{name}' setting must be between 0 and 0.5. Got {value!r} instead.")
        if (
            isinstance(self.clip_seconds, bool)
            or not isinstance(self.clip_seconds, (int, float))
            or not 0.1 <= self.clip_seconds <= 600
        ):
            raise ConfigError(
                f"The 'clip_seconds' setting must be a number of seconds from 0.1 to 600. "
                f"Got {self.clip_seconds!r} instead."
            )
        if isinstance(self.ray_gpus, bool) or not isinstance(self.ray_gpus, (int, float)) or not self.ray_gpus >= 0:
            raise ConfigError(
                f"The 'ray_gpus' setting must be a number of GPUs >= 0 (e.g. 1 or 0.5). Got {self.ray_gpus!r} instead."
            )
        if not isinstance(self.ood_trained, bool):
            raise ConfigError(f"The 'ood_trained' setting must be true or false. Got {self.ood_trained!r} instead.")
        if not isinstance(self.small_flip, bool):
            raise ConfigError(f"The 'small_flip' setting must be true or false. Got {self.small_flip!r} instead.")
        if self.executor not in ("local", "ray"):
            raise ConfigError(f"The 'executor' setting must be local or ray. Got {self.executor!r} instead.")
        if self.on_leakage not in ("dedupe", "fail", "warn"):
            raise ConfigError(
                f"The 'on_leakage' setting must be one of dedupe, fail, warn. Got {self.on_leakage!r} instead."
            )
        if (
            isinstance(self.max_dedupe_share, bool)
            or not isinstance(self.max_dedupe_share, (int, float))
            or not 0 <= self.max_dedupe_share <= 1
        ):
            raise ConfigError(
                f"The 'max_dedupe_share' setting must be a share from 0 to 1 (e.g. 0.05 for 5%). "
                f"Got {self.max_dedupe_share!r} instead."
            )
        if not isinstance(self.force, bool):
            raise ConfigError(f"The 'force' setting must be true or false. Got {self.force!r} instead.")
        if not isinstance(self.confirm_dedupe, bool):
            raise ConfigError(
                f"The 'confirm_dedupe' setting must be true or false. Got {self.confirm_dedupe!r} instead."
            )
        if self.target is not None and not 0 < self.target <= 1:
            raise ConfigError(f"The 'target' setting must be a metric value in (0, 1]. Got {self.target!r} instead.")
        _check_adaptation(self)
        _check_tracking(self)
        from .evaluation.metrics import HEADLINE

        if self.metric not in HEADLINE:
            raise ConfigError(
                f"The 'metric' setting must be one of {', '.join(HEADLINE)}. Got {self.metric!r} instead."
            )

    def limit_seconds(self) -> float | None:
        """``time_limit`` in seconds."""
        return None if self.time_limit is None else parse_duration(self.time_limit, "time_limit")

    def needs_backbone(self) -> bool:
        return any(r in strategies(needs_backbone=True) for r in self.rungs)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def help(cls) -> dict[str, str]:
        return {f.name: field_help(f) for f in fields(cls)}

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> "RunSpec":
        """The spec in a YAML file (keys = field names; ``data:`` is read by :func:`read_yaml`);
        ``overrides`` win over the file."""
        settings, _ = read_yaml(path)
        try:
            return cls(**{**settings, **overrides})
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None

    def to_yaml(self, path: str | Path, data: str | Path | None = None) -> Path:
        """Every setting with its help text as a comment; ``from_yaml`` reads it back unchanged."""
        return write_yaml(self, path, data)


def _check_lr_factors(spec: RunSpec) -> None:
    """A list of distinct positive numbers; '10,1,0.1' (the CLI's form) is read as that list."""
    value = spec.lr_factors
    if isinstance(value, str):
        try:
            value = [float(v) for v in value.split(",") if v.strip()]
        except ValueError:
            value = spec.lr_factors
    ok = (
        isinstance(value, (list, tuple))
        and len(value) > 0
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in value)
    )
    if not ok or len(set(value)) != len(value):
        raise ConfigError(
            f"The 'lr_factors' setting must be a list of distinct positive numbers, e.g. 10,1,0.1 "
            f"(or 1 to train at the given rates only). Got {spec.lr_factors!r} instead."
        )
    spec.lr_factors = [float(v) for v in value]


def _check_adaptation(spec: RunSpec) -> None:
    """The lora and zero_shot settings (label descriptions are matched to the labels by the rung)."""
    if isinstance(spec.lora_targets, str):
        spec.lora_targets = [t.strip() for t in spec.lora_targets.split(",") if t.strip()] or None
    if not isinstance(spec.lora_rank, int) or isinstance(spec.lora_rank, bool) or spec.lora_rank < 1:
        raise ConfigError(f"The 'lora_rank' setting must be a whole number >= 1. Got {spec.lora_rank!r} instead.")
    if not isinstance(spec.lora_alpha, (int, float)) or not spec.lora_alpha > 0:
        raise ConfigError(f"The 'lora_alpha' setting must be a positive number. Got {spec.lora_alpha!r} instead.")
    if not isinstance(spec.lora_dropout, (int, float)) or not 0 <= spec.lora_dropout < 1:
        raise ConfigError(f"The 'lora_dropout' setting must be in [0, 1). Got {spec.lora_dropout!r} instead.")
    if spec.zero_shot_template is not None and "{}" not in str(spec.zero_shot_template):
        raise ConfigError(
            f"The 'zero_shot_template' setting must contain {{}} where the label goes, e.g. "
            f"'a review about {{}}'. Got {spec.zero_shot_template!r} instead."
        )
    d = spec.label_descriptions
    if isinstance(d, (str, Path)):
        path = Path(d).expanduser()
        if not path.is_file() or path.suffix.lower() not in (".json", ".yaml", ".yml", ".csv"):
            raise ConfigError(
                f"label_descriptions file '{d}' does not exist or is not .json, .yaml or .csv. "
                "Pass a file mapping each label to its description."
            )
        spec.label_descriptions = str(path)
    elif d is not None and not (isinstance(d, dict) and all(isinstance(v, str) for v in d.values())):
        raise ConfigError(
            f"The 'label_descriptions' setting must map labels to description strings, or name a "
            f"JSON/YAML/CSV file. Got {type(d).__name__} instead."
        )


def _check_tracking(spec: RunSpec) -> None:
    """Fail at load time, not after the run, when MLflow is asked for but not installed."""
    import importlib.util

    if spec.mlflow is None:
        return
    if not isinstance(spec.mlflow, str) or not spec.mlflow.strip():
        raise ConfigError(
            f"The 'mlflow' setting must be a tracking URI such as sqlite:///mlflow.db. Got {spec.mlflow!r} instead."
        )
    if not isinstance(spec.mlflow_experiment, str) or not spec.mlflow_experiment.strip():
        raise ConfigError(
            f"The 'mlflow_experiment' setting must be a non-empty name. Got {spec.mlflow_experiment!r} instead."
        )
    if importlib.util.find_spec("mlflow") is None:
        raise ConfigError(
            "The 'mlflow' setting needs the mlflow package, which is not installed. Install it with: "
            "pip install 'transferlab[tracking]'"
        )


def default_out(spec: RunSpec, data_name: str) -> Path:
    import re
    import time

    name = spec.name or re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(data_name).stem or "run").strip("-") or "run"
    return Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


# --- YAML run specs ---------------------------------------------------------------------------
# Keys are the RunSpec field names, plus ``data:``. Input paths (data, ood, a label_descriptions
# file) are relative to the YAML file's folder; out and cache_dir stay relative to where you run.

INPUT_PATHS = ("data", "ood", "label_descriptions")


def describe_type(hint: Any) -> str:
    import types
    import typing

    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(describe_type(a) for a in typing.get_args(hint))
    names = {int: "a whole number", float: "a number", bool: "true or false", str: "a string", type(None): "null"}
    if hint in names:
        return names[hint]
    return {list: "a list of strings", dict: "a mapping"}.get(typing.get_origin(hint), str(hint))


_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(value: Any, name: str) -> float:
    """Seconds from 1800, "1800", "90s", "30m", "1.5h" or "1h30m"; a clear error otherwise."""
    error = ConfigError(
        f"The '{name}' setting must be a duration above 0: seconds (1800) or a number with a unit, "
        f"h, m or s (90s, 30m, 1.5h, 1h30m). Got {value!r} instead."
    )
    if isinstance(value, bool):
        raise error
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        try:
            seconds = float(text)
        except ValueError:
            parts = _DURATION.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text or len({u for _, u in parts}) < len(parts):
                raise error from None
            seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    else:
        raise error
    if not seconds > 0 or seconds != seconds or seconds == float("inf"):
        raise error
    return seconds


def coerce_setting(value: Any, hint: Any) -> tuple[bool, Any]:
    """(matches, value): YAML's own types against a field's annotation; '1e-3' (a string to YAML 1.1)
    is taken as the number it means."""
    import types
    import typing

    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for a in args:
            ok, v = coerce_setting(value, a)
            if ok:
                return True, v
        return False, value
    if hint is type(None):
        return value is None, value
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if hint is float:
        if isinstance(value, str):
            try:
                return True, float(value)
            except ValueError:
                return False, value
        return isinstance(value, (int, float)) and not isinstance(value, bool), value
    if hint is str:
        return isinstance(value, str), value
    if origin is list:  # a comma-separated string is accepted too (rungs: majority,classical)
        ok = isinstance(value, str) or (isinstance(value, list) and all(coerce_setting(v, args[0])[0] for v in value))
        return ok, value
    if origin is dict:
        return isinstance(value, dict), {str(k): v for k, v in value.items()} if isinstance(value, dict) else value
    return True, value


def read_yaml(path: str | Path) -> tuple[dict[str, Any], str | None]:
    """(settings, data path) from a YAML (or JSON: spec.json of an earlier run) run spec.

    Unknown keys, wrong types and syntax errors raise ConfigError naming the file, line and key.
    """
    import difflib
    import typing

    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"Cannot read the run spec '{path}' ({exc.strerror}). Pass an existing YAML file to --config."
        ) from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(
            f"{path}{where}: not valid YAML ({getattr(exc, 'problem', None) or exc}). "
            f"Fix the syntax (keys as 'name: value', one per line)."
        ) from None
    if raw is None:
        return {}, None
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{path}: a run spec is a mapping of settings (name: value), not a "
            f"{type(raw).__name__}. See examples/spec.yaml."
        )
    lines: dict[str, int] = {}
    for key_node, _ in root.value:
        key = str(key_node.value)
        if key in lines:
            raise ConfigError(
                f"{path}, line {key_node.start_mark.line + 1}: '{key}' is set twice (first on line "
                f"{lines[key]}). Keep one."
            )
        lines[key] = key_node.start_mark.line + 1
    hints = typing.get_type_hints(RunSpec)
    folder = path.resolve().parent
    settings: dict[str, Any] = {}
    data = None
    for key, value in raw.items():
        key = str(key)
        where = f"{path}, line {lines.get(key, '?')}"
        if key == "schema" and str(value).startswith("transferlab.spec/"):
            continue  # spec.json of an earlier run
        if key != "data" and key not in hints:
            close = difflib.get_close_matches(key, [*hints, "data"], n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"{where}: unknown setting '{key}'.{hint} Valid settings are the RunSpec fields "
                f"(transferlab run --help, or RunSpec.help()) and 'data'."
            )
        ok, value = coerce_setting(value, hints.get(key, str | None))
        if not ok:
            raise ConfigError(
                f"{where}: the '{key}' setting must be {describe_type(hints.get(key, str))}. "
                f"Got {value!r} ({type(value).__name__}) instead."
            )
        if key in INPUT_PATHS and isinstance(value, str) and not Path(value).expanduser().is_absolute():
            value = str(folder / value)
        if key == "data":
            data = value
        else:
            settings[key] = value
    return settings, data


def write_yaml(spec: RunSpec, path: str | Path, data: str | Path | None = None) -> Path:
    """Every setting, preceded by its help text as a comment; input paths are written absolute."""
    import textwrap

    import yaml

    path = Path(path)
    values = spec.to_dict()
    if data is not None:
        values = {"data": str(data), **values}
    lines = ["# transferlab run spec: transferlab run --config " + path.name, ""]
    helps = RunSpec.help()
    for key, value in values.items():
        if key in INPUT_PATHS and isinstance(value, str):
            value = str(Path(value).expanduser().resolve())
        text = helps.get(key) or "The data: a folder or a CSV/TSV/JSONL/Parquet file."
        lines += ["# " + line for line in textwrap.wrap(text, 98)]
        lines.append(
            yaml.safe_dump(
                {key: value}, default_flow_style=False, sort_keys=False, allow_unicode=True, width=10_000
            ).rstrip("\n")
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
