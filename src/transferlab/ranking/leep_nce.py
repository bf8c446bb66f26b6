"""Scores that use the source model's own predictions instead of its features.

LEEP (Nguyen et al., ICML 2020) and NCE (Tran et al., ICCV 2019) ask how well the source
classifier's outputs, relabelled through their empirical co-occurrence with the target labels,
already predict the target. They need a model with a classification head; both are <= 0 and
higher (closer to 0) is better.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from .logme import check_features, check_labels

SUM_TOL = 1e-3  # float16/float32 softmax outputs sum to 1 only up to rounding


def check_probs(source_probs, name: str = "source_probs") -> np.ndarray:
    """(N, Z) non-negative rows that sum to 1, or a ValueError that names the argument."""
    p = check_features(source_probs, name)
    if p.min() < 0:
        raise DataError(f"{name} must be probabilities (softmax outputs); found negative values")
    sums = p.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1) > SUM_TOL)
    if len(bad):
        raise DataError(
            f"{name} rows must sum to 1 (softmax outputs, not logits); "
            f"row {bad[0]} sums to {sums[bad[0]]:.6g} ({len(bad)} rows off)"
        )
    return p


def leep(source_probs, labels) -> float:
    """LEEP = 1/N sum_i log sum_z P(y_i | z) theta_i(z).

    theta_i (Z,) is the source model's softmax for example i. The empirical joint
    P(y, z) = 1/N sum_{i: y_i = y} theta_i(z) gives P(y | z) = P(y, z) / P(z): a "relabelling"
    of source classes into target classes. LEEP is the mean log-likelihood of the true target
    labels under that relabelled source classifier, so it is 0 when the source predictions
    determine the target label and lower the more they are mixed across target classes.
    """
    theta = check_probs(source_probs)  # (N, Z)
    y = check_labels(labels, len(theta), other="source_probs")  # (N,)
    n, c = len(y), y.max() + 1
    joint = np.zeros((c, theta.shape[1]))  # (C, Z) P(y, z)
    np.add.at(joint, y, theta / n)
    p_z = joint.sum(axis=0)  # (Z,)
    cond = np.divide(joint, p_z, out=np.zeros_like(joint), where=p_z > 0)  # (C, Z) P(y | z)
    eep = np.sum(theta * cond[y], axis=1)  # (N,) predicted probability of the true label
    # eep > 0 in exact arithmetic (every z with theta_i(z) > 0 has P(y_i | z) > 0); the floor
    # only stops underflow from turning into -inf.
    return float(np.mean(np.log(np.maximum(eep, np.finfo(np.float64).tiny))))


def nce(source_labels, labels) -> float:
    """NCE = -H(Y | Z) = sum_{y,z} P(y, z) log P(y | z).

    Z is the source model's top-1 label for each example (any integers), Y the target label.
    It is 0 when the target label is a function of the source label and down to -log C when
    the source label says nothing about it.
    """
    z = check_labels(source_labels, None, "source_labels", min_classes=1)  # (N,)
    y = check_labels(labels, len(z), other="source_labels")  # (N,)
    c, nz = y.max() + 1, z.max() + 1
    joint = np.bincount(y * nz + z, minlength=c * nz).reshape(c, nz) / len(y)  # (C, Z) P(y, z)
    cond = joint / joint.sum(axis=0)  # (C, Z) P(y | z); every z here occurs at least once
    seen = joint > 0
    return float(np.sum(joint[seen] * np.log(cond[seen])))
