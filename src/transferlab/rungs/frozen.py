"""Frozen backbone, cached features, a new logistic-regression head (C chosen by
cross-validation on train).

The feature-extraction baseline every fine-tune must beat to be worth its cost.
"""

from __future__ import annotations

import time

import numpy as np

from .base import RUNGS, Context, Rung, RungOutput, full_proba
from .linear import fit_logreg, logreg_tensors, neighbours


def embed(ctx: Context, items: list) -> np.ndarray:
    """Features of new items (cached by content like the splits' features)."""
    from ..data.splits import content_hash
    from ..features import extract

    hashes = [content_hash(x, ctx.task.modality) for x in items]
    return np.asarray(extract(ctx.backbone, items, hashes, cache_dir=ctx.spec.cache_dir,
                              batch_size=ctx.spec.extract_batch_size).features)


@RUNGS.register("frozen")
class Frozen(Rung):
    strategy = "frozen"
    settings = ("extract_batch_size",)
    cheap = True
    in_default_ladder = True
    simplicity = 30
    needs_backbone = True
    needs_features = True
    description = ("Frozen pretrained features + logistic regression; regularisation chosen by 5-fold "
                   "cross-validation on train.")

    def run(self, ctx: Context) -> RungOutput:
        X_train, X_val, X_test = (np.asarray(ctx.features(s)) for s in ("train", "val", "test"))
        y_train, y_val = ctx.train()[1], ctx.val()[1]
        start = time.perf_counter()
        model, c, how = fit_logreg(X_train, y_train, X_val, y_val, metric=ctx.spec.metric, seed=ctx.seed)
        fit = time.perf_counter() - start
        start = time.perf_counter()
        proba = full_proba(model.predict_proba(X_test), model.classes_, len(ctx.task.classes))
        test_pred = proba.argmax(1)
        predict = time.perf_counter() - start
        head = int(np.prod(model[-1].coef_.shape) + model[-1].intercept_.size)
        k = len(ctx.task.classes)

        def predict_proba(items: list) -> np.ndarray:
            return full_proba(model.predict_proba(embed(ctx, items)), model.classes_, k)

        def refit_predict(idx: np.ndarray) -> np.ndarray:
            m, _, _ = fit_logreg(X_train[idx], y_train[idx], X_val, y_val, metric=ctx.spec.metric, seed=ctx.seed,
                                 grid=neighbours(c))
            return m.predict(X_test)

        def save(folder):  # the head only: export adds the (unchanged) pretrained encoder's weights
            from ..export import write_saved

            return write_saved(folder, strategy=self.strategy, tensors=logreg_tensors(model), backbone=ctx.backbone,
                               head={"kind": "logreg", "features": "backbone", "C": c},
                               batch_size=ctx.spec.extract_batch_size)

        return RungOutput(model.predict(X_val), test_pred, fit, predict, head, head + ctx.backbone.num_params(),
                          test_proba=proba, predict_proba=predict_proba, refit_predict=refit_predict, chosen={"C": c, **how},
                          save=save,
                          notes=["Fit time excludes feature extraction (cached; see the candidates table); "
                                 "prediction time includes embedding at the measured extraction speed."])
