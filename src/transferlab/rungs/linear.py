"""Logistic regression with its regularisation chosen by cross-validation on the training split.

Shared by ``classical`` (on hand-made features) and ``frozen`` (on a backbone's cached
features). C is chosen among 13 values (10^-4 to 10^2, half a decade apart) by the log loss
of stratified 5-fold cross-validation on train (scikit-learn's ``LogisticRegressionCV``, which
follows the regularisation path with warm starts), then the model is refitted on all of train at
that C. The validation split takes no part in the fit or in the choice of C: it stays an
independent yardstick on which the ladder compares rungs.

Choosing C by accuracy on a validation split of 150-200 examples was noisy: several Cs tied, the
tie went to the strongest regularisation, and the rung lost to a default ``LogisticRegression()``
on the same features (bench/RESULTS.md). Log loss is smooth where accuracy is a step function,
so it rarely ties, and five folds over train score each C on every training example. Above
``HOLDOUT_ABOVE`` training examples one stratified 80/20 split of train scores the Cs instead (a
fifth of the cost; at that size one split is already a precise estimate). A class with a single
training example cannot be stratified into two folds: then C falls back to being chosen on
validation.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from ..evaluation.metrics import score
from .fitted import FITTED, Features, Fitted, Saved, features_from_saved

C_GRID = tuple(float(f"{10 ** e:.3g}") for e in np.arange(-4, 2.01, 0.5))  # 0.0001, 0.000316, ..., 100
FOLDS = 5
HOLDOUT_ABOVE = 20_000  # training examples beyond which one 80/20 split replaces 5 folds


def neighbours(c: float) -> tuple[float, ...]:
    """The chosen C and one step either side: the grid for refits (learning curve), half the cost."""
    return (c / 10, c, c * 10)


def _model(c: float, seed: int, scale: bool) -> Pipeline:
    steps = [StandardScaler()] if scale else []
    return make_pipeline(*steps, LogisticRegression(C=c, max_iter=1000, tol=1e-3, random_state=seed))


def _quiet_fit(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


def fit_logreg(X_train, y_train, X_val, y_val, *, metric: str, seed: int, scale: bool = True,
               grid=C_GRID, folds: int = FOLDS) -> tuple[Pipeline, float, dict]:
    """The pipeline fitted on train at the best C, that C, and how C was chosen:
    ``{"by": "cv", "folds": k, "cv_log_loss_by_C": {...}}`` (mean over folds; ``"by": "holdout"``
    and one fold above ``HOLDOUT_ABOVE`` examples), or
    ``{"by": "validation", "val_scores_by_C": {...}}`` (``metric`` on validation) when a class has
    a single training example."""
    grid = tuple(sorted(grid))
    _, counts = np.unique(y_train, return_counts=True)
    k = int(min(folds, counts.min()))
    if len(grid) == 1:
        return _quiet_fit(_model(grid[0], seed, scale), X_train, y_train), float(grid[0]), {"by": "given"}
    if k >= 2 and len(counts) >= 2:
        if len(y_train) > HOLDOUT_ABOVE:
            return _fit_holdout(X_train, y_train, grid, seed, scale)
        cv = LogisticRegressionCV(
            Cs=list(grid), l1_ratios=(0.0,), cv=StratifiedKFold(k, shuffle=True, random_state=seed),
            scoring="neg_log_loss", max_iter=1000, tol=1e-3, random_state=seed, use_legacy_attributes=False)
        fitted = _quiet_fit(make_pipeline(*([StandardScaler()] if scale else []), cv), X_train, y_train)
        loss = -np.asarray(fitted[-1].scores_).reshape(k, len(grid)).mean(0)
        best = int(np.argmin(loss))  # ties keep the stronger regularisation (smaller C, first)
        return fitted, float(grid[best]), {"by": "cv", "folds": k,
                                           "cv_log_loss_by_C": {f"{c:g}": round(float(v), 5) for c, v in zip(grid, loss)}}
    scores: dict[str, float] = {}
    best_model, best_c, best_score = None, None, -np.inf
    for c in grid:
        model = _quiet_fit(_model(c, seed, scale), X_train, y_train)
        s = score(metric, y_val, model.predict(X_val))
        scores[f"{c:g}"] = s
        if s > best_score:  # ties keep the stronger regularisation (smaller C, seen first)
            best_model, best_c, best_score = model, c, s
    return best_model, float(best_c), {"by": "validation", "val_scores_by_C": scores}


def _fit_holdout(X_train, y_train, grid, seed: int, scale: bool) -> tuple[Pipeline, float, dict]:
    """C by log loss on one stratified 80/20 split of train, then refitted on all of train.

    Written out with a warm-started ``LogisticRegression`` rather than ``LogisticRegressionCV``,
    which converts the features to float64 and copies them per fold: at this size the features
    stay float32, one standardised copy plus the split's, about half the peak memory."""
    from sklearn.metrics import log_loss

    fit_rows, held = next(StratifiedShuffleSplit(1, test_size=0.2, random_state=seed).split(
        np.zeros(len(y_train)), y_train))
    scaler = StandardScaler().fit(X_train) if scale else None
    X = scaler.transform(X_train) if scale else X_train  # float32 stays float32
    probe = LogisticRegression(C=grid[0], max_iter=1000, tol=1e-3, random_state=seed, warm_start=True)
    losses = []
    X_fit, X_held = X[fit_rows], X[held]
    for c in grid:  # small to large C, each fit starting from the last one's weights
        _quiet_fit(probe.set_params(C=c), X_fit, y_train[fit_rows])
        losses.append(log_loss(y_train[held], probe.predict_proba(X_held), labels=probe.classes_))
    del X_fit, X_held
    best = int(np.argmin(losses))  # ties keep the stronger regularisation (smaller C, first)
    final = _quiet_fit(LogisticRegression(C=grid[best], max_iter=1000, tol=1e-3, random_state=seed), X, y_train)
    model = Pipeline([("standardscaler", scaler), ("logisticregression", final)] if scale
                     else [("logisticregression", final)])
    return model, float(grid[best]), {"by": "holdout", "folds": 1,
                                      "cv_log_loss_by_C": {f"{c:g}": round(float(v), 5) for c, v in zip(grid, losses)}}


def logreg_tensors(model: Pipeline) -> dict[str, np.ndarray]:
    """The fitted pipeline as plain arrays (``transferlab export``): scaler mean/scale if any, and
    coef (K, D) / intercept (K,) / classes (K,) over the K classes seen in training. A binary
    model's single row w becomes rows (0, w): softmax over (0, z) is sklearn's sigmoid of z."""
    lr = model[-1]
    coef, intercept = lr.coef_, lr.intercept_
    if coef.shape[0] == 1 and len(lr.classes_) == 2:
        coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], intercept])
    out = {"logreg.coef": coef, "logreg.intercept": intercept, "logreg.classes": np.asarray(lr.classes_, dtype=np.int64)}
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
    def from_pipeline(cls, strategy: str, features: Features, model: Pipeline, n_classes: int, **head) -> "LogregFitted":
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
