"""Always predict the most frequent training class: exposes metrics inflated by imbalance."""

from __future__ import annotations

import time

import numpy as np
from sklearn.dummy import DummyClassifier

from .base import RUNGS, Context, Rung, RungOutput, full_proba


@RUNGS.register("majority")
class Majority(Rung):
    strategy = "majority"
    settings = ()
    role = "baseline"
    in_default_ladder = True
    simplicity = 0
    description = "Predicts the most frequent training class for everything."
    seeding = "none"

    def run(self, ctx: Context) -> RungOutput:
        items, y = ctx.train()
        start = time.perf_counter()
        # "prior": predicts the most frequent class, with the training class shares as probabilities
        model = DummyClassifier(strategy="prior").fit([[0]] * len(y), y)
        fit = time.perf_counter() - start
        start = time.perf_counter()
        test_pred = model.predict([[0]] * len(ctx.test_items()))
        predict = time.perf_counter() - start
        val_pred = model.predict([[0]] * len(ctx.val()[1]))
        proba = full_proba(model.predict_proba([[0]] * len(test_pred)), model.classes_, len(ctx.task.classes))
        prior = full_proba(model.class_prior_[None], model.classes_, len(ctx.task.classes))[0]
        majority = ctx.task.classes[int(model.classes_[model.class_prior_.argmax()])]

        def save(folder):
            from ..export import write_saved

            return write_saved(folder, strategy=self.strategy, tensors={"prior": prior},
                               head={"kind": "prior", "class": majority})

        return RungOutput(val_pred, test_pred, fit, predict, test_proba=proba,
                          predict_proba=lambda items: np.tile(prior, (len(items), 1)),
                          chosen={"class": majority}, save=save)
