"""Near-duplicate search: transferlab's indexes vs brute force, at 10,000 and 100,000 items.

Two searches, each on synthetic data with planted near-duplicate pairs (1% of the items):

* embeddings: random unit vectors of dimension 384, each planted copy at cosine 0.975-0.995
  from its source; pairs at cosine >= 0.97 are wanted. transferlab: ``cosine_pairs`` (faiss,
  exact below 20,000 items, IVF above). Brute force: all-pairs cosine, in chunks of queries.
* perceptual hashes: random 64-bit hashes, each planted copy 0-10 bits from its source; pairs
  within 10 bits are wanted. transferlab: ``hamming_join`` (multi-index hashing). Brute force:
  all-pairs Hamming distance, in chunks of queries. (The image check looks up 11 hashes per
  image - original, mirrored and 9 crops - so it runs this join with 11 times the queries; both
  sides scale linearly with the number of queries.)

Both sides are timed in the same run. At 100,000 items the brute force is timed on a random
subsample of queries and extrapolated linearly to all queries (its cost is exactly linear in
the number of queries); its recall is that of the subsample. Writes bench/results/audit.json
and prints a Markdown table.

    python bench/audit.py [--sizes 10000 100000] [--brute-queries 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from transferlab.auditing.matching.hamming import hamming_join
from transferlab.auditing.matching.vectors import cosine_pairs

DIM, COSINE, RADIUS = 384, 0.97, 10


def planted_vectors(n: int, rng: np.random.Generator):
    x = rng.standard_normal((n, DIM)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    src, dst = rng.choice(n, (2, n // 100), replace=False)
    cos = rng.uniform(0.975, 0.995, len(src)).astype(np.float32)[:, None]
    noise = rng.standard_normal((len(src), DIM)).astype(np.float32)
    noise -= (noise * x[src]).sum(1, keepdims=True) * x[src]  # orthogonal to the source
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    x[dst] = cos * x[src] + np.sqrt(1 - cos**2) * noise
    return x, src, dst


def planted_hashes(n: int, rng: np.random.Generator):
    h = rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64) ^ (
        rng.integers(0, 2, n).astype(np.uint64) << np.uint64(63)
    )
    src, dst = rng.choice(n, (2, n // 100), replace=False)
    h[dst] = h[src]
    for i, k in zip(dst, rng.integers(0, RADIUS + 1, len(dst))):
        for bit in rng.choice(64, k, replace=False):
            h[i] ^= np.uint64(1) << np.uint64(bit)
    return h, src, dst


def brute_vectors(x: np.ndarray, queries: np.ndarray, chunk: int = 2048) -> set:
    found = set()
    for lo in range(0, len(queries), chunk):
        q = queries[lo : lo + chunk]
        rows, cols = np.nonzero(x[q] @ x.T >= COSINE)
        found |= {(min(a, b), max(a, b)) for a, b in zip(q[rows].tolist(), cols.tolist()) if a != b}
    return found


def brute_hashes(h: np.ndarray, queries: np.ndarray, chunk: int = 1024) -> set:
    found = set()
    for lo in range(0, len(queries), chunk):
        q = queries[lo : lo + chunk]
        rows, cols = np.nonzero(np.bitwise_count(h[q][:, None] ^ h[None, :]) <= RADIUS)
        found |= {(min(a, b), max(a, b)) for a, b in zip(q[rows].tolist(), cols.tolist()) if a != b}
    return found


def ours_vectors(x: np.ndarray) -> set:
    a, b, _ = cosine_pairs(x, COSINE)
    return set(zip(a.tolist(), b.tolist()))


def ours_hashes(h: np.ndarray) -> set:
    q, b, _ = hamming_join(h, h, RADIUS)
    return {(min(i, j), max(i, j)) for i, j in zip(q.tolist(), b.tolist()) if i != j}


def recall(found: set, src: np.ndarray, dst: np.ndarray) -> float:
    planted = [(min(a, b), max(a, b)) for a, b in zip(src.tolist(), dst.tolist())]
    return float(np.mean([p in found for p in planted])) if planted else float("nan")


def compare(kind: str, n: int, brute_queries: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    data, src, dst = planted_vectors(n, rng) if kind == "embeddings" else planted_hashes(n, rng)
    ours, brute = (ours_vectors, brute_vectors) if kind == "embeddings" else (ours_hashes, brute_hashes)
    start = time.perf_counter()
    found = ours(data)
    ours_s = time.perf_counter() - start
    queries = np.arange(n) if brute_queries >= n else np.sort(rng.choice(n, brute_queries, replace=False))
    start = time.perf_counter()
    brute_found = brute(data, queries)
    brute_s = (time.perf_counter() - start) * n / len(queries)
    sampled = np.isin(src, queries) | np.isin(dst, queries)  # planted pairs the subsample can see
    return {
        "search": kind,
        "items": n,
        "planted_pairs": len(src),
        "transferlab": {"seconds": ours_s, "recall": recall(found, src, dst)},
        "brute_force": {
            "seconds": brute_s,
            "recall": recall(brute_found, src[sampled], dst[sampled]),
            "queries_timed": int(len(queries)),
            "extrapolated": bool(len(queries) < n),
        },
        "speedup": brute_s / ours_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument(
        "--brute-queries", type=int, default=10_000, help="queries timed for the brute force; more are extrapolated"
    )
    args = parser.parse_args()
    import faiss

    rows = [compare(kind, n, args.brute_queries) for kind in ("embeddings", "perceptual hashes") for n in args.sizes]
    out = {
        "machine": {
            "cpus": os.cpu_count(),
            "faiss_threads": faiss.omp_get_max_threads(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "faiss": faiss.__version__,
        },
        "date": time.strftime("%Y-%m-%d"),
        "results": rows,
    }
    path = Path(__file__).parent / "results" / "audit.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    print("| search | items | planted pairs | transferlab s | recall | brute force s | recall | speed-up |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        t, b = r["transferlab"], r["brute_force"]
        note = f" (extrapolated from {b['queries_timed']:,} queries)" if b["extrapolated"] else ""
        print(
            f"| {r['search']} | {r['items']:,} | {r['planted_pairs']:,} | {t['seconds']:.2f} | {t['recall']:.3f} | "
            f"{b['seconds']:.2f}{note} | {b['recall']:.3f} | {r['speedup']:.1f}x |"
        )
    print(f"written {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
