"""Logistic regression with its regularisation chosen on the training split.

Shared by ``classical`` (on hand-made features) and ``frozen`` (on a backbone's cached
features). C is chosen among 13 values (10^-4 to 10^2, half a decade apart) by the log loss of
models fitted on part of train and scored on the rest of train, then the model is refitted on
all of train at that C. The validation split takes no part in the fit or in the choice of C: it
stays an independent yardstick on which the ladder compares rungs.

Choosing C by accuracy on a validation split of 150-200 examples was noisy: several Cs tied, the
tie went to the strongest regularisation, and the rung lost to a default ``LogisticRegression()``
on the same features (bench/RESULTS.md). Log loss is smooth where accuracy is a step function,
so it rarely ties.

The choice costs about one to two default fits (``LogisticRegression()`` at C=1 on the same
features; bench/logreg_choice.py has the measurements, and the accuracy against a 5-fold search
over all 13 Cs):

* above ``FOLDS_UP_TO`` (300) training examples, one stratified split: the Cs are fitted on half
  of train and scored on the other half. Fitting on half makes each probe fit half as costly as
  the refit, and scoring on half scores as many examples as 3 folds did with a third of the
  fits. Up to 300 examples, where a fit costs little and one split chose noticeably worse Cs
  (on 200 MiniLM features, 0.044 of test accuracy lost against the best C in hindsight, 0.013
  with folds), 3 stratified folds;
* the Cs a decade apart are walked from the middle of the grid (0.1): down while the loss
  falls, up if it did not, each fit starting from the previous C's weights; up, until one scores
  a loss more than 1% above the best so far (the loss falls to one minimum and rises after it).
  Down, the walk also ends at the first C whose loss does not fall: below it the loss flattens
  towards the class prior's, and on the TF-IDF of 400 reviews the 1% rule alone walked that
  plateau to 0.0001 (0.645, 0.647, 0.647, 0.647) for two fits that could not win.
  Starting from the smallest C spent four fits on the flat, strongly regularised end, and those
  are not cheap from zero on dense features; then the half-decade Cs either side of the best
  (on MiniLM features the test accuracy changed by 0.07 within one decade);
* the probes are ``logreg_probe.Probe``: scikit-learn's objective with a lean L-BFGS, in
  float32, without a ``LogisticRegression.fit`` call per C (its setup and L-BFGS-B's
  bookkeeping cost as much as the arithmetic on a few hundred examples). Each fit stops when
  its gradient is a tenth of what it was at its start (and below 0.001), not at a fixed
  tolerance alone, which stalls a warm start (see ``_fit``). The half-decade fits stop at the
  gradient the best C's fit reached, and start from the scored C below them when there is one:
  moving up to a weaker regularisation took 3-7 iterations, moving down from the best 20;
* the refit on all of train starts from the probes' weights at the chosen C and stops at that
  same gradient, by a ``Probe``; scikit-learn's ``LogisticRegression`` finishes it only if the
  probe stopped short of that gradient.

A class with a single training example cannot be stratified into two parts: then C falls back to
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
from .logreg_probe import Probe

C_GRID = tuple(float(f"{10**e:.3g}") for e in np.arange(-4, 2.01, 0.5))  # 0.0001, 0.000316, ..., 100
FOLDS = 3
FOLDS_UP_TO = 300  # training examples up to which k folds score each C (above: one split)
FIT_SHARE = 0.5  # the share of train the probes fit on that split; the rest is held out
WORSE_BY = 0.01  # a C whose loss is more than 1% above the best so far is past the minimum...
PATIENCE = 1  # ...and this many such Cs in a row (a decade apart) end the walk
HALF_SHRINK = 0.5  # a half-decade fit at least halves its (small) starting gradient
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


def past_the_minimum(losses: list[float], worse_by: float | None = None, patience: int | None = None) -> bool:
    """Whether the last ``patience`` losses are all more than ``worse_by`` (relative) above the
    lowest so far: the walk along C (in either direction) has gone past the minimum."""
    worse_by, patience = WORSE_BY if worse_by is None else worse_by, PATIENCE if patience is None else patience
    best = min(losses)
    return len(losses) > patience and all(v > best * (1 + worse_by) for v in losses[-patience:])


def fit_logreg(
    X_train, y_train, X_val, y_val, *, metric: str, seed: int, scale: bool = True, grid=C_GRID, folds: int = FOLDS
) -> tuple[Pipeline, float, dict]:
    """The pipeline fitted on train at the best C, that C, and how C was chosen:
    ``{"by": "cv", "folds": k, "cv_log_loss_by_C": {...}, "C_grid": [...], "probe_iterations": i}``
    (mean over folds, for the Cs tried; ``"by": "holdout"``, one fold and ``"fit_share"`` above
    ``FOLDS_UP_TO`` examples), or
    ``{"by": "validation", "val_scores_by_C": {...}}`` (``metric`` on validation) when a class has
    a single training example."""
    grid = tuple(sorted(grid))
    y_train = np.asarray(y_train)
    scaler = StandardScaler().fit(X_train) if scale else None
    X = X_train if scaler is None else scaler.transform(X_train)  # float32 stays float32
    _, counts = np.unique(y_train, return_counts=True)
    k = int(min(folds, counts.min()))
    if len(grid) == 1:
        final, c, how = _fit(_logreg(grid[0], seed), X, y_train, grid[0]), float(grid[0]), {"by": "given"}
    elif k >= 2 and len(counts) >= 2:
        w, tol, c, how = _choose_by_folds(X, y_train, grid, k, seed)
        final = _refit(X, y_train, c, w, tol, seed)
    else:
        X_val = X_val if scaler is None else scaler.transform(X_val)
        start, c, how = _choose_on_validation(X, y_train, X_val, y_val, grid, metric, seed)
        final = _fit(start, X, y_train, c)
    final.set_params(warm_start=False, tol=TOL)
    steps = [("standardscaler", scaler)] if scale else []
    return Pipeline([*steps, ("logisticregression", final)]), c, how


def _refit(X, y, c: float, w: np.ndarray, tol: float, seed: int) -> LogisticRegression:
    """The model on all of train at C=c, starting from the probes' weights ``w`` (rows, d + 1),
    until no gradient entry exceeds ``tol``, the tolerance the probes' fits at C=c stopped at,
    fitted by a ``Probe`` (the cheaper solver). Where the probe stopped short of ``tol`` (its value
    stopped falling at its precision), scikit-learn's ``LogisticRegression`` takes over from there
    and takes the steps left; otherwise the probe's weights are the model (a scikit-learn fit only
    to confirm them cost 5 ms of 25 on the TF-IDF of 400 reviews)."""
    classes = np.unique(y)
    probe = Probe(X, y, classes)
    probe.w = w.ravel().copy()
    coef, intercept = probe.fit(c, tol, shrink=np.inf).coef()
    model = _logreg(c, seed).set_params(tol=tol)
    model.coef_, model.intercept_ = coef.astype(probe.dtype), intercept.astype(probe.dtype)  # float32 stays float32
    if probe.reached <= tol:
        model.classes_, model.n_features_in_ = classes, X.shape[1]
        model.n_iter_ = np.array([probe.iterations], dtype=np.int32)
        return model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


def _choose_by_folds(X, y, grid, k: int, seed: int) -> tuple[np.ndarray, float, float, dict]:
    """C by the held-out log loss on one stratified split (``FIT_SHARE`` of train fitted, the
    rest held out), or its mean over k stratified folds up to ``FOLDS_UP_TO`` examples; the
    probes' mean weights at that C, (rows, d + 1).

    The Cs a decade apart (every other C of the grid) are walked from the middle one: down while
    the loss falls, up if it did not, each fit starting from the last one's weights, until
    ``past_the_minimum`` or the grid's end; then the half-decade Cs beside the best."""
    rows = np.zeros(len(y))
    if len(y) > FOLDS_UP_TO:
        k, splits = 1, StratifiedShuffleSplit(1, train_size=FIT_SHARE, random_state=seed).split(rows, y)
    else:
        splits = StratifiedKFold(k, shuffle=True, random_state=seed).split(rows, y)
    X = X.astype(np.float32, copy=False)  # the probes only rank Cs: float32 halves the memory traffic
    parts = [(Probe(X[a], y[a], np.unique(y)), X[b], y[b]) for a, b in splits]
    losses: dict[float, float] = {}
    weights: dict[float, list[np.ndarray]] = {}
    reached: dict[float, list[float]] = {}  # the gradient tolerance each probe's fit stopped at

    def score_at(c: float, start: float | None, tol=None, shrink: float = SHRINK) -> None:
        for i, (probe, _, _) in enumerate(parts):
            probe.w = np.zeros_like(probe.w) if start is None else weights[start][i].copy()
            probe.fit(c, TOL if tol is None else tol[i], shrink)
        losses[c] = float(np.mean([probe.log_loss(X_held, y_held) for probe, X_held, y_held in parts]))
        weights[c], reached[c] = [probe.w.copy() for probe, _, _ in parts], [probe.gtol for probe, _, _ in parts]

    coarse = grid[::2] if len(grid) > 3 else grid
    middle = (len(coarse) - 1) // 2
    score_at(coarse[middle], None)

    def onwards(step: int) -> bool:
        seen = [losses[g] for g in sorted(losses)][::step]  # in the order walked
        if step < 0 and len(seen) > 1 and seen[-1] >= min(seen[:-1]):
            return False  # down: the loss stopped falling (below it lies the plateau of the class prior)
        return not past_the_minimum(seen)

    for step in (-1, 1):  # down first, while the loss falls; up only if the middle C stayed the best
        i = middle
        while 0 <= i + step < len(coarse) and onwards(step):
            score_at(coarse[i + step], coarse[i])
            i += step
        if min(losses, key=losses.get) != coarse[middle]:
            break
    best = min(sorted(losses), key=lambda g: losses[g])
    j = grid.index(best)
    for c in grid[max(j - 1, 0) : j + 2]:
        if c not in losses:  # the half-decades beside the best, from the C below them if scored
            below = grid[j - 2] if c < best and j >= 2 and grid[j - 2] in losses else best
            score_at(c, below, reached[best], HALF_SHRINK)
    best = min(sorted(losses), key=lambda g: losses[g])  # ties keep the stronger regularisation (smaller C)
    how = {
        "by": "cv" if k > 1 else "holdout",
        "folds": k,
        "cv_log_loss_by_C": {f"{c:g}": round(losses[c], 5) for c in sorted(losses)},
        "C_grid": [float(c) for c in grid],
        "probe_iterations": int(sum(probe.iterations for probe, _, _ in parts)),
    }
    if k == 1:
        how["fit_share"] = FIT_SHARE
    w = np.mean(weights[best], axis=0).reshape(parts[0][0].rows, -1)
    return w, min(TOL, float(np.mean(reached[best]))), float(best), how


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
