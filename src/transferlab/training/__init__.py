"""One training loop for every trainable rung, and the schedules around it."""

from .loop import FitResult, LoopConfig, fit, fit_epochs, predict_logits, set_trainable
from .schedule import ParamGroup, format_rate, layerwise_groups, lr_scale, unfrozen_groups, uniform_groups

__all__ = [
    "fit",
    "fit_epochs",
    "predict_logits",
    "set_trainable",
    "LoopConfig",
    "ParamGroup",
    "FitResult",
    "format_rate",
    "layerwise_groups",
    "lr_scale",
    "uniform_groups",
    "unfrozen_groups",
]
