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
EPS = np.finfo(np.float64).tiny


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


def shrunk_hscore(features, labels, standardize: bool = True) -> tuple[float, float]:
    """(shrinkage H-score, Ledoit-Wolf shrinkage a); see ``hscore_shrinkage``."""
    f, y = check_features_labels(features, labels)
    f, g = _centred_and_class_means(f, y)
    if standardize:
        sd = f.std(axis=0)
        live = sd > RCOND * max(sd.max(), EPS)  # constant columns carry no variance of either kind
        if not live.any():  # constant features: no variance to explain, whatever the labels
            return 0.0, 1.0
        f, g = f[:, live] / sd[live], g[:, live] / sd[live]
    lw = LedoitWolf(store_precision=False, assume_centered=True).fit(f)
    a = float(lw.shrinkage_)
    return (1 - a) * _trace_pinv_product(lw.covariance_, g.T @ g / len(f)), a


def hscore_shrinkage(features, labels, standardize: bool = True) -> float:
    """Shrinkage H-score (Ibrahim et al., 2022, "Newer is not always better").

        H_a(f) = tr( cov_a(f)^-1 (1 - a) cov(E[f|y]) ),  cov_a = (1 - a) cov(f) + a mu I,

    with the Ledoit-Wolf shrinkage a and mu = tr(cov(f)) / D. The shrunk covariance is well
    conditioned for any N, so the score stays informative when N is small or N < D; the
    between-class covariance gets the same (1 - a) weight as the total one, which keeps the
    score in [0, C - 1].

    ``standardize`` (default) applies that formula to the features scaled to unit variance per
    dimension, i.e. shrinks the correlation matrix (towards the diagonal of cov(f)). The paper's
    formula (``standardize=False``) shrinks towards mu I, and mu is the *average* variance: when
    a few dimensions have far larger variance than the rest (outlier activations are common in
    transformer features), a mu I much larger than every other dimension's variance swamps them
    and the score sees only the dominant dimensions, often collapsing towards 0 whatever the
    labels. The plain H-score is unchanged by rescaling a dimension; standardising makes the
    shrinkage score so too. Constant dimensions are dropped.

    a = 1 also gives 0: Ledoit-Wolf finds the spread of the covariance's eigenvalues no larger
    than its sampling noise (a nearly flat spectrum with D comparable to N, e.g. truncated-SVD
    components, which are uncorrelated by construction), so cov(E[f|y]) gets weight 0 and the
    score is 0 for every labelling. ``score_features`` reports the score as unavailable then.
    """
    return shrunk_hscore(features, labels, standardize)[0]
