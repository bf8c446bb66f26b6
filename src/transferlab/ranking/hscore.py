"""H-score (Bao et al., ICIP 2019) and its shrinkage-regularised form (Ibrahim et al., 2022).

    H(f) = tr( cov(f)^-1 cov(E[f | y]) )

is the between-class share of the feature variance, summed over directions whitened by the
total covariance: the Fisher-discriminant view of how well a linear classifier on f can
separate the classes. It lies in [0, C - 1]; higher is better.

Both covariances use the 1/N normalisation, so the between-class covariance never exceeds the
total one. (Some copies mix 1/N and 1/(N-1), which scales the score by N/(N-1).)
"""

from __future__ import annotations

import numpy as np
from sklearn.covariance import LedoitWolf

from .logme import check_features_labels

# Eigenvalues of cov(f) below RCOND * largest are treated as zero: they are rounding noise of a
# rank-deficient cov(f) (exactly zero in theory), and inverting them would turn that noise into
# whatever ratio of two noise terms happens to come out.
RCOND = 1e-10


def _centred_and_class_means(f: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centred features (N, D) and, for each row, the centred mean of its class (N, D)."""
    f = f - f.mean(axis=0)
    counts = np.bincount(y)  # (C,)
    means = np.zeros((len(counts), f.shape[1]))  # (C, D)
    np.add.at(means, y, f)
    return f, (means / counts[:, None])[y]


def _trace_pinv_product(cov_f: np.ndarray, cov_g: np.ndarray) -> float:
    """tr(cov_f^+ cov_g) for symmetric positive semi-definite (D, D) matrices."""
    return float(np.trace(np.linalg.pinv(cov_f, rcond=RCOND, hermitian=True) @ cov_g))


def hscore(features, labels) -> float:
    """H-score = tr(cov(f)^+ cov(E[f|y])), with a pseudo-inverse so rank-deficient f works.

    With N <= D (fewer examples than dimensions) cov(f) is singular and the pseudo-inverse
    whitens away all within-class variation: the score saturates at C - 1 whatever the labels.
    Use ``hscore_shrinkage`` in that regime.
    """
    f, y = check_features_labels(features, labels)
    f, g = _centred_and_class_means(f, y)
    n = len(f)
    return _trace_pinv_product(f.T @ f / n, g.T @ g / n)


def hscore_shrinkage(features, labels) -> float:
    """Shrinkage H-score (Ibrahim et al., 2022, "Newer is not always better").

        H_a(f) = tr( cov_a(f)^-1 (1 - a) cov(E[f|y]) ),  cov_a = (1 - a) cov(f) + a mu I,

    with the Ledoit-Wolf shrinkage a and mu = tr(cov(f)) / D. The shrunk covariance is well
    conditioned for any N, so the score stays informative when N is small or N < D; the
    between-class covariance gets the same (1 - a) weight as the total one.
    """
    f, y = check_features_labels(features, labels)
    f, g = _centred_and_class_means(f, y)
    lw = LedoitWolf(store_precision=False, assume_centered=True).fit(f)
    return float(1 - lw.shrinkage_) * _trace_pinv_product(lw.covariance_, g.T @ g / len(f))
