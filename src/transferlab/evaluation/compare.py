"""Is one rung really better than another? Paired tests on the same test examples.

Both rungs were scored on the same examples, so the comparison resamples *examples* and looks
at the difference on each resample (a paired bootstrap), which is far more sensitive than
comparing two separate intervals. McNemar's exact test on the examples where exactly one of
the two is right is given beside it for accuracy.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binomtest

from .metrics import as_seeds, resampled_metric, score

ALPHA = 0.05


def paired_bootstrap(
    y: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    metric: str,
    *,
    n_classes: int,
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict:
    """metric(a) - metric(b): the observed difference, its 95% interval and a two-sided p-value.

    Predictions are (N,) or (S, N) for S seeds; a rung's metric is then its mean over seeds, and
    each resample redraws the seeds as well as the (shared) test examples.
    """
    y = np.asarray(y)
    pred_a, pred_b = as_seeds(pred_a), as_seeds(pred_b)
    n = len(y)
    rng = np.random.default_rng(seed)
    deltas = []
    for lo in range(0, n_resamples, 250):
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=min(250, n_resamples - lo))  # (b, n)
        a = resampled_metric(y, pred_a, counts, n_classes, rng)[metric]
        b = resampled_metric(y, pred_b, counts, n_classes, rng)[metric]
        deltas.append(a - b)
    d = np.concatenate(deltas)
    observed = float(np.mean([score(metric, y, p) for p in pred_a]) - np.mean([score(metric, y, p) for p in pred_b]))
    p = float(min(1.0, 2 * min((d <= 0).mean(), (d >= 0).mean()))) if observed != 0 else 1.0
    out = {
        "metric": metric,
        "delta": observed,
        "ci": [float(np.quantile(d, 0.025)), float(np.quantile(d, 0.975))],
        "p_value": p,
        "significant": p < ALPHA,
        "seeds": [len(pred_a), len(pred_b)],
    }
    if metric == "accuracy":
        out["mcnemar_p"] = mcnemar(y, pred_a[0], pred_b[0])  # the first seed of each
    return out


def mcnemar(y: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray) -> float:
    """Exact McNemar p-value: among examples where exactly one is right, is the split 50/50?"""
    a_only = int(((pred_a == y) & (pred_b != y)).sum())
    b_only = int(((pred_a != y) & (pred_b == y)).sum())
    if a_only + b_only == 0:
        return 1.0
    return float(binomtest(a_only, a_only + b_only, 0.5).pvalue)


def expected_calibration_error(y: np.ndarray, proba: np.ndarray, n_bins: int = 15) -> float:
    """Mean |accuracy - confidence| over equal-width confidence bins, weighted by bin size."""
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in np.unique(bins):
        mask = bins == b
        ece += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)
