"""Logistic regression with its regularisation chosen by cross-validation on the training split.

Shared by ``classical`` (on hand-made features) and ``frozen`` (on a backbone's cached
features). C is chosen among 13 values (10^-4 to 10^2, half a decade apart) by the log loss of
stratified cross-validation on train, then the model is refitted on all of train at that C. The
validation split takes no part in the fit or in the choice of C: it stays an independent
yardstick on which the ladder compares rungs.

Choosing C by accuracy on a validation split of 150-200 examples was noisy: several Cs tied, the
tie went to the strongest regularisation, and the rung lost to a default ``LogisticRegression()``
on the same features (bench/RESULTS.md). Log loss is smooth where accuracy is a step function,
so it rarely ties, and the folds score each C on every training example.

The search is kept cheap (bench/logreg_choice.py has the measurements):

* 3 stratified folds up to ``HOLDOUT_ABOVE`` training examples, one stratified 80/20 split of
  train above (a single split chose worse Cs on 200-400 examples; on 800 it chose nearly
  as well as 3 folds), the features standardised once for all of them;
* the Cs a decade apart, from small to large, each fit starting from the previous C's weights,
  until one scores a loss more than 1% above the best so far (the loss falls to one minimum
  and rises after it); then the half-decade Cs either side of the best;
* each fit stops when its gradient is a tenth of what it was at its start (and below 0.001),
  not at a fixed tolerance alone, which stalls a warm start (see ``_fit``);
* the refit on all of train starts from the first fold's weights at the chosen C.

A class with a single training example cannot be stratified into two folds: then C falls back to
being chosen on validation.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ..evaluation.metrics import score
from .fitted import FITTED, Features, Fitted, Saved, features_from_saved

C_GRID = tuple(float(f"{10**e:.3g}") for e in np.arange(-4, 2.01, 0.5))  # 0.0001, 0.000316, ..., 100
FOLDS = 3
HOLDOUT_ABOVE = 1_000  # training examples beyond which one 80/20 split replaces the folds
WORSE_BY = 0.01  # a C whose loss is more than 1% above the best so far is past the minimum...
PATIENCE = 1  # ...and this many such Cs in a row (a decade apart) end the walk
TOL, SHRINK = 1e-3, 0.1  # a fit stops when no gradient entry exceeds TOL nor SHRINK x the largest at its start


def neighbours(c: float) -> tuple[float, ...]:
    """The chosen C and one step either side: the grid for refits (learning curve), half the cost."""
    return (c / 10, c, c * 10)


def _logreg(c: float, seed: int) -> LogisticRegression:
    return LogisticRegression(C=c, max_iter=1000, tol=TOL, random_state=seed, warm_start=True)


def _fit(model: LogisticRegression, X, y, c: float) -> LogisticRegression:
    """``model`` fitted at C=c from its last weights (zero if none), until no entry of the
    gradient exceeds ``TOL`` nor ``SHRINK`` times the largest at the start. A fixed tolerance
    alone stalls a warm start: from the previous C's weights the gradient is already small (on
    TF-IDF features it starts below 0.001), lbfgs stops at once, and every larger C scores the
    loss of the last one that moved."""
    tol = min(TOL, SHRINK * _gradient_size(model, X, y, c))
    model.set_params(C=c, tol=max(tol, 1e-12))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


def _gradient_size(model: LogisticRegression, X, y, c: float) -> float:
    """Largest entry of the gradient of scikit-learn's lbfgs objective at C=c (mean log loss plus
    ||w||^2 / (2 C n), intercept unpenalised) at the model's current weights, or at zero."""
    classes = np.unique(y)
    onehot = y[:, None] == classes[None, :]  # (n, K)
    if hasattr(model, "coef_"):
        proba, coef = model.predict_proba(X), model.coef_
    else:
        proba = np.full(onehot.shape, 1 / len(classes))
        coef = np.zeros((1 if len(classes) == 2 else len(classes), X.shape[1]))
    residual = (proba - onehot) / len(y)
    if coef.shape[0] == 1:  # binary: one row of weights, for the second class
        residual = residual[:, 1:]
    grad = np.asarray(X.T @ residual).T + coef / (c * len(y))
    return float(max(np.abs(grad).max(), np.abs(residual.sum(0)).max()))


def _log_loss(model: LogisticRegression, X, y) -> float:
    """Mean log loss of ``model`` on (X, y), clipped as scikit-learn's ``log_loss`` clips."""
    proba = model.predict_proba(X)
    p = proba[np.arange(len(y)), np.searchsorted(model.classes_, y)]
    return float(-np.mean(np.log(np.clip(p, np.finfo(proba.dtype).eps, 1))))


def past_the_minimum(losses: list[float], worse_by: float | None = None, patience: int | None = None) -> bool:
    """Whether the last ``patience`` losses are all more than ``worse_by`` (relative) above the
    lowest so far: the walk along C has gone past the minimum, and larger Cs only fit slower."""
    worse_by, patience = WORSE_BY if worse_by is None else worse_by, PATIENCE if patience is None else patience
    best = min(losses)
    return len(losses) > patience and all(v > best * (1 + worse_by) for v in losses[-patience:])


def fit_logreg(
    X_train, y_train, X_val, y_val, *, metric: str, seed: int, scale: bool = True, grid=C_GRID, folds: int = FOLDS
) -> tuple[Pipeline, float, dict]:
    """The pipeline fitted on train at the best C, that C, and how C was chosen:
    ``{"by": "cv", "folds": k, "cv_log_loss_by_C": {...}, "C_grid": [...]}`` (mean over folds, for
    the Cs tried; ``"by": "holdout"`` and one fold above ``HOLDOUT_ABOVE`` examples), or
    ``{"by": "validation", "val_scores_by_C": {...}}`` (``metric`` on validation) when a class has
    a single training example."""
    grid = tuple(sorted(grid))
    y_train = np.asarray(y_train)
    scaler = StandardScaler().fit(X_train) if scale else None
    X = X_train if scaler is None else scaler.transform(X_train)  # float32 stays float32
    _, counts = np.unique(y_train, return_counts=True)
    k = int(min(folds, counts.min()))
    if len(grid) == 1:
        start, c, how = _logreg(grid[0], seed), float(grid[0]), {"by": "given"}
    elif k >= 2 and len(counts) >= 2:
        start, c, how = _choose_by_folds(X, y_train, grid, k, seed)
    else:
        X_val = X_val if scaler is None else scaler.transform(X_val)
        start, c, how = _choose_on_validation(X, y_train, X_val, y_val, grid, metric, seed)
    final = _fit(start, X, y_train, c)  # warm-started from the search's weights at that C
    final.set_params(warm_start=False, tol=TOL)
    steps = [("standardscaler", scaler)] if scale else []
    return Pipeline([*steps, ("logisticregression", final)]), c, how


def _choose_by_folds(X, y, grid, k: int, seed: int) -> tuple[LogisticRegression, float, dict]:
    """C by the mean held-out log loss over k stratified folds (one 80/20 split above
    ``HOLDOUT_ABOVE``); the first fold's model at that C.

    Every other C of the grid (a decade apart on ``C_GRID``) is walked from small to large,
    each fit starting from the last one's weights, until ``past_the_minimum``; then the skipped Cs
    either side of the best are fitted, starting from the best's weights."""
    rows = np.zeros(len(y))
    if len(y) > HOLDOUT_ABOVE:
        k, splits = 1, StratifiedShuffleSplit(1, test_size=0.2, random_state=seed).split(rows, y)
    else:
        splits = StratifiedKFold(k, shuffle=True, random_state=seed).split(rows, y)
    parts = [(X[a], y[a], X[b], y[b]) for a, b in splits]
    losses: dict[float, float] = {}
    models: dict[float, list[LogisticRegression]] = {}

    def score_at(c: float, probes: list[LogisticRegression]) -> None:
        for probe, (X_fit, y_fit, _, _) in zip(probes, parts):
            _fit(probe, X_fit, y_fit, c)
        losses[c] = float(np.mean([_log_loss(p, X_held, y_held) for p, (_, _, X_held, y_held) in zip(probes, parts)]))
        models[c] = [copy.deepcopy(p) for p in probes]

    coarse = grid[::2] if len(grid) > 3 else grid
    probes = [_logreg(grid[0], seed) for _ in parts]
    for c in coarse:
        score_at(c, probes)
        if past_the_minimum(list(losses.values())):
            break
    best = grid.index(min(losses, key=lambda g: losses[g]))
    for c in grid[max(best - 1, 0) : best + 2]:
        if c not in losses:  # the half-decade steps either side of the best, from its weights
            score_at(c, [copy.deepcopy(p) for p in models[grid[best]]])
    best = min(sorted(losses), key=lambda g: losses[g])  # ties keep the stronger regularisation (smaller C)
    how = {
        "by": "cv" if k > 1 else "holdout",
        "folds": k,
        "cv_log_loss_by_C": {f"{c:g}": round(losses[c], 5) for c in sorted(losses)},
        "C_grid": [float(c) for c in grid],
    }
    return models[best][0], float(best), how


def _choose_on_validation(X, y, X_val, y_val, grid, metric: str, seed: int) -> tuple[LogisticRegression, float, dict]:
    """C by ``metric`` on validation, when a class is too small for two stratified folds: one
    warm-started walk over the whole grid on all of train (a step-function score has plateaus,
    so no early stop); the model at that C."""
    model, scores, kept = _logreg(grid[0], seed), {}, {}
    for c in grid:
        _fit(model, X, y, c)
        scores[c] = score(metric, y_val, model.predict(X_val))
        kept[c] = copy.deepcopy(model)
    best = max(grid, key=lambda g: scores[g])  # ties keep the smaller C, seen first
    return kept[best], float(best), {"by": "validation", "val_scores_by_C": {f"{c:g}": v for c, v in scores.items()}}


def logreg_tensors(model: Pipeline) -> dict[str, np.ndarray]:
    """The fitted pipeline as plain arrays (``transferlab export``): scaler mean/scale if any, and
    coef (K, D) / intercept (K,) / classes (K,) over the K classes seen in training. A binary
    model's single row w becomes rows (0, w): softmax over (0, z) is sklearn's sigmoid of z."""
    lr = model[-1]
    coef, intercept = lr.coef_, lr.intercept_
    if coef.shape[0] == 1 and len(lr.classes_) == 2:
        coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], intercept])
    out = {
        "logreg.coef": coef,
        "logreg.intercept": intercept,
        "logreg.classes": np.asarray(lr.classes_, dtype=np.int64),
    }
    if len(model) > 1:
        out["scaler.mean"], out["scaler.scale"] = model[0].mean_, model[0].scale_
    return out


def logreg_proba(arrays: dict, X, n_classes: int) -> np.ndarray:
    """(N, n_classes) probabilities of a logistic regression stored as arrays (``logreg_tensors``):
    standardised like ``StandardScaler.transform`` (in place, in the features' own dtype), then a
    softmax over the K classes seen in training, placed at their columns (the others get 0)."""
    arrays = {k: (v.numpy() if hasattr(v, "numpy") else np.asarray(v)) for k, v in arrays.items()}
    if "scaler.mean" in arrays:
        X = np.array(X, copy=True)
        X -= arrays["scaler.mean"]
        X /= arrays["scaler.scale"]
    logits = np.asarray(X @ arrays["logreg.coef"].T + arrays["logreg.intercept"], dtype=np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    proba = np.exp(logits)
    proba /= proba.sum(axis=1, keepdims=True)
    out = np.zeros((proba.shape[0], n_classes))
    out[:, arrays["logreg.classes"].astype(np.int64)] = proba
    return out


@FITTED.register("logreg")
class LogregFitted(Fitted):
    """A logistic regression over ``features`` (TF-IDF, image features, a frozen backbone's):
    ``proba_of(X)`` on features already computed (the run's cached ones), ``predict_proba(items)``
    on raw items. The same arrays and maths serve the run and a loaded model."""

    kind = "logreg"

    def __init__(self, strategy: str, features: Features, arrays: dict, n_classes: int, head: dict | None = None):
        self.strategy, self.features, self.n_classes = strategy, features, n_classes
        self.arrays = {k: np.asarray(v) for k, v in arrays.items()}
        self.head = dict(head or {})
        self.backbone, self.reason = features.backbone, features.reason
        self.batch_size = getattr(features, "batch_size", 32)

    @classmethod
    def from_pipeline(
        cls, strategy: str, features: Features, model: Pipeline, n_classes: int, **head
    ) -> "LogregFitted":
        return cls(strategy, features, logreg_tensors(model), n_classes, head)

    def proba_of(self, X) -> np.ndarray:
        return logreg_proba(self.arrays, X, self.n_classes)

    def predict_proba(self, items: list) -> np.ndarray:
        if not len(items):
            return np.zeros((0, self.n_classes))
        return self.proba_of(self.features(list(items)))

    def parts(self) -> tuple[dict, dict, dict]:
        tensors, files = self.features.parts()
        return {**self.arrays, **tensors}, {"features": self.features.name, **self.head}, files

    @classmethod
    def from_saved(cls, saved: Saved) -> "LogregFitted":
        arrays = {k: v.numpy() for k, v in saved.tensors.items() if k.startswith(("logreg.", "scaler."))}
        head = {k: v for k, v in saved.head.items() if k not in ("kind", "features", "n_classes")}
        return cls(saved.info.get("strategy", ""), features_from_saved(saved), arrays, saved.n_classes, head)
