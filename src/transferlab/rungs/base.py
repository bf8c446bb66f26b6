"""The interface every rung implements, and what the runner hands it.

A rung fits on the training split, chooses anything it chooses (regularisation, epochs) on the
validation split, and returns predictions for validation and test with the fitted model that
made them (``RungOutput.model``, a :class:`~transferlab.rungs.fitted.Fitted`: it predicts new
items, saves and loads itself). It never sees test labels:
``Context.task`` is a copy of the task whose test labels are hidden (-1), so ``ctx.test_items()``
gives the test *items* only, and the runner, which keeps the labels, scores the predictions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..backbones.base import Backbone
from ..config import RunSpec
from ..data.splits import Task
from ..features.store import FeatureStore
from ..registry import Registry
from .fitted import Fitted

ROLES = ("baseline", "control", "transfer")
SEEDINGS = ("cheap", "train", "none")


@dataclass
class Context:
    task: Task  # test labels hidden (-1): see __post_init__
    spec: RunSpec
    seed: int
    backbone: Backbone | None = None
    features: FeatureStore | None = None  # the backbone's cached features: split -> (N, D)
    progress: Callable[[str, int, int], None] | None = None  # (label, done, total)

    def __post_init__(self) -> None:
        self.task = self.task.without_test_labels()

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
    # the fitted model that made test_proba: predicts new items (out-of-distribution sets), saves
    # itself under the run's models/ (``transferlab export`` turns that into a standalone artifact)
    model: Fitted | None = None
    # refit on the training rows ``idx`` (choices still made on validation) -> test predictions;
    # cheap rungs provide it for the learning curve
    refit_predict: Callable[[np.ndarray], np.ndarray] | None = None
    cost: dict = field(default_factory=dict)  # extra cost columns of this rung (e.g. lora's adapter_bytes)

    @property
    def predict_proba(self) -> Callable[[list], np.ndarray] | None:
        """New items -> (N, C) class probabilities with the fitted model (None without one)."""
        return None if self.model is None else self.model.predict_proba

    @property
    def save(self) -> Callable[[Path], dict] | None:
        """Write the fitted model into an (empty, existing) folder -> metadata for results.json."""
        return None if self.model is None else self.model.save


def full_proba(proba: np.ndarray, seen: np.ndarray, n_classes: int) -> np.ndarray:
    """Probabilities over all classes from a model that knows the classes ``seen`` (its classes_)."""
    out = np.zeros((len(proba), n_classes), dtype=np.float64)
    out[:, seen] = proba
    return out


class Rung:
    """One rung of the ladder. A rung declares what it is in class attributes; every list of rungs
    elsewhere (validation of ``rungs=``, the default ladder, the verdicts' controls and transfer
    rungs, ``--top-k``, seeds, the recommendation's tie-break, help texts) is derived from them
    through :func:`transferlab.rungs.strategies`, so a registered rung takes part with no other edit.

    ``strategy``
        Its name, the key it is registered under (``--rungs`` names it).
    ``description``
        One sentence for the report.
    ``role``
        ``"baseline"`` (a floor no rung is recommended for: ``majority``), ``"control"`` (no
        pretrained weights: what transfer must beat; ``classical``, ``scratch``) or ``"transfer"``
        (uses a pretrained backbone's weights: ``frozen``, ``finetune``, ``zero_shot``...).
    ``needs_backbone``
        Runs once per candidate backbone and gets it as ``ctx.backbone``; without it, runs once.
    ``needs_features``
        Reads the backbone's cached frozen features through ``ctx.features(split)``, and so pays
        the embedding time to predict a new item.
    ``trains_backbone``
        Changes the pretrained backbone's weights (``finetune``, ``full``, ``lora``): it is compared
        with the ``frozen`` rung of the same backbone (catastrophic forgetting, cost).
    ``learns_from_labels``
        Fits anything on the training labels. False for a rung that only reads label names
        (``zero_shot``), which the verdicts compare with the best rung that does.
    ``cheap``
        With ``needs_backbone``: cheap enough to run for every candidate, even beyond ``--top-k``.
    ``in_default_ladder``
        Run when ``rungs`` is not given.
    ``simplicity``
        Rank among the rungs from simplest to most involved; the recommendation breaks ties of
        cost with it, and lists of rungs are shown in this order.
    ``seeding``
        How extra seeds vary the rung: ``"cheap"`` (``spec.seeds`` runs, each on another random
        train/validation draw), ``"train"`` (``spec.train_seeds`` runs: another draw and another
        initialisation and batch order), ``"none"`` (deterministic given its data: one run).
    ``trained_learning_curve``
        With ``learning_curve_trained``: trained again on fractions of the training set for the
        learning curve (each point costs a training run).
    ``settings``
        The RunSpec fields of scope ``rung`` it reads (``epochs``, ``lr``...): they go into the key
        under which its finished result is cached and reused (``transferlab.stages.cache``), so
        changing another rung's setting does not refit it. None (the default) stands for every
        such field: safe, and refit more often than needed.

    ``run`` returns the fitted model in ``RungOutput.model``; it is saved with the run and can be
    exported when its class is registered in ``rungs.fitted.FITTED`` (``Fitted.load`` rebuilds it).
    """

    strategy: str = ""
    description: str = ""
    role: str = "transfer"
    needs_backbone: bool = False
    needs_features: bool = False
    trains_backbone: bool = False
    learns_from_labels: bool = True
    cheap: bool = False
    in_default_ladder: bool = False
    simplicity: int = 100
    seeding: str = "cheap"
    trained_learning_curve: bool = False
    settings: tuple[str, ...] | None = None

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
