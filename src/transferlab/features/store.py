"""What a rung and the ranking read features through: one backbone's features of a task's examples.

Declared here, beside extraction, so that rungs can name it without knowing the run;
``transferlab.stages.features`` holds the stores a run builds (extracted and cached, preloaded
in a Ray task, or a view of either for a redrawn train/validation split).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ..data import Task


class FeatureStore(Protocol):
    """One backbone's features of ``task``'s examples, per split, with what extracting them cost."""

    @property
    def task(self) -> Task:
        """The examples the features are of (test labels hidden: a rung reaches the store)."""
        ...

    @property
    def seconds(self) -> float:
        """Time spent embedding the examples read so far."""
        ...

    @property
    def items(self) -> int:
        """How many examples the ``seconds`` were spent on."""
        ...

    @property
    def from_cache(self) -> bool:
        """Whether every split read so far came from the on-disk cache."""
        ...

    @property
    def items_per_second(self) -> float | None: ...

    def __call__(self, split: str) -> np.ndarray:
        """The (N, D) features of ``split``'s examples, in the split's order."""
        ...

    def view(self, task: Task) -> FeatureStore:
        """The same features for another train/validation draw of the same examples."""
        ...
