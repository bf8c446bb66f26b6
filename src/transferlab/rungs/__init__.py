"""The ladder: one module per rung, all behind one registry."""

from . import classical, frozen, lora, majority, small, trainable, zero_shot  # noqa: F401  (registration)
from .base import RUNGS, Context, Rung, RungOutput

__all__ = ["RUNGS", "Rung", "Context", "RungOutput"]
