"""What a candidate's scores mean on their own: a predicted accuracy with an interval, and the
probability that the candidate is the best of those ranked.

Both come from the linear probe's cross-validated predictions on the training split's features
(each example predicted once by a probe that did not see it), the same kind of head the frozen
rung fits. The accuracy gets a Wilson interval (binomial over the out-of-fold predictions). The
probability of being best resamples the examples with replacement and counts, over resamples,
how often each candidate's resampled accuracy is the highest (a tie shares the win), so two
candidates that are equally good get about 0.5 each and a clearly better one about 1. Every
candidate must have been scored on the same examples in the same order, which holds because the
subsample depends only on the labels and the seed.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import DataError

Z95 = 1.959963984540054  # two-sided 95% normal quantile


def wilson_interval(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``correct / n``."""
    if n <= 0:
        raise DataError(f"n must be >= 1 for an accuracy interval; got {n}")
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def items_for_interval(half_width: float, z: float = Z95) -> int:
    """Examples needed for a Wilson interval no wider than ``±half_width`` at the worst case
    (accuracy 0.5): the subsample size beyond which more examples buy little certainty."""
    if not 0 < half_width < 0.5:
        raise DataError(f"half_width must be in (0, 0.5); got {half_width}")
    return math.ceil(z * z * 0.25 / (half_width * half_width))


def predicted_accuracy(correct: np.ndarray, by: str) -> dict:
    """``{"mean", "ci", "n", "by"}`` from one candidate's out-of-fold correctness (N,) bools."""
    c = np.asarray(correct, dtype=bool)
    lo, hi = wilson_interval(int(c.sum()), len(c))
    return {"mean": float(c.mean()), "ci": [lo, hi], "n": int(len(c)), "by": by}


def p_best(correct: list[np.ndarray], n_boot: int = 2000, seed: int = 0) -> np.ndarray:
    """(K,) share of bootstrap resamples of the examples in which each of K candidates has the
    highest accuracy; ``correct`` holds K (N,) boolean vectors over the same N examples."""
    if not correct:
        return np.zeros(0)
    if len({len(c) for c in correct}) != 1:
        raise DataError(
            "every candidate's correctness must be a vector over the same examples; "
            f"got lengths {sorted({len(c) for c in correct})}"
        )
    m = np.asarray(correct, dtype=np.float64)  # (K, N)
    k, n = m.shape
    rng = np.random.default_rng(seed)
    wins = np.zeros(k)
    for lo in range(0, n_boot, 250):  # in chunks: (chunk, N) counts instead of (n_boot, N) indices at once
        b = min(250, n_boot - lo)
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=b)  # (b, N) resample weights
        acc = counts @ m.T  # (b, K) correct predictions per resample and candidate
        top = acc == acc.max(axis=1, keepdims=True)  # (b, K) ties share the win
        wins += (top / top.sum(axis=1, keepdims=True)).sum(axis=0)
    return wins / n_boot


def pack(correct: np.ndarray) -> str:
    """Correctness bits as a compact string ("0110..."), to carry them between stages as JSON."""
    return "".join("1" if x else "0" for x in np.asarray(correct, dtype=bool))


def unpack(bits: str) -> np.ndarray:
    return np.frombuffer(bits.encode("ascii"), dtype=np.uint8) == ord("1")
