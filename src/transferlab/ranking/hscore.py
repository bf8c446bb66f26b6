"""H-score (Bao et al., ICIP 2019) and its shrinkage-regularised form (Ibrahim et al., 2022).

    H(f) = tr( cov(f)^-1 cov(E[f | y]) )

is the between-class share of the feature variance, summed over directions whitened by the
total covariance: the Fisher-discriminant view of how well a linear classifier on f can
separate the classes. It lies in [0, C - 1]; higher is better.

Both covariances use the 1/N normalisation, so the between-class covariance never exceeds the
total one. (Some copies mix 1/N and 1/(N-1), which scales the score by N/(N-1).)

Both are computed from the thin SVD of the centred features F = U S V^T rather than from D x D
covariances: cov(E[f|y]) = F^T P F / N with P the (N, N) class-mean projector, so the traces
reduce to sums over the k = min(N, D) singular directions of (U^T P U)_jj, weighted by each
direction's share of the (shrunk) covariance. That is O(N^2 D) instead of O(D^3): with a few
hundred examples of 1,280-d features, milliseconds instead of seconds.
"""

from __future__ import annotations

import numpy as np

from .logme import check_features_labels

# Eigenvalues of cov(f) below RCOND * largest are treated as zero: they are rounding noise of a
# rank-deficient cov(f) (exactly zero in theory), and inverting them would turn that noise into
# whatever ratio of two noise terms happens to come out.
RCOND = 1e-10
EPS = np.finfo(np.float64).tiny


def _centred_directions(f: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Squared singular values (k,) of the features (centred by the caller) and, per singular
    direction j, (U^T P U)_jj (k,): how much of that direction lies between class means (0 to 1)."""
    u, s, _ = np.linalg.svd(f, full_matrices=False)  # u (N, k), s (k,)
    counts = np.bincount(y)  # (C,)
    sums = np.zeros((len(counts), u.shape[1]))  # (C, k) per-class sums of U's rows
    np.add.at(sums, y, u)
    between = (sums**2 / np.maximum(counts, 1)[:, None]).sum(axis=0)  # (k,)
    return s**2, between


def _ledoit_wolf_shrinkage(s2: np.ndarray, row_norms2: np.ndarray, n: int, d: int) -> float:
    """scikit-learn's ``ledoit_wolf_shrinkage(f, assume_centered=True)`` from the squared
    singular values of f and its rows' squared norms, without forming f^T f (D x D):
    ||f^T f||_F^2 = sum s^4, and the sum of the entries of (f*f)^T (f*f) = sum_i ||f_i||^4."""
    trace = s2.sum() / n  # tr(cov)
    mu = trace / d
    delta_ = np.sum(s2**2) / n**2
    beta = (np.sum(row_norms2**2) / n - delta_) / (d * n)
    delta = (delta_ - 2 * mu * trace + d * mu**2) / d
    beta = min(beta, delta)
    return 0.0 if beta == 0 else float(beta / delta)


def hscore(features, labels) -> float:
    """H-score = tr(cov(f)^+ cov(E[f|y])), with a pseudo-inverse so rank-deficient f works.

    With N <= D (fewer examples than dimensions) cov(f) is singular and the pseudo-inverse
    whitens away all within-class variation: the score saturates at C - 1 whatever the labels.
    Use ``hscore_shrinkage`` in that regime.
    """
    f, y = check_features_labels(features, labels)
    s2, between = _centred_directions(f - f.mean(axis=0), y)
    keep = s2 > RCOND * max(s2.max(initial=0.0), EPS)  # the pseudo-inverse's cut-off
    return float(between[keep].sum())


def shrunk_hscore(features, labels, standardize: bool = True) -> tuple[float, float]:
    """(shrinkage H-score, Ledoit-Wolf shrinkage a); see ``hscore_shrinkage``."""
    f, y = check_features_labels(features, labels)
    f = f - f.mean(axis=0)
    if standardize:
        sd = f.std(axis=0)
        live = sd > RCOND * max(sd.max(), EPS)  # constant columns carry no variance of either kind
        if not live.any():  # constant features: no variance to explain, whatever the labels
            return 0.0, 1.0
        f = f[:, live] / sd[live]
    n, d = f.shape
    s2, between = _centred_directions(f, y)
    a = _ledoit_wolf_shrinkage(s2, np.sum(f**2, axis=1), n, d)
    eig = s2 / n  # eigenvalues of cov(f) along the singular directions
    shrunk = (1 - a) * eig + a * s2.sum() / (n * d)  # those of (1 - a) cov(f) + a mu I
    keep = shrunk > RCOND * max(shrunk.max(initial=0.0), EPS)
    return float((1 - a) * np.sum(eig[keep] * between[keep] / shrunk[keep])), a


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
