"""Pairs of embeddings with cosine similarity above a threshold, through a faiss index.

Near-duplicates are far closer to each other than to anything else, so a k-nearest-neighbour
search with a small k finds them; rows whose k-th neighbour is still above the threshold are
searched again with a larger k, so a duplicate cluster of any size is found whole while memory
stays linear in the number of items plus the number of pairs. Up to ``exact_limit`` items the
index is exact (``IndexFlatIP``); above, an inverted-file index (``IndexIVFFlat``) compares each
query with a few cells only. IVF was preferred to HNSW: on 100,000 random 384-d unit vectors on
2 cores, IVF built and searched in about 15 s and found every planted near-duplicate, while
HNSW took 35-70 s (M = 16 or 32) and found 73-93% of them (bench/audit.py times the IVF path).
"""

from __future__ import annotations

import numpy as np

FIRST_K = 8
IVF_PROBES = 8
IVF_TRAIN_PER_CELL = 64


def normalise(features: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(features, dtype=np.float32).copy()
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def build_index(x: np.ndarray, exact_limit: int, seed: int = 0):
    """An inner-product index over the rows of ``x``: exact when small, IVF when large."""
    import faiss

    n, d = x.shape
    index: faiss.Index
    if n <= exact_limit:
        index = faiss.IndexFlatIP(d)
    else:
        cells = max(1, min(int(4 * np.sqrt(n)), n // 39))  # faiss wants 39+ training points per cell
        ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, cells, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(seed)
        sample = rng.choice(n, min(n, IVF_TRAIN_PER_CELL * cells), replace=False)
        ivf.train(x[np.sort(sample)])
        ivf.nprobe = IVF_PROBES
        index = ivf
    index.add(x)
    return index


def effective_threshold(x: np.ndarray, threshold: float, seed: int = 0, n_pairs: int = 4000) -> float:
    """The threshold, raised when unrelated pairs are already that similar.

    A fixed cosine threshold assumes the embedding spreads unrelated inputs apart. Some do not
    (a randomly initialised or badly matched backbone maps everything to nearly the same point),
    and then every pair would look like a near-duplicate. A pair must also stand out from
    random pairs: above halfway between their 99.9th percentile similarity and 1. When random
    pairs are already within 0.001 of 1 the embedding cannot tell inputs apart: infinity (no pair).
    """
    n = len(x)
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, n, n_pairs), rng.integers(0, n, n_pairs)
    keep = a != b
    sims = np.einsum("ij,ij->i", x[a[keep]], x[b[keep]])  # (pairs,) cosine of random pairs
    if len(sims) == 0:
        return threshold
    q = float(np.quantile(sims, 0.999))
    if q > 0.999:
        return float("inf")
    return max(threshold, q + 0.5 * (1.0 - q))


def cosine_pairs(features: np.ndarray, threshold: float, exact_limit: int = 20_000):
    """All pairs (a < b) of rows with cosine similarity >= threshold, and their similarities.

    ``threshold`` is raised by ``effective_threshold`` when unrelated pairs are that similar.
    """
    x = normalise(features)
    n = len(x)
    if n < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)
    threshold = effective_threshold(x, threshold)
    if not np.isfinite(threshold):
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)
    index = build_index(x, exact_limit)
    rows, k = np.arange(n), FIRST_K
    found_a, found_b, found_s = [], [], []
    while len(rows):
        k = min(k, n)
        sims, nbrs = index.search(x[rows], k)
        hit = (sims >= threshold) & (nbrs >= 0) & (nbrs != rows[:, None])
        qa, col = np.nonzero(hit)
        found_a.append(rows[qa])
        found_b.append(nbrs[qa, col])
        found_s.append(sims[qa, col])
        full = sims[:, -1] >= threshold  # every neighbour matched: there may be more beyond k
        rows, k = (rows[full], 2 * k) if k < n else (rows[:0], k)
    a, b, s = np.concatenate(found_a), np.concatenate(found_b), np.concatenate(found_s)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    _, first = np.unique(lo * n + hi, return_index=True)
    return lo[first].astype(np.int64), hi[first].astype(np.int64), s[first].astype(float)
