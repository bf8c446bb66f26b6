"""Text keys and near-duplicate text pairs by MinHash LSH over character shingles.

Exact duplicates are compared after Unicode (NFKC), case and whitespace normalisation. Near
duplicates also ignore punctuation, and are found by MinHash LSH (datasketch) over
character 4-grams, then verified on the exact shingle sets: a pair matches when its Jaccard
similarity is high (edits, casing, punctuation) or when most of the shorter text is contained in
the longer and it is not much shorter (truncation). Character shingles rather than word
3-shingles, because a single typo destroys three word 3-shingles: on 500 sentences of 10 to 22
words, three character edits left no pair above Jaccard 0.7 with word 3-shingles, and every pair
above the containment threshold with character 4-grams.
"""

from __future__ import annotations

import unicodedata
import zlib

import numpy as np

NUM_PERM = 128
# 32 bands of 4 rows: a pair with Jaccard 0.6 becomes a candidate with probability 0.99, 0.5 with
# 0.87, 0.2 with 0.05 (candidates are verified exactly, so false candidates only cost time). A text
# truncated to 70% has Jaccard about 0.7 with the original; truncated to 50%, about 0.5.
LSH_BANDS, LSH_ROWS = 32, 4
# Below this many words one changed character is a different text ("a photo of a cat" / "car"):
# short texts are compared exactly (and by embedding), not by shingles.
MIN_WORDS = 6


def exact_key(text: str) -> str:
    """What two texts must share to count as the same text."""
    return " ".join(unicodedata.normalize("NFKC", str(text)).casefold().split())


def loose_form(text: str) -> str:
    """The exact key without punctuation, for near-duplicate search (emoji and symbols stay)."""
    kept = (" " if unicodedata.category(ch)[0] == "P" else ch for ch in exact_key(text))
    return " ".join("".join(kept).split())


def shingles(text: str, k: int) -> np.ndarray:
    """Sorted distinct 32-bit hashes of the character k-grams of ``loose_form(text)``.

    A text shorter than k is one shingle; a text of punctuation only has none (it matches nothing).
    """
    form = loose_form(text)
    grams = {form[i : i + k] for i in range(max(1, len(form) - k + 1))} if form else set()
    return np.unique(np.fromiter((zlib.crc32(g.encode()) for g in grams), np.uint32, len(grams)))


def candidate_pairs(sets: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (a < b) of non-empty sets that share at least one MinHash LSH band."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(num_perm=NUM_PERM, params=(LSH_BANDS, LSH_ROWS))
    keys = [i for i, s in enumerate(sets) if len(s)]
    sketches = MinHash.bulk([sets[i] for i in keys], num_perm=NUM_PERM, hashfunc=int)
    with lsh.insertion_session() as session:
        for i, m in zip(keys, sketches):
            session.insert(i, m, check_duplication=False)
    a, b = [], []
    for i, m in zip(keys, sketches):
        for j in lsh.query(m):
            if j > i:
                a.append(i)
                b.append(j)
    return np.array(a, np.int64), np.array(b, np.int64)


def overlap(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Jaccard similarity, containment of the smaller set in the larger, and their size ratio."""
    shared = len(np.intersect1d(x, y, assume_unique=True))
    small, large = sorted((len(x), len(y)))
    return shared / (small + large - shared), shared / small, small / large


def near_pairs(texts: list[str], k: int, jaccard: float, containment: float, length_ratio: float):
    """Pairs (a < b) of near-duplicate texts: (a, b, similarity, criterion) arrays.

    ``similarity`` is the Jaccard similarity of the shingle sets; ``criterion`` says which rule
    matched ("jaccard" or "containment"). Texts under ``MIN_WORDS`` words take no part.
    """
    empty = np.empty(0, np.uint32)
    sets = [shingles(t, k) if len(str(t).split()) >= MIN_WORDS else empty for t in texts]
    cand_a, cand_b = candidate_pairs(sets)
    out_a, out_b, out_s, out_c = [], [], [], []
    for a, b in zip(cand_a.tolist(), cand_b.tolist()):
        jac, con, ratio = overlap(sets[a], sets[b])
        if jac >= jaccard or (con >= containment and ratio >= length_ratio):
            out_a.append(a)
            out_b.append(b)
            out_s.append(jac)
            out_c.append("jaccard" if jac >= jaccard else "containment")
    return np.array(out_a, np.int64), np.array(out_b, np.int64), np.array(out_s, float), np.array(out_c, object)
