"""The interface every rung implements, and what the runner hands it.

A rung fits on the training split, chooses anything it chooses (regularisation, epochs) on the
validation split, and returns predictions for validation and test. It never sees test labels:
``Context`` gives it the test *items* only, and the runner scores the predictions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..backbones.base import Backbone
from ..config import RunSpec
from ..data.splits import Task
from ..registry import Registry


@dataclass
class Context:
    task: Task
    spec: RunSpec
    seed: int
    backbone: Backbone | None = None
    features: Callable[[str], np.ndarray] | None = None  # split -> (N, D) cached features
    progress: Callable[[str, int, int], None] | None = None  # (label, done, total)

    def train(self) -> tuple[list, np.ndarray]:
        return self.task.part("train")

    def val(self) -> tuple[list, np.ndarray]:
        return self.task.part("val")

    def test_items(self) -> list:
        return self.task.part("test")[0]


@dataclass
class RungOutput:
    val_pred: np.ndarray
    test_pred: np.ndarray
    fit_seconds: float
    predict_seconds: float  # for the test split
    trainable_params: int = 0
    total_params: int = 0
    curves: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    chosen: dict = field(default_factory=dict)  # settings chosen on validation
    test_proba: np.ndarray | None = None  # (N_test, C) predicted class probabilities, for calibration
    extract_seconds: float = 0.0  # time spent embedding the data with the frozen backbone (cached features)
    # new items -> (N, C) class probabilities with the fitted model (out-of-distribution sets)
    predict_proba: Callable[[list], np.ndarray] | None = None
    # refit on the training rows ``idx`` (choices still made on validation) -> test predictions;
    # cheap rungs provide it for the learning curve
    refit_predict: Callable[[np.ndarray], np.ndarray] | None = None
    # write the fitted model into an (empty, existing) directory -> metadata for results.json;
    # ``transferlab export`` turns it into a standalone artifact
    save: Callable[[Path], dict] | None = None
    cost: dict = field(default_factory=dict)  # extra cost columns of this rung (e.g. lora's adapter_bytes)


def full_proba(proba: np.ndarray, seen: np.ndarray, n_classes: int) -> np.ndarray:
    """Probabilities over all classes from a model that knows the classes ``seen`` (its classes_)."""
    out = np.zeros((len(proba), n_classes), dtype=np.float64)
    out[:, seen] = proba
    return out


class Rung:
    strategy: str = ""
    needs_backbone: bool = False
    needs_features: bool = False
    description: str = ""
    # how extra seeds vary the rung: "cheap" (spec.seeds runs, each on another random
    # train/validation draw), "train" (spec.train_seeds runs: another draw and another
    # initialisation and batch order), "none" (deterministic and cheap to reason about: one run)
    seeding: str = "cheap"

    def applies_to(self, backbone: Backbone, spec: RunSpec) -> str | None:
        """Why this rung cannot run with ``backbone`` (the runner notes it and moves on), or None."""
        return None

    def check_data(self, task: Task, spec: RunSpec) -> None:
        """Raise ``DataError`` if this rung cannot use the data at all; the runner asks before the run
        directory is created, so the user fixes the input instead of resuming a run that will fail."""
        return None

    def run(self, ctx: Context) -> RungOutput:
        raise NotImplementedError


RUNGS: Registry[type[Rung]] = Registry("rung")
