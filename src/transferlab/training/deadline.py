"""When training must stop: the deadline a run's time limit sets for the rung that is training.

The run sets it around each rung that trains a backbone (``transferlab.stages.timelimit``); the
training loop checks it after every step and stops at it, keeping the best epoch so far, and
a rung neither starts another learning rate, seed or learning-curve refit once it has passed.
It is wall-clock time (``time.time()``), so a rung fitted in a Ray worker on the same machine
can be given the same instant. No deadline is set without a time limit.

A training step's speed drifts by 10% and more over minutes on a shared machine, more than any
probe of a few seconds can foresee, so a run that trains to a fixed number of steps ends early or
is stopped part-way. With ``filling``, the loop instead re-plans its steps from the speed it
measures, so the run ends its schedule (the decay included) at its deadline.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

_deadline: float | None = None
_fill_epochs: float | None = None


class TimeLimitReached(RuntimeError):
    """Raised to abandon work that is only worth having whole (a learning-curve refit)."""


def current() -> float | None:
    """The deadline in force (``time.time()`` seconds), or None."""
    return _deadline


def fill_epochs() -> float | None:
    """Most epochs a training run may stretch to while filling the time to its deadline (``filling``), or None."""
    return _fill_epochs if _deadline is not None else None


@contextmanager
def filling(most_epochs: float | None) -> Iterator[None]:
    """Inside the block, a training run with a deadline re-plans its number of steps as it measures
    them: more when they run faster than the plan said, up to ``most_epochs``, fewer when slower
    (``training.loop``). The run sets it for a rung that trains once (one seed, no learning-curve
    refits), the only case where the rung's deadline is all that one training run has."""
    global _fill_epochs
    before = _fill_epochs
    _fill_epochs = most_epochs
    try:
        yield
    finally:
        _fill_epochs = before


def passed() -> bool:
    return _deadline is not None and time.time() >= _deadline


def seconds_left() -> float | None:
    return None if _deadline is None else _deadline - time.time()


@contextmanager
def deadline(at: float | None) -> Iterator[None]:
    """``at`` (``time.time()`` seconds, or None for none) in force inside the block; nested blocks
    keep the earlier of the two."""
    global _deadline
    before = _deadline
    _deadline = at if before is None else (before if at is None else min(at, before))
    try:
        yield
    finally:
        _deadline = before
