"""Identical and nearly identical examples, found once per audit for every check that needs them.

Exact duplicates are grouped by a content key (normalised text, decoded pixels, raw bytes).
Near-duplicate search then runs on one representative per (exact group, split) cell, so a
thousand copies of the same text cost one search, and each near pair found is expanded to every
member of the cell in the earlier split: pairs always point from the copy a deduplication would
drop to the copy it keeps, in split order train < val < test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Callable, ClassVar

import numpy as np

from ...data.splits import Task
from ..base import SPLIT_RANK, AuditInputs
from . import images, texts, vectors


@dataclass
class Pairs:
    """Pairs of example indices (a, b) with their similarity and how they were found."""

    a: np.ndarray
    b: np.ndarray
    similarity: np.ndarray
    method: np.ndarray

    @classmethod
    def empty(cls) -> Pairs:
        return cls(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0), np.empty(0, object))

    @classmethod
    def concat(cls, parts: list[Pairs]) -> Pairs:
        parts = [p for p in parts if len(p)] or [cls.empty()]
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("a", "b", "similarity", "method")))

    def __len__(self) -> int:
        return len(self.a)

    def select(self, mask: np.ndarray) -> Pairs:
        return Pairs(self.a[mask], self.b[mask], self.similarity[mask], self.method[mask])

    def as_list(self) -> list[tuple[int, int]]:
        return list(zip(self.a.tolist(), self.b.tolist()))


@dataclass
class Matches:
    group: np.ndarray  # (N,) exact-duplicate group id: equal ids mean the same content
    exact: Pairs  # within each (group, split) cell to its first member, and across splits to the latest copy
    near: Pairs  # near-duplicates between different exact groups, earlier split first
    calibration: dict = field(default_factory=dict)  # thresholds chosen on this data, and why


class Matcher:
    """Thresholds for "nearly identical". Change them on the class (or a subclass) to tune."""

    text_shingle: ClassVar[int] = 4  # characters per shingle
    text_jaccard: ClassVar[float] = 0.7
    text_containment: ClassVar[float] = 0.8  # share of the shorter text's shingles found in the longer
    text_length_ratio: ClassVar[float] = 0.5  # ...when it is at least this long relative to the longer
    image_phash_bits: ClassVar[int] = 10  # candidates: differing bits of 64 in the perceptual hash
    # Confirmed: correlation of aligned grayscale thumbnails, between these two bounds depending on
    # how alike random same-class images are (images.calibrated_threshold; bench/image_pairs.py)
    image_correlation_low: ClassVar[float] = 0.97
    image_correlation_high: ClassVar[float] = 0.99
    image_shape_reference: ClassVar[float] = 0.4
    # Cosine similarity of L2-normalised embeddings, set above the closest distinct pairs seen in
    # calibration: all-MiniLM-L6-v2 on synthetic sentences 0.84 and on 2,000 Amazon reviews 0.88;
    # EfficientNet-Lite0 on random drawings 0.93. Audio has no calibration and gets the strictest.
    cosine: ClassVar[dict[str, float]] = {"text": 0.96, "image": 0.97, "audio": 0.97}
    exact_index_limit: ClassVar[int] = 20_000  # above this, an approximate faiss index

    def settings(self) -> tuple:
        return (
            self.text_shingle,
            self.text_jaccard,
            self.text_containment,
            self.text_length_ratio,
            self.image_phash_bits,
            self.image_correlation_low,
            self.image_correlation_high,
            self.image_shape_reference,
            tuple(sorted(self.cosine.items())),
            self.exact_index_limit,
        )

    def find(self, inputs: AuditInputs) -> Matches:
        key = ("matches", type(self).__name__, self.settings())
        if key not in inputs.cache:
            inputs.cache[key] = self._find(inputs)
        return inputs.cache[key]

    def _find(self, inputs: AuditInputs) -> Matches:
        task = inputs.task
        rank = np.array([SPLIT_RANK[s] for s in task.split], dtype=np.int64)
        calibration: dict = {}
        keys, search, grays = self._keys_and_search(task, calibration)
        group = np.unique(np.array(keys, dtype=object), return_inverse=True)[1].astype(np.int64)
        cell = group * len(SPLIT_RANK) + rank
        _, reps, cell_of = np.unique(cell, return_index=True, return_inverse=True)
        parts = [search(reps)] if search else []
        if inputs.features is not None:
            parts.append(self._feature_pairs(inputs.features[reps], task, reps, calibration, grays))
        found = Pairs.concat(parts)
        found = Pairs(reps[found.a], reps[found.b], found.similarity, found.method)
        found = found.select(group[found.a] != group[found.b])
        return Matches(group, exact_pairs(group, rank, cell_of), expand(_unique(found), rank, cell_of), calibration)

    def _keys_and_search(
        self, task: Task, calibration: dict
    ) -> tuple[list[str], Callable[[np.ndarray], Pairs] | None, images.Grays | None]:
        """Each item's exact-duplicate key, the near-duplicate search of its modality (if any), and
        for images the grey copies their pairs are confirmed on."""
        if task.modality == "text":
            return [texts.exact_key(t) for t in task.items], partial(self._text_pairs, task.items), None
        if task.modality == "image":
            keys, phash, grays = images.signatures(task.items)
            threshold, median = images.calibrated_threshold(
                grays, task.y, self.image_correlation_low, self.image_correlation_high, self.image_shape_reference
            )
            calibration.update(image_correlation=threshold, same_class_median_correlation=median)
            return keys, partial(self._image_pairs, grays, phash, threshold), grays
        return list(task.hashes), None, None  # other modalities: raw bytes here, embeddings for near copies

    def _text_pairs(self, items: list[str], reps: np.ndarray) -> Pairs:
        a, b, sim, rule = texts.near_pairs(
            [items[i] for i in reps],
            self.text_shingle,
            self.text_jaccard,
            self.text_containment,
            self.text_length_ratio,
        )
        return Pairs(a, b, sim, np.array([f"text shingles ({r})" for r in rule], dtype=object))

    def _image_pairs(self, grays: images.Grays, phash: np.ndarray, threshold: float, reps: np.ndarray) -> Pairs:
        a, b, corr, how = images.near_pairs(grays.subset(reps), phash[reps], self.image_phash_bits, threshold)
        return Pairs(a, b, corr, np.array([f"perceptual hash, pixel correlation ({h})" for h in how], dtype=object))

    def _feature_pairs(
        self, features: np.ndarray, task: Task, reps: np.ndarray, calibration: dict, grays: images.Grays | None
    ) -> Pairs:
        """Pairs whose embeddings nearly coincide. For images an embedding says "the same kind of
        picture", not "the same picture" (two shirts of one cut embed alike), so image pairs found
        this way must also pass the pixel confirmation."""
        threshold = self.cosine.get(task.modality, max(self.cosine.values()))
        a, b, sim = vectors.cosine_pairs(features, threshold, self.exact_index_limit)
        if task.modality != "image" or not len(a):
            return Pairs(a, b, sim, np.full(len(a), "embedding cosine", dtype=object))
        assert grays is not None  # images: made by the hashing pass
        lo, hi, corr, how = images.confirm_pairs(grays.subset(reps), a, b, calibration["image_correlation"])
        return Pairs(lo, hi, corr, np.array([f"embedding cosine, pixel correlation ({h})" for h in how], dtype=object))


def find_matches(inputs: AuditInputs) -> Matches:
    return Matcher().find(inputs)


def image_search_cost(items: list, seconds: float = 1.0) -> dict:
    """The image near-duplicate search's cost on a sample of ``items`` (``images.search_cost``), at
    the ``Matcher``'s hash radius: what a run plan prices the image audit by."""
    return images.search_cost(items, Matcher.image_phash_bits, seconds)


def _unique(pairs: Pairs) -> Pairs:
    """One entry per unordered pair (the first method that found it)."""
    lo, hi = np.minimum(pairs.a, pairs.b), np.maximum(pairs.a, pairs.b)
    _, first = np.unique(lo * (int(hi.max(initial=0)) + 1) + hi, return_index=True)
    first = np.sort(first)
    return Pairs(lo[first], hi[first], pairs.similarity[first], pairs.method[first])


def _cell_members(cell_of: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Items sorted by cell, with each cell's start offset and size."""
    order = np.argsort(cell_of, kind="stable")
    size = np.bincount(cell_of)
    return order, np.concatenate([[0], np.cumsum(size)[:-1]]), size


def expand(pairs: Pairs, rank: np.ndarray, cell_of: np.ndarray) -> Pairs:
    """Turn representative pairs into (member of the earlier-split cell, later representative)."""
    swap = rank[pairs.a] > rank[pairs.b]
    early, late = np.where(swap, pairs.b, pairs.a), np.where(swap, pairs.a, pairs.b)
    order, start, size = _cell_members(cell_of)
    n = size[cell_of[early]]
    offset = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    members = order[np.repeat(start[cell_of[early]], n) + offset]
    return Pairs(members, np.repeat(late, n), np.repeat(pairs.similarity, n), np.repeat(pairs.method, n))


def exact_pairs(group: np.ndarray, rank: np.ndarray, cell_of: np.ndarray) -> Pairs:
    """Star-shaped pairs that link every copy to one kept copy, in linear size.

    Within a split, each copy points to the first one; across splits, each copy in an earlier
    split points to the group's first copy in its latest split.
    """
    order, start, _ = _cell_members(cell_of)
    cell_first = order[start]  # the first member of each cell
    within = np.flatnonzero(cell_first[cell_of] != np.arange(len(group)))
    by_group = np.lexsort((np.arange(len(group)), -rank, group))  # per group: latest split, then first
    latest = by_group[np.unique(group[by_group], return_index=True)[1]]
    across = np.flatnonzero(rank < rank[latest[group]])
    a = np.concatenate([within, across])
    b = np.concatenate([cell_first[cell_of[within]], latest[group[across]]])
    return Pairs(a, b, np.ones(len(a)), np.full(len(a), "exact", dtype=object))
