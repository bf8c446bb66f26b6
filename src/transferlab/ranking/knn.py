"""Cheap probes trained on the frozen features: k-nearest neighbours and a linear classifier.

Both are cross-validated (stratified, shuffled with a fixed seed) and report the accuracy of
the pooled out-of-fold predictions, so every example is predicted exactly once by a model that
did not see it. Unlike the closed-form scores they are on the scale a user reads: accuracy.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler, normalize

from .logme import check_features_labels


def n_folds(labels: np.ndarray, folds: int) -> int:
    """``folds``, reduced to the size of the smallest class (a stratified fold needs one of each
    class), but never below 2."""
    return max(2, min(folds, int(np.bincount(labels).min())))


def _splits(y: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    cv = StratifiedKFold(n_splits=n_folds(y, folds), shuffle=True, random_state=seed)
    return list(cv.split(np.zeros(len(y)), y))


def _cv_correct(model, f: np.ndarray, y: np.ndarray, splits) -> np.ndarray:
    return cross_val_predict(model, f, y, cv=splits) == y  # (N,) out-of-fold predictions right?


def knn_correct(features, labels, k: int = 5, folds: int = 5, seed: int = 0) -> np.ndarray:
    """(N,) whether each example's out-of-fold k-nearest-neighbour vote (cosine) is right."""
    f, y = check_features_labels(features, labels)
    if k < 1:
        raise ValueError(f"k must be >= 1; got {k}")
    splits = _splits(y, folds, seed)
    n_train = min(len(train) for train, _ in splits)
    knn = KNeighborsClassifier(n_neighbors=min(k, n_train), metric="cosine", algorithm="brute")
    return _cv_correct(knn, normalize(f), y, splits)


def knn_accuracy(features, labels, k: int = 5, folds: int = 5, seed: int = 0) -> float:
    """Cross-validated accuracy of a k-nearest-neighbour vote under cosine distance.

    Rows are L2-normalised first (cosine similarity is what embedding models are trained for,
    and it ignores the feature scale). k is capped by the smallest training fold. If a class
    has fewer than ``folds`` examples the number of folds is reduced to that class size
    (minimum 2; a class with a single example then cannot be predicted correctly).
    """
    return float(np.mean(knn_correct(features, labels, k, folds, seed)))


PROBE_C = (0.001, 0.01, 0.1, 1.0)


def linear_probe_correct(features, labels, folds: int = 5, seed: int = 0) -> np.ndarray:
    """(N,) whether each example's out-of-fold StandardScaler + LogisticRegression prediction is
    right, at the C of ``PROBE_C`` with the most right.

    Within a fold the C values are fitted from the smallest up, each starting from the previous
    solution (warm start): the path costs little more than one fit.
    """
    f, y = check_features_labels(features, labels)
    right = np.zeros((len(PROBE_C), len(y)), dtype=bool)  # (C, N)
    for train, test in _splits(y, folds, seed):
        scaler = StandardScaler().fit(f[train])
        ft, fv = scaler.transform(f[train]), scaler.transform(f[test])
        model = LogisticRegression(max_iter=1000, tol=1e-3, warm_start=True)
        for i, c in enumerate(PROBE_C):
            model.set_params(C=c).fit(ft, y[train])
            right[i, test] = model.predict(fv) == y[test]
    return right[int(np.argmax(right.sum(axis=1)))]


def linear_probe_accuracy(features, labels, folds: int = 5, seed: int = 0) -> float:
    """Cross-validated accuracy of StandardScaler + LogisticRegression at its best C.

    The probe a user would actually fit on frozen features; standardising makes C mean the
    same for every backbone. A fixed C overfits high-dimensional features from few examples
    (it can score below the majority class), so the best of ``PROBE_C`` by cross-validation is
    reported: a ranking score, slightly optimistic, not a held-out metric. Folds are reduced for
    small classes as in ``knn_accuracy``.
    """
    return float(np.mean(linear_probe_correct(features, labels, folds, seed)))
