"""Metrics on a held-out split: accuracy, balanced accuracy, macro-F1, per class, confusion.

Each headline metric carries a 95% percentile bootstrap interval over the evaluated examples
(resampled with a fixed seed), so a reader sees how much a number could move on another draw
of a test set of the same size.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import sparse
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

HEADLINE: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": accuracy_score,
    "balanced_accuracy": balanced_accuracy_score,
    "macro_f1": lambda y, p: f1_score(y, p, average="macro", zero_division=0),
}


def score(metric: str, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(HEADLINE[metric](y_true, y_pred))


def _metrics_from_confusion(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Headline metrics from a stack of confusion matrices (B, K, K), rows = true class.

    Classes absent from both truth and predictions of a resample are left out of the macro
    averages, as scikit-learn does.
    """
    tp = np.diagonal(cm, axis1=1, axis2=2)
    support = cm.sum(axis=2)
    predicted = cm.sum(axis=1)
    n = cm.sum(axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(support > 0, tp / support, np.nan)
        f1 = np.where(support + predicted > 0, 2 * tp / (support + predicted), np.nan)
    return {
        "accuracy": tp.sum(axis=1) / n,
        "balanced_accuracy": np.nanmean(recall, axis=1),
        "macro_f1": np.nanmean(f1, axis=1),
    }


def resampled_confusions(y_true: np.ndarray, y_pred: np.ndarray, counts: np.ndarray, n_classes: int) -> np.ndarray:
    """(B, K, K) confusion matrices of the resamples given by multinomial ``counts`` (B, N).

    Each example falls in one (true, predicted) cell; a resample's confusion matrix is its counts
    summed per cell, so all resamples are one sparse product.
    """
    n = len(y_true)
    cell = sparse.csr_matrix(
        (np.ones(n), (y_true * n_classes + y_pred, np.arange(n))), shape=(n_classes * n_classes, n)
    )  # (K*K, N) one-hot
    return np.asarray((cell @ counts.T).T).reshape(-1, n_classes, n_classes)


def as_seeds(y_pred: np.ndarray) -> np.ndarray:
    """Predictions as (S, N): one row per seed (a single run is one row)."""
    y_pred = np.asarray(y_pred)
    return y_pred[None, :] if y_pred.ndim == 1 else y_pred


def resampled_metric(
    y_true: np.ndarray, y_pred: np.ndarray, counts: np.ndarray, n_classes: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Every headline metric on each resample of the examples (B,), averaged over seeds.

    With several seeds (``y_pred`` of shape (S, N)) each resample also redraws the S seeds with
    replacement (a two-level bootstrap), so the interval covers both a different test set and a
    different seed's luck.
    """
    per_seed = [_metrics_from_confusion(resampled_confusions(y_true, p, counts, n_classes)) for p in y_pred]
    if len(per_seed) == 1:
        return per_seed[0]
    pick = rng.integers(0, len(per_seed), size=(len(counts), len(per_seed)))  # (B, S) seeds per resample
    out = {}
    for m in HEADLINE:
        values = np.stack([ps[m] for ps in per_seed])  # (S, B)
        out[m] = np.nanmean(np.take_along_axis(values, pick.T, axis=0), axis=0)
    return out


def bootstrap_ci(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    n_classes: int,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, list[float]]:
    """Percentile intervals of every headline metric over resamples of the examples.

    A resample is a vector of multinomial counts per example (see ``resampled_confusions``).
    ``y_pred`` is (N,) or (S, N) for S seeds: then the metric is the mean over seeds and the
    seeds are resampled too (see ``resampled_metric``).
    """
    rng = np.random.default_rng(seed)
    y_pred = as_seeds(y_pred)
    n = len(y_true)
    stats = {m: [] for m in HEADLINE}
    for lo in range(0, n_resamples, 200):
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=min(200, n_resamples - lo))  # (b, n)
        for m, values in resampled_metric(y_true, y_pred, counts, n_classes, rng).items():
            stats[m].append(values)
    alpha = (1 - level) / 2
    return {
        m: [float(np.quantile(np.concatenate(v), alpha)), float(np.quantile(np.concatenate(v), 1 - alpha))]
        for m, v in stats.items()
    }


def evaluate(
    y_true: np.ndarray, y_pred: np.ndarray, classes: list[str], *, with_details: bool = True, n_resamples: int = 1000
) -> dict:
    """The schema's metrics block for one split.

    ``y_pred`` is (N,) or (S, N) for S seeds. With several seeds each headline metric's ``mean``
    is the mean over seeds, ``ci`` covers test resampling and seed variation, and ``seeds`` /
    ``sd`` give the value of every seed and their standard deviation; per-class figures and the
    confusion matrix are those of the first seed (the model that is saved and exported).
    """
    y_true = np.asarray(y_true)
    preds = as_seeds(y_pred)
    cis = bootstrap_ci(y_true, preds, n_classes=len(classes), n_resamples=n_resamples)
    out: dict = {}
    for name in HEADLINE:
        values = [score(name, y_true, p) for p in preds]
        out[name] = {"mean": float(np.mean(values)), "ci": cis[name]}
        if len(values) > 1:
            out[name]["seeds"] = values
            out[name]["sd"] = float(np.std(values, ddof=1))
    out["n"] = int(len(y_true))
    if with_details:
        y_pred = preds[0]
        labels = list(range(len(classes)))
        p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
        out["per_class"] = {
            c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, c in enumerate(classes)
        }
        out["confusion_matrix"] = confusion_matrix(y_true, y_pred, labels=labels).tolist()
    return out
