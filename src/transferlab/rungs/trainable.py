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
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from ..training import LoopConfig, fit, layerwise_groups, predict_logits, set_trainable, uniform_groups, unfrozen_groups
from .base import RUNGS, Context, Rung, RungOutput


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


class _FeatureInput(nn.Module):
    """Stands in for a frozen encoder whose outputs are already cached."""

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def _loop_config(ctx: Context, epochs: int, batch_size: int | None = None, patience: int | None = None) -> LoopConfig:
    spec = ctx.spec
    return LoopConfig(epochs=epochs, batch_size=batch_size or spec.batch_size, patience=patience or spec.patience,
                      metric=spec.metric, seed=ctx.seed, eval_batch_size=spec.extract_batch_size)


def _length_order(ctx: Context, items: list) -> list[int] | None:
    key = getattr(ctx.backbone, "sort_key", None)
    return sorted(range(len(items)), key=lambda i: key(items[i])) if key else None


class _TrainableRung(Rung):
    needs_backbone = True
    pretrained = True
    seeding = "train"

    def build(self, ctx: Context) -> Classifier:
        torch.manual_seed(ctx.seed)
        encoder = ctx.backbone.trainable_copy(pretrained=self.pretrained)
        return Classifier(encoder, ctx.backbone.feature_dim, len(ctx.task.classes))

    def train(self, ctx: Context, model: Classifier) -> tuple[dict, list[str]]:
        raise NotImplementedError

    def run(self, ctx: Context) -> RungOutput:
        model = self.build(ctx)
        start = time.perf_counter()
        curves, notes = self.train(ctx, model)
        fit_seconds = time.perf_counter() - start
        make_batch = self._make_batch(ctx)
        val_items = ctx.val()[0]
        val_pred = predict_logits(model, make_batch, val_items, ctx.spec.extract_batch_size,
                                  _length_order(ctx, val_items)).argmax(1)
        test_items = ctx.test_items()
        start = time.perf_counter()
        logits = predict_logits(model, make_batch, test_items, ctx.spec.extract_batch_size,
                                _length_order(ctx, test_items))
        predict_seconds = time.perf_counter() - start
        proba = torch.softmax(torch.from_numpy(logits).double(), dim=1).numpy()
        # what the last epoch trained (finetune may stop before every group is unfrozen)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in model.parameters())
        def predict_proba(items: list) -> np.ndarray:
            out = predict_logits(model, make_batch, items, ctx.spec.extract_batch_size, _length_order(ctx, items))
            return torch.softmax(torch.from_numpy(out).double(), dim=1).numpy()

        def save(folder):  # encoder + head, the whole Classifier; no optimizer state
            from ..export import write_saved

            return write_saved(folder, strategy=self.strategy, tensors=model.state_dict(), backbone=ctx.backbone,
                               head={"kind": "classifier", "layers": "LayerNorm, Dropout, Linear (head.0, head.2)"},
                               batch_size=ctx.spec.extract_batch_size, includes_encoder=True)

        refit_predict = None
        if ctx.spec.learning_curve_trained and self.trained_learning_curve:
            def refit_predict(idx: np.ndarray) -> np.ndarray:
                """The same rung trained from the start on the training rows ``idx`` -> test predictions."""
                keep = np.sort(np.concatenate([ctx.task.indices("train")[idx], ctx.task.indices("val"),
                                               ctx.task.indices("test")]))
                sub = ctx.task.select(keep)
                feats = ctx.features.view(sub) if hasattr(ctx.features, "view") else None
                return type(self)().run(Context(sub, ctx.spec, ctx.seed, ctx.backbone, feats)).test_pred

        return RungOutput(val_pred, logits.argmax(1), fit_seconds, predict_seconds, trainable_params=trainable,
                          total_params=total, curves=curves, notes=notes, test_proba=proba,
                          predict_proba=predict_proba, save=save, refit_predict=refit_predict)

    @staticmethod
    def _make_batch(ctx: Context):
        return lambda items, train: ctx.backbone.preprocess(items, train=train)

    def _fit_backbone(self, ctx: Context, model: Classifier, groups, on_epoch,
                      start_score: float | None = None) -> tuple[dict, list[str]]:
        train_items, y_train = ctx.train()
        val_items, y_val = ctx.val()
        result = fit(model, self._make_batch(ctx), (train_items, y_train), (val_items, y_val), groups,
                     _loop_config(ctx, ctx.spec.epochs), on_epoch=on_epoch,
                     val_order=_length_order(ctx, val_items), progress=ctx.progress, start_score=start_score)
        notes = [f"Best validation {ctx.spec.metric} {result.best_val:.3f} at epoch {result.best_epoch}; "
                 f"those weights were restored."]
        if result.stopped_early:
            notes.append(f"Stopped early after {len(result.curves['epoch'])} epochs (patience {ctx.spec.patience}).")
        return result.curves, notes


@RUNGS.register("finetune")
class Finetune(_TrainableRung):
    strategy = "finetune"
    trains_backbone = True
    in_default_ladder = True
    simplicity = 40
    trained_learning_curve = True
    needs_features = True
    description = ("Head warm-up on the frozen backbone, then gradual unfreezing from the top with "
                   "layer-wise learning rates, warm-up and early stopping.")

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
        result = fit(probe, batch, (rows["train"], ctx.train()[1]), (rows["val"], ctx.val()[1]),
                     layerwise_groups([], head, ctx.spec.lr, 1, 1), cfg)
        return {"epochs": len(result.curves["epoch"]), "val_metric": result.best_val,
                "train_metric": result.curves["train_metric"][result.best_epoch - 1],
                "train_loss": result.curves["train_loss"][result.best_epoch - 1],
                "val_loss": result.curves["val_loss"][result.best_epoch - 1]}

    def train(self, ctx: Context, model: Classifier) -> tuple[dict, list[str]]:
        spec = ctx.spec
        head_stats = self.warm_up_head(ctx, model)
        layer_groups = ctx.backbone.layer_groups(model.encoder)
        groups = layerwise_groups(layer_groups, list(model.head.parameters()), spec.lr,
                                  spec.top_lr_ratio, spec.bottom_lr_ratio)
        k, stages = len(layer_groups), min(spec.unfreeze_stages, len(layer_groups))

        def on_epoch(epoch: int) -> str:
            open_ = unfrozen_groups(k, stages, epoch)
            set_trainable(groups, open_)
            return f"top {len(open_) - 1}/{k} groups" if len(open_) - 1 < k else "all groups"

        curves, notes = self._fit_backbone(ctx, model, groups, on_epoch, start_score=head_stats["val_metric"])
        # epoch 0 = the end of head warm-up, so the curve starts from the frozen-backbone head
        for key, value in (("epoch", 0), ("phase", "head warm-up"), ("train_loss", head_stats["train_loss"]),
                           ("train_metric", head_stats["train_metric"]), ("val_loss", head_stats["val_loss"]),
                           ("val_metric", head_stats["val_metric"])):
            curves[key].insert(0, value)
        if curves["best_epoch"] == 0:
            notes.append("Unfreezing never beat the warmed-up head on validation: the warmed-up head "
                         "on the original backbone was restored.")
        lrs = [g.lr for g in groups]
        notes.insert(0, f"Head warm-up: {head_stats['epochs']} epochs on cached features. Backbone: {k} layer "
                        f"groups unfrozen top-first in {stages} stages; learning rates {min(lrs[:-1]):.1e} (stem) "
                        f"to {max(lrs[:-1]):.1e} (top), head {lrs[-1]:.1e}.")
        return curves, notes


@RUNGS.register("full")
class Full(_TrainableRung):
    strategy = "full"
    trains_backbone = True
    in_default_ladder = True
    simplicity = 50
    description = "A new head and every layer trained at once at one learning rate."

    def train(self, ctx: Context, model: Classifier) -> tuple[dict, list[str]]:
        lr = ctx.spec.lr * ctx.spec.top_lr_ratio
        groups = uniform_groups(ctx.backbone.layer_groups(model.encoder), list(model.head.parameters()), lr)
        set_trainable(groups, set(range(len(groups))))
        curves, notes = self._fit_backbone(ctx, model, groups, lambda epoch: "all groups")
        return curves, [f"All layers and the new head at learning rate {lr:.1e}."] + notes


@RUNGS.register("scratch")
class Scratch(_TrainableRung):
    strategy = "scratch"
    role = "control"
    in_default_ladder = True
    simplicity = 70
    pretrained = False
    description = "The same architecture randomly initialised, trained with the same loop."

    def train(self, ctx: Context, model: Classifier) -> tuple[dict, list[str]]:
        lr = ctx.spec.lr
        groups = uniform_groups(ctx.backbone.layer_groups(model.encoder), list(model.head.parameters()), lr)
        set_trainable(groups, set(range(len(groups))))
        curves, notes = self._fit_backbone(ctx, model, groups, lambda epoch: "all groups (random init)")
        return curves, [f"Random initialisation; all layers at learning rate {lr:.1e}."] + notes
