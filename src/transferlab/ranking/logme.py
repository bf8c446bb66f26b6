"""LogME (You et al., ICML 2021): the evidence of a Bayesian linear head on frozen features.

For each class c, the one-hot target y (N,) is modelled as y = F w + noise with a Gaussian
prior w ~ N(0, alpha^-1 I_D) and noise precision beta. The log evidence (marginal likelihood)

    L(alpha, beta) = D/2 log alpha + N/2 log beta - N/2 log 2pi
                     - beta/2 ||y - F m||^2 - alpha/2 ||m||^2 - 1/2 log|A|,
    A = alpha I_D + beta F^T F,   m = beta A^-1 F^T y,

is maximised over (alpha, beta) and divided by N. LogME is the mean over classes. It rewards
features on which a linear model explains the labels without needing large weights.

Everything is computed from the thin SVD F = U diag(s) V^T (k = min(N, D) singular values,
zeros allowed), so the result is right when N < D or F is rank-deficient: A has the D
eigenvalues alpha + beta s_i^2, with s_i = 0 for every i beyond the rank. The widely copied
implementation sums log|A| over only its k = min(N, D) singular values (fewer if it drops ones
it deems zero) while still counting all D in D/2 log alpha, which adds (D - k)/2 log alpha to
the evidence exactly in those regimes, an inflation set by alpha and D, not by the labels.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError

MAX_ITER = 100
TOL = 1e-5
EPS = np.finfo(np.float64).eps


def check_features(features, name: str = "features") -> np.ndarray:
    """A finite (N, D) float64 array, or a ValueError that names the argument."""
    f = np.asarray(features)
    if f.ndim != 2:
        raise DataError(f"{name} must be a 2-D array (N, D); got shape {f.shape}")
    if f.shape[1] == 0:
        raise DataError(f"{name} must have at least one column; got shape {f.shape}")
    if f.dtype.kind not in "biuf":
        raise DataError(f"{name} must be a real numeric array; got dtype {f.dtype}")
    f = f.astype(np.float64)
    bad = np.count_nonzero(~np.isfinite(f))
    if bad:
        raise DataError(f"{name} contains {bad} NaN or infinite values; remove or impute them")
    return f


def check_labels(
    labels, n_rows: int | None, name: str = "labels", other: str = "features", min_classes: int = 2
) -> np.ndarray:
    """Integer class codes re-indexed to 0..C-1 (N,), or a ValueError that names the argument.

    Any integer codes are accepted (e.g. a subsample that lost a class); ``n_rows`` is the
    number of rows of the array called ``other`` that the labels must match (None: no check).
    """
    y = np.asarray(labels)
    if y.ndim != 1:
        raise DataError(f"{name} must be a 1-D array (N,); got shape {y.shape}")
    if y.dtype.kind not in "biu":
        raise DataError(f"{name} must be integer class indices 0..C-1; got dtype {y.dtype}")
    if n_rows is not None and len(y) != n_rows:
        raise DataError(f"{name} has {len(y)} entries but {other} has {n_rows} rows")
    classes, codes = np.unique(y, return_inverse=True)
    if len(classes) < min_classes:
        raise DataError(f"{name} must contain at least {min_classes} classes; got {len(classes)} ({classes.tolist()})")
    return codes.astype(np.int64)


def check_features_labels(features, labels) -> tuple[np.ndarray, np.ndarray]:
    f = check_features(features)
    return f, check_labels(labels, len(f))


def _max_evidence(s2: np.ndarray, z: np.ndarray, rest: float, n: int, d: int) -> float:
    """max over (alpha, beta) of L / N for one target, by MacKay's fixed-point iteration.

    s2 (k,) squared singular values of F; z (k,) = U^T y; rest = ||y||^2 - ||z||^2, the part of
    y outside the span of U. With t = alpha + beta s2 (k of the D eigenvalues of A; the other
    D - k equal alpha): ||m||^2 = sum beta^2 s2 z^2 / t^2, ||y - F m||^2 = sum (alpha/t)^2 z^2
    + rest, and gamma = sum beta s2 / t is the effective number of fitted directions.
    Updates: alpha = gamma / ||m||^2, beta = (N - gamma) / ||y - F m||^2.

    When every y can be fitted exactly (rank F = N, typical for N < D) the supremum lies at
    beta -> inf; the iteration then climbs towards it until the residual floor below stops it.
    """
    k, z2 = len(s2), z**2
    yy = float(z2.sum()) + rest
    if not np.any(s2 * z2 > 0):
        # no signal in the span of F: the evidence grows with alpha; its limit (m = 0) is the
        # likelihood of y under pure noise with the best beta = N / ||y||^2.
        return float(0.5 * np.log(n / yy) - 0.5 * (1 + np.log(2 * np.pi)))

    def fit(alpha, beta):  # eigenvalues t (k,), ||m||^2, ||y - F m||^2
        t = alpha + beta * s2
        return t, np.sum(beta**2 * s2 * z2 / t**2), np.sum((alpha / t) ** 2 * z2) + rest

    alpha, beta = 1.0, 1.0
    for _ in range(MAX_ITER):
        t, m2, res2 = fit(alpha, beta)
        gamma = np.sum(beta * s2 / t)
        n_minus_gamma = (n - k) + np.sum(alpha / t)  # = N - gamma, without cancellation
        # floors keep the updates finite when y is fitted exactly (beta -> inf)
        new_alpha = gamma / max(m2, EPS * yy)
        new_beta = n_minus_gamma / max(res2, EPS * yy)
        done = abs(new_alpha - alpha) <= TOL * alpha and abs(new_beta - beta) <= TOL * beta
        alpha, beta = float(new_alpha), float(new_beta)
        if done:
            break
    t, m2, res2 = fit(alpha, beta)
    logdet = np.sum(np.log(t)) + (d - k) * np.log(alpha)  # log|A| over all D eigenvalues
    evidence = (d * np.log(alpha) + n * np.log(beta) - n * np.log(2 * np.pi) - beta * res2 - alpha * m2 - logdet) / 2
    return float(evidence / n)


def _svd(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """U (N, k) and squared singular values (k,), with numerically zero ones set to 0."""
    u, s, _ = np.linalg.svd(f, full_matrices=False)
    s = np.where(s > s[0] * max(f.shape) * EPS, s, 0.0)
    return u, s**2


def log_evidence(features, target) -> float:
    """Maximised log evidence / N of a Bayesian linear regression of a real target (N,)."""
    f = check_features(features)
    y = np.asarray(target, dtype=np.float64)
    if y.shape != (len(f),):
        raise DataError(f"target must have shape ({len(f)},) to match features; got {y.shape}")
    if not np.all(np.isfinite(y)) or not np.any(y):
        raise DataError("target must be finite and not all zero")
    u, s2 = _svd(f)
    z = u.T @ y  # (k,)
    return _max_evidence(s2, z, max(float(y @ y - z @ z), 0.0), *f.shape)


def logme(features, labels) -> float:
    """LogME: mean over classes of the maximised log evidence / N of a one-hot target.

    Higher is better. Invariant to scaling the features by a constant (alpha absorbs it). If a
    one-hot target lies exactly in the span of rank-deficient features the evidence has no
    maximum (beta -> inf); the iteration then stops at a large, finite value.
    """
    f, y = check_features_labels(features, labels)
    u, s2 = _svd(f)
    onehot = np.eye(y.max() + 1)[y]  # (N, C)
    z = u.T @ onehot  # (k, C)
    rest = np.maximum(onehot.sum(0) - (z**2).sum(0), 0.0)  # (C,) ||y||^2 - ||U^T y||^2
    return float(np.mean([_max_evidence(s2, z[:, c], rest[c], *f.shape) for c in range(onehot.shape[1])]))
