"""Always predict the most frequent training class: exposes metrics inflated by imbalance."""

from __future__ import annotations

import time

import numpy as np
from sklearn.dummy import DummyClassifier

from .base import RUNGS, Context, Rung, RungOutput, full_proba
from .fitted import FITTED, Fitted, Saved


@FITTED.register("prior")
class PriorFitted(Fitted):
    """The training class shares, the same row for every item."""

    kind = "prior"

    def __init__(self, prior: np.ndarray, label: str | None = None, strategy: str = "majority"):
        self.prior, self.label, self.strategy, self.n_classes = (
            np.asarray(prior, dtype=np.float64),
            label,
            strategy,
            len(prior),
        )

    def predict_proba(self, items: list) -> np.ndarray:
        return np.tile(self.prior, (len(items), 1))

    def parts(self) -> tuple[dict, dict, dict]:
        return {"prior": self.prior}, {"class": self.label}, {}

    @classmethod
    def from_saved(cls, saved: Saved) -> "PriorFitted":
        return cls(saved.tensors["prior"].double().numpy(), saved.head.get("class"))


@RUNGS.register("majority")
class Majority(Rung):
    strategy = "majority"
    settings = ("extract_batch_size",)  # the saved model records it
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
        majority = ctx.task.classes[int(model.classes_[model.class_prior_.argmax()])]
        fitted = PriorFitted(full_proba(model.class_prior_[None], model.classes_, len(ctx.task.classes))[0], majority)
        fit = time.perf_counter() - start
        start = time.perf_counter()
        proba = fitted.predict_proba(ctx.test_items())
        predict = time.perf_counter() - start
        return RungOutput(
            fitted.predict(ctx.val()[0]),
            proba.argmax(1),
            fit,
            predict,
            test_proba=proba,
            chosen={"class": majority},
            model=fitted,
        )
