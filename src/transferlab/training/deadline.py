"""When training must stop: the deadline a run's time limit sets for the rung that is training.

The run sets it around each rung that trains a backbone (``transferlab.stages.timelimit``); the
training loop checks it after every step and stops at it, keeping the best epoch so far, and
a rung neither starts another learning rate, seed or learning-curve refit once it has passed.
It is wall-clock time (``time.time()``), so a rung fitted in a Ray worker on the same machine
can be given the same instant. No deadline is set without a time limit.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

_deadline: float | None = None


class TimeLimitReached(RuntimeError):
    """Raised to abandon work that is only worth having whole (a learning-curve refit)."""


def current() -> float | None:
    """The deadline in force (``time.time()`` seconds), or None."""
    return _deadline


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
