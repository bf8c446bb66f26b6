"""All pairs of 64-bit hashes within a Hamming radius, without comparing every pair.

Multi-index hashing: split the 64 bits into ``BANDS`` bands of 16 bits. If two hashes differ in
at most ``r`` bits, then by the pigeonhole principle some band differs in at most ``r // BANDS``
bits. So looking up, in every band, the buckets within that many bits of the query's band finds
every such pair (the search is exact, not approximate), while each lookup meets only the few
unrelated items that happen to share a 16-bit band.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

BANDS = 4
BAND_BITS = 64 // BANDS


def probe_masks(radius: int) -> np.ndarray:
    """Every BAND_BITS-bit mask with at most ``radius`` bits set."""
    masks = [0]
    for r in range(1, radius + 1):
        masks += [sum(1 << b for b in bits) for bits in combinations(range(BAND_BITS), r)]
    return np.array(masks, dtype=np.uint64)


def hamming_join(queries: np.ndarray, base: np.ndarray, radius: int):
    """Every pair (q, b) with ``queries[q]`` and ``base[b]`` at most ``radius`` bits apart.

    Returns (q, b, distance) arrays, one entry per pair.
    """
    queries, base = np.asarray(queries, np.uint64), np.asarray(base, np.uint64)
    masks = probe_masks(radius // BANDS)
    width, low = np.uint64(BAND_BITS), np.uint64((1 << BAND_BITS) - 1)
    found = []
    for band in range(BANDS):
        shift = np.uint64(band) * width
        base_keys = ((base >> shift) & low).astype(np.int64)
        order = np.argsort(base_keys, kind="stable")
        counts = np.bincount(base_keys, minlength=1 << BAND_BITS)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        query_keys = (queries >> shift) & low
        for mask in masks:
            q, b = _bucket_members((query_keys ^ mask).astype(np.int64), counts, starts, order)
            dist = np.bitwise_count(queries[q] ^ base[b])
            close = dist <= radius
            found.append((q[close], b[close], dist[close]))
    q, b, d = (np.concatenate([f[k] for f in found]) for k in range(3))
    _, first = np.unique(q * len(base) + b, return_index=True)
    return q[first], b[first], d[first].astype(np.int64)


def _bucket_members(probe: np.ndarray, counts: np.ndarray, starts: np.ndarray, order: np.ndarray):
    """For each query, every base item in bucket ``probe[query]``, as flat (query, item) arrays."""
    n = counts[probe]
    q = np.repeat(np.arange(len(probe)), n)
    offset = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
    return q, order[np.repeat(starts[probe], n) + offset]
