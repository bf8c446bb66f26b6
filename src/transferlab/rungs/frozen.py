"""Frozen backbone, cached features, a new logistic-regression head (C chosen on
held-out rows of the training split: 3 folds, or one half/half split above 300 examples).

The feature-extraction baseline every fine-tune must beat to be worth its cost.
"""

from __future__ import annotations

import time

import numpy as np

from .base import RUNGS, Context, Rung, RungOutput
from .fitted import BackboneFeatures
from .linear import LogregFitted, fit_logreg, neighbours


@RUNGS.register("frozen")
class Frozen(Rung):
    strategy = "frozen"
    settings = ("extract_batch_size",)
    cheap = True
    in_default_ladder = True
    simplicity = 30
    needs_backbone = True
    needs_features = True
    description = "Frozen pretrained features + logistic regression; regularisation chosen on held-out training rows."

    def run(self, ctx: Context) -> RungOutput:
        X_train, X_val, X_test = (np.asarray(ctx.features(s)) for s in ("train", "val", "test"))
        y_train, y_val = ctx.train()[1], ctx.val()[1]
        start = time.perf_counter()
        model, c, how = fit_logreg(X_train, y_train, X_val, y_val, metric=ctx.spec.metric, seed=ctx.seed)
        # the head only is saved: the encoder is the unchanged pretrained one, read from its source
        fitted = LogregFitted.from_pipeline(
            self.strategy, BackboneFeatures.for_run(ctx.backbone, ctx.spec), model, len(ctx.task.classes), C=c
        )
        fit = time.perf_counter() - start
        start = time.perf_counter()
        proba = fitted.proba_of(X_test)
        predict = time.perf_counter() - start
        head = int(np.prod(model[-1].coef_.shape) + model[-1].intercept_.size)

        def refit_predict(idx: np.ndarray) -> np.ndarray:
            m, _, _ = fit_logreg(
                X_train[idx], y_train[idx], X_val, y_val, metric=ctx.spec.metric, seed=ctx.seed, grid=neighbours(c)
            )
            return m.predict(X_test)

        return RungOutput(
            fitted.proba_of(X_val).argmax(1),
            proba.argmax(1),
            fit,
            predict,
            head,
            head + ctx.backbone.num_params(),
            test_proba=proba,
            model=fitted,
            refit_predict=refit_predict,
            chosen={"C": c, **how},
            notes=[
                "Fit time excludes feature extraction (cached; see the candidates table); "
                "prediction time includes embedding at the measured extraction speed."
            ],
        )
