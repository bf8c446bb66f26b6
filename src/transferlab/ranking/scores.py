"""Every applicable transferability score for one backbone's features, in one call.

The closed-form scores rank backbones in seconds without fine-tuning any of them; the kNN and
linear-probe accuracies are the cheap trained baselines they should be checked against. All
are computed on the same stratified subsample so their cost stays bounded on large data sets:
its size (``MAX_ITEMS``) is what a 95% interval of the predicted accuracy needs to be within
±3 points, beyond which more examples buy little certainty and cost time linearly or worse.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from .confidence import items_for_interval
from .hscore import hscore, shrunk_hscore
from .knn import knn_correct, linear_probe_correct
from .leep_nce import check_probs, leep, nce
from .logme import check_features_labels, logme

SCORES: dict[str, str] = {
    "logme": "LogME: log evidence per example of a Bayesian linear model predicting each one-hot "
    "class from the features, i.e. how well a linear head fits the labels without large "
    "weights; higher is better.",
    "hscore": "H-score: share of the feature variance that lies between class means, in whitened "
    "directions (0 to C-1); higher is better, but it saturates when there are fewer "
    "examples than feature dimensions.",
    "hscore_shrinkage": "H-score of the standardised features with a Ledoit-Wolf shrunk covariance, which stays "
    "reliable with few examples per dimension; higher is better.",
    "knn_accuracy": "Cross-validated accuracy of a 5-nearest-neighbour vote under cosine "
    "distance, i.e. whether same-class examples sit together; higher is better.",
    "linear_probe_accuracy": "Cross-validated accuracy of a logistic regression (best of 4 C values) on the "
    "standardised features; higher is better.",
    "leep": "LEEP: mean log-likelihood of the true labels under the source model's predictions "
    "mapped to target classes by their co-occurrence; higher (closer to 0) is better.",
    "nce": "Negative conditional entropy of the target label given the source model's top-1 "
    "prediction; higher (closer to 0) is better.",
}


# The score runs order the candidates by (and --top-k trains the best of): the one whose top pick
# was most often the best frozen candidate in bench/ranking.py, kNN accuracy (7 of 10 tasks, LogME
# 4 of 10; bench/RESULTS.md). The report, which reads results.json alone, leads with the same score.
LEAD_SCORE = "knn_accuracy"


def stratified_subsample(labels: np.ndarray, max_items: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most ``max_items`` rows with the class proportions kept.

    Within each class (in a seeded random order) the j-th of n_c examples gets the key
    (j + 1/2) / n_c; taking the smallest keys overall takes the same fraction of every class.
    The first two of each class always come first, so no class disappears and cross-validation
    can still split every class.
    """
    y = np.asarray(labels)  # (N,) codes 0..C-1
    counts = np.bincount(y)  # (C,)
    n_classes = np.count_nonzero(counts)
    if max_items < 2 * n_classes:
        raise DataError(
            f"max_items={max_items} is too small to keep 2 examples of each of the "
            f"{n_classes} classes; use at least {2 * n_classes}"
        )
    if len(y) <= max_items:
        return np.arange(len(y))
    perm = np.random.default_rng(seed).permutation(len(y))
    yp = y[perm]
    order = np.argsort(yp, kind="stable")  # (N,) grouped by class, random within class
    rank = np.empty(len(y), dtype=np.int64)
    rank[order] = np.arange(len(y)) - np.repeat(np.cumsum(counts) - counts, counts)
    key = np.where(rank < 2, -1.0, (rank + 0.5) / counts[yp])
    return np.sort(perm[np.argsort(key, kind="stable")[:max_items]])


MAX_ITEMS = items_for_interval(0.03)  # 1068


class Scores(dict):
    """Score name -> value, plus ``unavailable``: score name -> why it was not computed, and
    ``correct``: for the kNN and linear-probe accuracies, the (n,) out-of-fold correctness
    on the ``n`` subsampled examples (for intervals and the probability of being best)."""

    def __init__(
        self, values: dict[str, float], unavailable: dict[str, str], correct: dict[str, np.ndarray] | None = None
    ):
        super().__init__(values)
        self.unavailable = unavailable
        self.correct = correct or {}


NO_SOURCE = "no source-model probabilities were given"


def score_features(
    features, labels, *, source_probs=None, no_source_reason: str = NO_SOURCE, seed: int = 0, max_items: int = MAX_ITEMS
) -> Scores:
    """All scores of ``SCORES`` that apply, on a stratified subsample of <= ``max_items`` rows.

    features (N, D) and labels (N,) as for ``logme``; source_probs (N, Z) is the source model's
    softmax over its own classes, needed for LEEP and NCE (without it they are listed in
    ``unavailable`` with ``no_source_reason``). The shrinkage H-score is unavailable when the
    Ledoit-Wolf shrinkage is 1, where it is 0 for any labels. Deterministic for a given
    ``seed``, which picks the subsample and the cross-validation folds.
    """
    from threadpoolctl import threadpool_limits

    # One BLAS thread: on a few hundred to a thousand rows, threads cost more than they give
    # (an SVD of 300 x 1,280 took 0.17 s on one thread and 1.5-5 s on two on a busy 2-core machine)
    with threadpool_limits(limits=1, user_api="blas"):
        return _score_features(features, labels, source_probs, no_source_reason, seed, max_items)


def _score_features(features, labels, source_probs, no_source_reason: str, seed: int, max_items: int) -> Scores:
    f, y = check_features_labels(features, labels)
    probs = None if source_probs is None else check_probs(source_probs)
    if probs is not None and len(probs) != len(f):
        raise DataError(f"source_probs has {len(probs)} rows but features has {len(f)} rows")
    keep = stratified_subsample(y, max_items, seed)
    f, y = f[keep], y[keep]
    out = {"logme": logme(f, y), "hscore": hscore(f, y)}
    unavailable = {}
    h_lw, shrinkage = shrunk_hscore(f, y)
    if shrinkage < 1 - 1e-9:
        out["hscore_shrinkage"] = h_lw
    else:
        unavailable["hscore_shrinkage"] = (
            f"Ledoit-Wolf shrinkage is 1 on these {len(f)} x {f.shape[1]} features (their covariance "
            "cannot be told from a multiple of the identity at this sample size), where the score is 0 "
            "for any labels"
        )
    correct = {
        "knn_accuracy": knn_correct(f, y, seed=seed),
        "linear_probe_accuracy": linear_probe_correct(f, y, seed=seed),
    }
    out.update({name: float(np.mean(c)) for name, c in correct.items()})
    if probs is not None:
        probs = probs[keep]
        out["leep"] = leep(probs, y)
        out["nce"] = nce(probs.argmax(axis=1), y)
    else:
        unavailable.update(leep=no_source_reason, nce=no_source_reason)
    return Scores(out, unavailable, correct)
