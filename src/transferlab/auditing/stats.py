"""Comparing two label distributions: how far apart (total variation) and how surely (chi-square)."""

from __future__ import annotations

import numpy as np

ALPHA = 0.01  # significance level of the chi-square test
MIN_DISTANCE = 0.1  # total variation distance below which a shift is too small to matter


def label_counts(y: np.ndarray, n_classes: int) -> np.ndarray:
    return np.bincount(np.asarray(y, dtype=np.int64), minlength=n_classes)


def compare(counts_a: np.ndarray, counts_b: np.ndarray) -> tuple[float, float]:
    """Total variation distance between the two label mixes, and the chi-square test's p-value.

    The distance says whether the difference is large enough to matter; the test says whether it
    could be chance at these sample sizes. Either alone misleads: with 100,000 examples a 1-point
    difference is significant, and with 20 a 20-point difference is not.
    """
    from scipy.stats import chi2_contingency

    a, b = np.asarray(counts_a, float), np.asarray(counts_b, float)
    if a.sum() == 0 or b.sum() == 0:
        return 0.0, 1.0
    tvd = 0.5 * float(np.abs(a / a.sum() - b / b.sum()).sum())
    used = (a + b) > 0
    if used.sum() < 2:
        return tvd, 1.0
    return tvd, float(chi2_contingency(np.stack([a[used], b[used]]))[1])


def is_shift(tvd: float, p_value: float) -> bool:
    return p_value < ALPHA and tvd > MIN_DISTANCE


def largest_changes(classes: list[str], counts_a: np.ndarray, counts_b: np.ndarray, k: int = 3) -> list[dict]:
    """The k classes whose share moved most, as JSON-safe dicts (shares rounded to 3 places)."""
    pa, pb = counts_a / max(counts_a.sum(), 1), counts_b / max(counts_b.sum(), 1)
    top = np.argsort(-np.abs(pa - pb), kind="stable")[:k]
    return [{"label": classes[i], "before": round(float(pa[i]), 3), "after": round(float(pb[i]), 3)} for i in top]
