"""The feature stores a run builds, each a ``FeatureStore`` (``transferlab.features.store``): the
features of one backbone extracted lazily per split and cached (or taken from the audit's
embeddings), the same arrays preloaded in a Ray task, and a view of either for a redrawn
train/validation split, which looks examples up by content hash."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import RunSpec
from ..data import Task
from ..features.store import FeatureStore
from ..progress import Progress


@dataclass
class AuditEmbedding:
    """Every example embedded by the first backbone for the audit's near-duplicate search, kept so
    that the rungs on that backbone do not embed the same examples again."""

    backbone: str
    rows: dict[str, int]  # content hash -> row of ``features``
    features: np.ndarray  # (N, D)
    seconds: float
    items: int
    from_cache: bool


class CachedFeatures:
    """Lazily extracted, cached features of one backbone, per split."""

    def __init__(self, backbone, task: Task, spec: RunSpec, progress: Progress, embedded: AuditEmbedding | None = None):
        self.backbone, self.spec, self.progress = backbone, spec, progress
        self.task = task.without_test_labels()  # rungs reach it through ctx.features: items and hashes only
        self._arrays: dict[str, np.ndarray] = {}
        self.embedded = embedded
        self.seconds = 0.0  # embedding time, as measured when the features were extracted
        self.items = 0
        self.from_cache = True

    def __call__(self, split: str) -> np.ndarray:
        if split in self._arrays:
            return self._arrays[split]
        hashes = self.task.part_hashes(split)
        if self.embedded is not None and all(h in self.embedded.rows for h in hashes):
            rows = [self.embedded.rows[h] for h in hashes]  # already embedded for the audit
            self._arrays[split] = np.asarray(self.embedded.features)[rows]
            self.seconds += self.embedded.seconds * len(rows) / self.embedded.items
            self.items += len(rows)
            self.from_cache = self.from_cache and self.embedded.from_cache
            return self._arrays[split]
        from ..features import extract

        items = self.task.part(split)[0]
        with self.progress.task(f"embed {split} with {self.backbone.name}", len(items)) as update:
            ex = extract(
                self.backbone,
                items,
                hashes,
                cache_dir=self.spec.cache_dir,
                batch_size=self.spec.extract_batch_size,
                progress=update,
            )
        self._arrays[split] = ex.features
        self.seconds += ex.seconds
        self.items += len(items)
        self.from_cache = self.from_cache and ex.from_cache
        return self._arrays[split]

    @property
    def items_per_second(self) -> float | None:
        return self.items / self.seconds if self.seconds > 0 else None

    def view(self, task: Task) -> FeatureStore:
        """The same features for another train/validation draw of this task (same examples)."""
        return FeatureView(self, task)


def feature_stores(
    backbones: list, task: Task, spec: RunSpec, progress: Progress, embedded: AuditEmbedding | None
) -> dict[str, FeatureStore]:
    """One lazily filled store per backbone; the audit's backbone starts from the audit's embeddings."""
    return {
        b.name: CachedFeatures(b, task, spec, progress, embedded if embedded and embedded.backbone == b.name else None)
        for b in backbones
    }


class PreloadedFeatures:
    """The driver's features of one backbone, as a Ray task sees them (same arrays, same timings)."""

    def __init__(self, arrays: dict[str, np.ndarray], seconds: float, items: int, task: Task):
        self._arrays, self.seconds, self.items, self.from_cache = arrays, seconds, items, True
        self.task = task.without_test_labels()  # what the rung may see: items and hashes, no test labels

    def __call__(self, split: str) -> np.ndarray:
        return self._arrays[split]

    @property
    def items_per_second(self) -> float | None:
        return self.items / self.seconds if self.seconds > 0 else None

    def view(self, task: Task) -> FeatureStore:
        return FeatureView(self, task)


class FeatureView:
    """Features of a redrawn task, looked up by content hash in the original split's features.

    Its cost is the base store's: the view reads the arrays the base extracted."""

    def __init__(self, base: FeatureStore, task: Task):
        self.base, self.task = base, task.without_test_labels()  # a rung reaches it: no test labels
        self._rows: dict[str, tuple[str, int]] | None = None

    def __call__(self, split: str) -> np.ndarray:
        if self._rows is None:
            self._rows = {
                h: (s, i) for s in ("train", "val", "test") for i, h in enumerate(self.base.task.part_hashes(s))
            }
        found = [self._rows[h] for h in self.task.part_hashes(split)]
        arrays = {s: np.asarray(self.base(s)) for s in {s for s, _ in found}}
        if not found:
            return np.zeros((0, np.asarray(self.base("train")).shape[1]), dtype=np.float32)
        return np.stack([arrays[s][i] for s, i in found])

    @property
    def seconds(self) -> float:
        return self.base.seconds

    @property
    def items(self) -> int:
        return self.base.items

    @property
    def from_cache(self) -> bool:
        return self.base.from_cache

    @property
    def items_per_second(self) -> float | None:
        return self.base.items_per_second

    def view(self, task: Task) -> FeatureStore:
        """Another draw of the same examples: looked up in the base store, like this one."""
        return FeatureView(self.base, task)
