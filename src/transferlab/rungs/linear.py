"""Logistic regression with its regularisation chosen on the validation split.

Shared by ``classical`` (on hand-made features) and ``frozen`` (on a backbone's cached
features). Each C is fitted on train only and scored on validation; the best is kept.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from ..evaluation.metrics import score

C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)


def neighbours(c: float) -> tuple[float, ...]:
    """The chosen C and one step either side: the grid for refits (learning curve), a third of the cost."""
    return (c / 10, c, c * 10)


def fit_logreg(X_train, y_train, X_val, y_val, *, metric: str, seed: int, scale: bool = True,
               grid=C_GRID) -> tuple[Pipeline, float, dict[str, float]]:
    """The pipeline refitted at the best C, that C, and the validation score of every C."""
    scores: dict[str, float] = {}
    best, best_c, best_score = None, None, -np.inf
    for c in grid:
        steps = [StandardScaler()] if scale else []
        model = make_pipeline(*steps, LogisticRegression(C=c, max_iter=1000, tol=1e-3, random_state=seed))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X_train, y_train)
        s = score(metric, y_val, model.predict(X_val))
        scores[f"{c:g}"] = s
        if s > best_score:  # ties keep the stronger regularisation (smaller C, seen first)
            best, best_c, best_score = model, c, s
    return best, float(best_c), scores


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
