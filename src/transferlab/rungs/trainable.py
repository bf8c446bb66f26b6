"""The rungs that train a backbone: ``finetune``, ``full`` and ``scratch``, on one loop.

* ``finetune`` - the disciplined recipe: the new head is warmed up first on the frozen
  backbone (on its cached features, which is the same computation without re-running the
  backbone every epoch), then the backbone is unfrozen gradually from the top, one stage per
  epoch, with layer-wise learning rates 10x (top) to 100x (stem) below the head's, a warm-up
  for each newly unfrozen group, early stopping on validation and the best epoch restored.
* ``full`` - the common shortcut: a random head and every layer trained at once at one
  learning rate (the finetune top-block rate).
* ``scratch`` - the same architecture randomly initialised, every layer at the head's
  learning rate, same loop: the control that reveals negative transfer.

``finetune`` and ``full`` choose their learning rate on validation: the rung's rates times each
of ``spec.lr_factors`` train for one epoch, and only the best of them trains on, from where its
first epoch ended (so the winner's run is exactly the run it would have been alone). Every rate
tried is recorded with its validation curve in ``chosen["lr_trials"]``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..backbones.base import Backbone
from ..devices import from_main
from ..errors import ArtifactError
from ..formats import fmt_epochs
from ..training import (
    LoopConfig,
    ParamGroup,
    deadline,
    fit,
    fit_epochs,
    format_rate,
    layerwise_groups,
    predict_logits,
    set_trainable,
    unfrozen_groups,
    uniform_groups,
)
from .base import RUNGS, Context, Rung, RungOutput
from .fitted import FITTED, Fitted, Saved


class Classifier(nn.Module):
    """encoder (B, ...) -> features (B, D) -> layer norm -> dropout -> linear -> logits (B, C).

    The layer norm puts every backbone's features on one scale (an L2-normalised sentence
    embedding has coordinates near 0.05, a CNN's pooled activations near 1), so one head
    learning rate suits them all.
    """

    def __init__(self, encoder: nn.Module, feature_dim: int, n_classes: int, dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Sequential(nn.LayerNorm(feature_dim), nn.Dropout(dropout), nn.Linear(feature_dim, n_classes))

    def forward(self, **batch: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(**batch))


@FITTED.register("classifier")
class ClassifierFitted(Fitted):
    """A trained ``Classifier`` (encoder + head) with the backbone that prepares its inputs;
    saved whole (``encoder.*``, ``head.*``), rebuilt on load from the backbone's saved description."""

    kind = "classifier"
    includes_encoder = True
    head_layers = "LayerNorm, Dropout, Linear (head.0, head.2)"

    def __init__(self, model: Classifier, backbone: Backbone, batch_size: int, strategy: str = ""):
        self.model, self.backbone, self.batch_size, self.strategy = model, backbone, batch_size, strategy
        self.n_classes = int(model.head[-1].out_features)

    def predict_proba(self, items: list) -> np.ndarray:
        items = list(items)
        if not items:
            return np.zeros((0, self.n_classes))
        key = getattr(self.backbone, "sort_key", None)
        order = sorted(range(len(items)), key=lambda i: key(items[i])) if key else None
        logits = predict_logits(
            self.model, lambda batch, train: self.backbone.preprocess(batch, train=False), items, self.batch_size, order
        )
        return torch.softmax(torch.from_numpy(logits).double(), dim=1).numpy()

    def parts(self) -> tuple[dict, dict, dict]:  # the whole Classifier; no optimizer state
        return self.model.state_dict(), {"layers": self.head_layers}, {}

    @classmethod
    def from_saved(cls, saved: Saved) -> "ClassifierFitted":
        backbone = saved.backbone()
        model = Classifier(
            backbone.trainable_copy(pretrained=False), int(saved.info["backbone"]["feature_dim"]), saved.n_classes
        )
        state = {k: v for k, v in saved.tensors.items() if k.startswith(("encoder.", "head."))}
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise ArtifactError(
                f"{saved.folder / 'model.safetensors'} does not match the architecture in "
                f"{saved.describing} ({str(exc).splitlines()[0]}). Save or export the model again."
            ) from None
        return cls(model.eval(), backbone, saved.batch_size)


class _FeatureInput(nn.Module):
    """Stands in for a frozen encoder whose outputs are already cached."""

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def _loop_config(
    ctx: Context,
    epochs: float,
    batch_size: int | None = None,
    patience: int | None = None,
    freeze_batchnorm_stats: bool = False,
    batchnorm_items: int = 0,
    fill_epochs: float | None = None,
) -> LoopConfig:
    spec = ctx.spec
    return LoopConfig(
        epochs=epochs,
        batch_size=batch_size or spec.batch_size,
        patience=patience or spec.patience,
        metric=spec.metric,
        seed=ctx.seed,
        eval_batch_size=spec.extract_batch_size,
        freeze_batchnorm_stats=freeze_batchnorm_stats,
        batchnorm_items=batchnorm_items,
        fill_epochs=fill_epochs,
    )


def _length_order(ctx: Context, items: list) -> list[int] | None:
    key = getattr(ctx.backbone, "sort_key", None)
    return sorted(range(len(items)), key=lambda i: key(items[i])) if key else None


SCREEN_EPOCHS = 1  # epochs each candidate learning rate trains before the best one is kept
# training items on which the BatchNorm layers that train get their statistics recomputed before
# every validation pass (docs/RUNGS.md, "BatchNorm statistics"; no-op without such layers)
BATCHNORM_ITEMS = 256


@dataclass
class Candidate:
    """One learning-rate factor's model, ready for the loop."""

    model: Classifier
    groups: list[ParamGroup]
    on_epoch: Callable[[int], str]
    lr: float  # the rate the rung is known by (full: every layer's; finetune: the top block's)
    start_score: float | None = None


def _trial(factor: float, lr: float, curves: dict, chosen: bool) -> dict:
    keys = ("epoch", "phase", "train_loss", "train_metric", "val_loss", "val_metric")
    return {
        "lr": float(f"{lr:.12g}"),
        "factor": factor,
        "chosen": chosen,
        "epochs": len(curves["val_metric"]),
        "screen_epochs": SCREEN_EPOCHS,
        "screen_val_metric": curves["val_metric"][min(SCREEN_EPOCHS, len(curves["val_metric"])) - 1],
        "val_metric": max(curves["val_metric"]),
        "curves": {k: list(curves[k]) for k in keys},
    }


def lr_trials_note(trials: list[dict], metric: str) -> str:
    """The screen in one line, for the rung's notes."""
    rates = "; ".join(
        f"{format_rate(t['lr'])} {t['screen_val_metric']:.3f}" + (" (kept)" if t["chosen"] else "")
        for t in sorted(trials, key=lambda t: -t["lr"])
    )
    return (
        f"Learning rate chosen on validation: each candidate trained {SCREEN_EPOCHS} epoch(s), validation "
        f"{metric} {rates}; only the kept one trained on."
    )


def batchnorm_note(layers: int, items: int) -> str:
    return (
        f"BatchNorm statistics of the {layers} layers that trained were recomputed on {items} training "
        f"items before each validation pass (and kept in the model): their running averages lag behind "
        f"the weights they normalise."
    )


class TrainableRung(Rung):
    settings = (
        "epochs",
        "head_epochs",
        "batch_size",
        "lr",
        "top_lr_ratio",
        "bottom_lr_ratio",
        "lr_factors",
        "unfreeze_stages",
        "patience",
        "extract_batch_size",
        "learning_curve_trained",
        "trained_fraction",
        "ood_trained",
    )
    needs_backbone = True
    pretrained = True
    seeding = "train"
    # keep every BatchNorm's pretrained running statistics (finetune), or let the layers that
    # train update theirs (full, scratch: a random initialisation has no statistics worth keeping)
    freeze_batchnorm_stats = False
    lr_factors: list[float] | None = None  # None: spec.lr_factors (the learning curve's refits fix the chosen one)

    def build(self, ctx: Context) -> Classifier:
        torch.manual_seed(ctx.seed)
        encoder = ctx.backbone.trainable_copy(pretrained=self.pretrained)
        return Classifier(encoder, ctx.backbone.feature_dim, len(ctx.task.classes))

    def train(self, ctx: Context, model: Classifier) -> tuple[dict, list[str]]:
        """Train ``model`` (from ``build``) in place -> (curves, notes); what was chosen on
        validation goes in ``self.chosen_``."""
        raise NotImplementedError

    def run(self, ctx: Context) -> RungOutput:
        self.chosen_: dict = {}
        model = self.build(ctx)
        start = time.perf_counter()
        curves, notes = self.train(ctx, model)
        chosen = self.chosen_
        fit_seconds = time.perf_counter() - start
        fitted = self.fitted(ctx, model)
        val_pred = fitted.predict(ctx.val()[0])
        start = time.perf_counter()
        proba = fitted.predict_proba(ctx.test_items())
        predict_seconds = time.perf_counter() - start
        # what the last epoch trained (finetune may stop before every group is unfrozen)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in model.parameters())

        refit_predict = None
        if ctx.spec.learning_curve_trained and self.trained_learning_curve:

            def refit_predict(idx: np.ndarray) -> np.ndarray:
                """The same rung trained from the start on the training rows ``idx`` -> test predictions."""
                keep = np.sort(
                    np.concatenate([ctx.task.indices("train")[idx], ctx.task.indices("val"), ctx.task.indices("test")])
                )
                sub = ctx.task.select(keep)
                feats = ctx.features.view(sub) if ctx.features is not None else None
                rung = type(self)()
                if "lr_factor" in chosen:  # the rate chosen on the whole training set, not screened again
                    rung.lr_factors = [chosen["lr_factor"]]
                return rung.run(Context(sub, ctx.spec, ctx.seed, ctx.backbone, feats)).test_pred

        return RungOutput(
            val_pred,
            proba.argmax(1),
            fit_seconds,
            predict_seconds,
            trainable_params=trainable,
            total_params=total,
            curves=curves,
            notes=notes,
            chosen=chosen,
            test_proba=proba,
            model=fitted,
            refit_predict=refit_predict,
        )

    def fitted(self, ctx: Context, model: Classifier) -> Fitted:
        """The trained model as the fitted object that predicts the test split and is saved."""
        return ClassifierFitted(model, ctx.backbone, ctx.spec.extract_batch_size, self.strategy)

    @staticmethod
    def _make_batch(ctx: Context):
        return lambda items, train: ctx.backbone.preprocess(items, train=train)

    def _fit_backbone(
        self, ctx: Context, model: Classifier, groups: list[ParamGroup], on_epoch, start_score: float | None = None
    ) -> tuple[dict, list[str]]:
        """Train ``model`` at the rates of ``groups`` alone (no learning-rate screen); the rate
        recorded is the first group's, the backbone's (the head comes last)."""
        lr = groups[0].lr
        _, curves, notes, self.chosen_ = self._fit_screened(
            ctx, lambda factor: Candidate(model, groups, on_epoch, lr, start_score), [1.0]
        )
        return curves, notes

    def _fit_screened(
        self, ctx: Context, make: Callable[[float], Candidate], factors: list[float]
    ) -> tuple[Classifier, dict, list[str], dict]:
        """Train ``make(factor)`` for each factor for SCREEN_EPOCHS epochs, then only the best on
        validation (ties: lower validation loss, then the factor nearest 1) to the end."""
        val_items = ctx.val()[0]
        order = sorted(factors, key=lambda f: (abs(np.log(f)), -f))  # the recipe's own rate first
        best, trials, untried = None, [], []
        for factor in order:
            if best is not None and deadline.passed():
                untried.append(factor)
                continue
            c = make(factor)
            progress = ctx.progress and (
                lambda label, done, total, lr=c.lr: ctx.progress(f"lr {format_rate(lr)} {label}", done, total)
            )
            run = fit_epochs(
                c.model,
                self._make_batch(ctx),
                ctx.train(),
                ctx.val(),
                c.groups,
                _loop_config(
                    ctx,
                    ctx.spec.epochs,
                    freeze_batchnorm_stats=self.freeze_batchnorm_stats,
                    batchnorm_items=BATCHNORM_ITEMS,
                    fill_epochs=deadline.fill_epochs(),
                ),
                on_epoch=c.on_epoch,
                val_order=_length_order(ctx, val_items),
                progress=progress,
                start_score=c.start_score,
            )
            for _, result in zip(range(SCREEN_EPOCHS), run):
                pass
            key = (result.curves["val_metric"][-1], -result.curves["val_loss"][-1])
            # decided once, on the first process, so the processes of a launch keep the same rate
            if len(order) == 1 or best is None or from_main(float(key > best[0])):
                if best is not None:
                    trials.append(_trial(best[1], best[2].lr, best[4].curves, False))
                    best[3].close()
                best = (key, factor, c, run, result)
            else:
                trials.append(_trial(factor, c.lr, result.curves, False))
                run.close()
        _, factor, c, run, result = best
        for result in run:  # the kept rate trains on from where its screen ended
            pass
        trials.append(_trial(factor, c.lr, result.curves, True))
        notes = [
            f"Best validation {ctx.spec.metric} {result.best_val:.3f} at epoch {result.best_epoch}; "
            f"those weights were restored."
        ]
        if result.stopped_early:
            notes.append(f"Stopped early after {len(result.curves['epoch'])} epochs (patience {ctx.spec.patience}).")
        if result.replanned_steps != result.planned_steps:
            notes.append(
                f"Under the time limit its steps were re-planned from the speed they really ran at, to end at its "
                f"share of the limit: {result.replanned_steps} where the plan gave it {result.planned_steps} "
                f"({fmt_epochs(ctx.spec.epochs)}); it trained {result.steps}."
            )
        if result.stopped_at_limit:
            scored = "time limit" in result.curves["phase"][-1]  # a first epoch is scored part-trained
            notes.append(
                f"Stopped at the time limit during epoch {len(result.curves['epoch']) + (not scored)} of at most "
                f"{fmt_epochs(ctx.spec.epochs)}; "
                "the best epoch's weights were kept."
            )
        if untried:
            notes.append(
                "Not tried, the time limit had passed: learning rate(s) "
                + ", ".join(format_rate(c.lr / factor * f) for f in sorted(untried, reverse=True))
                + "."
            )
        chosen = {"lr": float(f"{c.lr:.12g}"), "lr_factor": factor}  # 1e-05, not 1.0000000000000003e-05
        if result.stopped_at_limit:
            chosen["stopped_at_limit"] = True
        if result.replanned_steps != result.planned_steps:
            chosen["steps"] = {
                "planned": result.planned_steps,
                "replanned": result.replanned_steps,
                "trained": result.steps,
            }
        if untried:
            chosen["lr_factors_untried"] = sorted(untried, reverse=True)
        if result.batchnorm_layers:
            chosen["batchnorm_stats_items"] = min(BATCHNORM_ITEMS, len(ctx.train()[0]))
            notes.append(batchnorm_note(result.batchnorm_layers, chosen["batchnorm_stats_items"]))
        if len(trials) > 1:
            chosen["lr_trials"] = sorted(trials, key=lambda t: -t["lr"])
            notes.append(lr_trials_note(trials, ctx.spec.metric))
        return c.model, result.curves, notes, chosen

    def _factors(self, ctx: Context) -> list[float]:
        return list(self.lr_factors or ctx.spec.lr_factors)

    def _uniform(
        self, ctx: Context, phase: str, first: Classifier, base_lr: float | None = None
    ) -> Callable[[float], Candidate]:
        """Every layer and the head at ``base_lr * factor`` (default: the finetune top-block rate);
        ``first`` (fresh from ``build``) serves the first candidate, later ones are built anew."""
        base = base_lr or ctx.spec.lr * ctx.spec.top_lr_ratio
        unused = [first]

        def make(factor: float) -> Candidate:
            model = unused.pop() if unused else self.build(ctx)
            groups = uniform_groups(
                ctx.backbone.layer_groups(model.encoder), list(model.head.parameters()), base * factor
            )
            set_trainable(groups, set(range(len(groups))))
            return Candidate(model, groups, lambda epoch: phase, base * factor)

        return make

    @staticmethod
    def _keep(model: Classifier, winner: Classifier) -> None:
        """The screen's winner into the model ``run`` predicts with (the same architecture)."""
        if winner is not model:
            model.load_state_dict(winner.state_dict())
            for p, q in zip(model.parameters(), winner.parameters()):
                p.requires_grad_(q.requires_grad)


@RUNGS.register("finetune")
class Finetune(TrainableRung):
    strategy = "finetune"
    trains_backbone = True
    in_default_ladder = True
    simplicity = 40
    trained_learning_curve = True
    needs_features = True
    # measured on MobileNetV2 (docs/RUNGS.md): updating the lower layers' statistics in the epoch they
    # open shifted every feature above them, and validation fell from 0.845 to 0.465 in that epoch
    freeze_batchnorm_stats = True
    description = (
        "Head warm-up on the frozen backbone, then gradual unfreezing from the top with "
        "layer-wise learning rates, warm-up and early stopping."
    )

    def warm_up_head(self, ctx: Context, model: Classifier) -> dict:
        """Train the head alone on cached features (the frozen backbone's outputs)."""
        feats = {s: torch.from_numpy(np.array(ctx.features(s), dtype=np.float32)) for s in ("train", "val")}
        probe = Classifier(_FeatureInput(), feats["train"].shape[1], len(ctx.task.classes))
        probe.head = model.head  # trains the real head in place
        rows = {s: list(range(len(feats[s]))) for s in feats}
        make_batch = {s: (lambda idx, train, f=feats[s]: {"features": f[list(idx)]}) for s in feats}

        def batch(idx, train):  # training rows index train features; eval rows index val features
            return make_batch["train" if train else "val"](idx, train)

        cfg = _loop_config(ctx, ctx.spec.head_epochs, batch_size=max(ctx.spec.batch_size, 32), patience=10)
        head = list(model.head.parameters())
        result = fit(
            probe,
            batch,
            (rows["train"], ctx.train()[1]),
            (rows["val"], ctx.val()[1]),
            layerwise_groups([], head, ctx.spec.lr, 1, 1),
            cfg,
        )
        return {
            "epochs": len(result.curves["epoch"]),
            "val_metric": result.best_val,
            "train_metric": result.curves["train_metric"][result.best_epoch - 1],
            "train_loss": result.curves["train_loss"][result.best_epoch - 1],
            "val_loss": result.curves["val_loss"][result.best_epoch - 1],
        }

    def train(self, ctx: Context, model: Classifier) -> tuple[dict, list[str]]:
        spec = ctx.spec
        warmed: Classifier | None = model
        head_stats = self.warm_up_head(ctx, model)
        head_state = {k: v.clone() for k, v in warmed.head.state_dict().items()}
        k = len(ctx.backbone.layer_groups(model.encoder))
        stages = min(spec.unfreeze_stages, k)

        def make(factor: float) -> Candidate:
            """The backbone's layer-wise rates times ``factor``; the warmed-up head keeps ``lr``."""
            nonlocal warmed
            m, warmed = warmed or self.build(ctx), None  # the warmed model serves the first candidate
            m.head.load_state_dict(head_state)
            groups = layerwise_groups(
                ctx.backbone.layer_groups(m.encoder),
                list(m.head.parameters()),
                spec.lr,
                spec.top_lr_ratio * factor,
                spec.bottom_lr_ratio * factor,
            )

            def on_epoch(epoch: int) -> str:
                open_ = unfrozen_groups(k, stages, epoch)
                set_trainable(groups, open_)
                return f"top {len(open_) - 1}/{k} groups" if len(open_) - 1 < k else "all groups"

            return Candidate(m, groups, on_epoch, groups[-2].lr if k else spec.lr, head_stats["val_metric"])

        winner, curves, notes, chosen = self._fit_screened(ctx, make, self._factors(ctx))
        self._keep(model, winner)
        self.chosen_ = chosen
        # epoch 0 = the end of head warm-up, so the curve starts from the frozen-backbone head
        for key, value in (
            ("epoch", 0),
            ("phase", "head warm-up"),
            ("train_loss", head_stats["train_loss"]),
            ("train_metric", head_stats["train_metric"]),
            ("val_loss", head_stats["val_loss"]),
            ("val_metric", head_stats["val_metric"]),
        ):
            curves[key].insert(0, value)
        if curves["best_epoch"] == 0:
            notes.append(
                "Unfreezing never beat the warmed-up head on validation: the warmed-up head "
                "on the original backbone was restored."
            )
        factor = chosen["lr_factor"]
        notes.insert(
            0,
            f"Head warm-up: {head_stats['epochs']} epochs on cached features. Backbone: {k} layer "
            f"groups unfrozen top-first in {stages} stages; learning rates "
            f"{spec.lr * spec.bottom_lr_ratio * factor:.1e} (stem) to {chosen['lr']:.1e} (top), "
            f"head {spec.lr:.1e}.",
        )
        return curves, notes


@RUNGS.register("full")
class Full(TrainableRung):
    strategy = "full"
    trains_backbone = True
    in_default_ladder = True
    simplicity = 50
    description = "A new head and every layer trained at once at one learning rate."

    def train(self, ctx: Context, model: Classifier) -> tuple[dict, list[str]]:
        winner, curves, notes, self.chosen_ = self._fit_screened(
            ctx, self._uniform(ctx, "all groups", model), self._factors(ctx)
        )
        self._keep(model, winner)
        return curves, [f"All layers and the new head at learning rate {self.chosen_['lr']:.1e}."] + notes


@RUNGS.register("scratch")
class Scratch(TrainableRung):
    strategy = "scratch"
    role = "control"
    in_default_ladder = True
    simplicity = 70
    pretrained = False
    description = "The same architecture randomly initialised, trained with the same loop."

    def train(self, ctx: Context, model: Classifier) -> tuple[dict, list[str]]:
        make = self._uniform(ctx, "all groups (random init)", model, base_lr=ctx.spec.lr)
        _, curves, notes, self.chosen_ = self._fit_screened(ctx, make, [1.0])  # one rate: the control's recipe
        return curves, [f"Random initialisation; all layers at learning rate {self.chosen_['lr']:.1e}."] + notes
