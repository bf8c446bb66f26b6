"""Held-out metrics with bootstrap confidence intervals, paired comparisons and calibration."""

from .compare import expected_calibration_error, mcnemar, paired_bootstrap
from .metrics import bootstrap_ci, evaluate, score

__all__ = ["evaluate", "score", "bootstrap_ci", "paired_bootstrap", "mcnemar", "expected_calibration_error"]
