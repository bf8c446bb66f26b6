"""Held-out metrics with bootstrap confidence intervals (scikit-learn does the counting)."""

from .metrics import bootstrap_ci, evaluate, score

__all__ = ["evaluate", "score", "bootstrap_ci"]
