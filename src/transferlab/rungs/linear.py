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
