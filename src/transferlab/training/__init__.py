"""One training loop for every trainable rung, and the schedules around it."""

from .loop import FitResult, LoopConfig, ParamGroup, fit, predict_logits, set_trainable
from .schedule import layerwise_groups, uniform_groups, unfrozen_groups

__all__ = ["fit", "predict_logits", "set_trainable", "LoopConfig", "ParamGroup", "FitResult",
           "layerwise_groups", "uniform_groups", "unfrozen_groups"]
