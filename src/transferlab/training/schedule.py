"""Small pure functions around the loop: the learning-rate schedule, layer-wise learning rates
and unfreezing."""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from ..formats import format_rate  # noqa: F401  (re-exported: training.format_rate)


@dataclass
class ParamGroup:
    name: str
    params: list[nn.Parameter]
    lr: float


def lr_scale(
    step: int, total_steps: int, began: int, warmup_steps: int, decay_fraction: float = 0.2, floor: float = 0.1
) -> float:
    """Multiplier of a group's base learning rate at ``step`` (0-based) of ``total_steps``.

    A linear warm-up over ``warmup_steps`` from ``began`` (the step at which the group was first
    trained, so every newly unfrozen group warms up), then the full rate, then a cosine decay to
    ``floor`` over the last ``decay_fraction`` of the planned steps. Decaying only the tail keeps
    short budgets near the peak: cosine decay to zero over all steps halves the mean rate, which
    cost MobileNetV2 0.126 test accuracy over two epochs (bench/RESULTS.md).
    """
    warm = min(1.0, (step - began + 1) / max(warmup_steps, 1))
    decay_from = total_steps * (1 - decay_fraction)
    if step < decay_from or decay_fraction <= 0:
        return warm
    progress = min((step - decay_from) / max(total_steps - decay_from, 1), 1.0)
    return warm * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def layerwise_groups(
    layer_groups: list[list[nn.Parameter]],
    head: list[nn.Parameter],
    head_lr: float,
    top_ratio: float,
    bottom_ratio: float,
) -> list[ParamGroup]:
    """Backbone groups (stem first) get learning rates falling geometrically from
    ``head_lr * top_ratio`` at the top block to ``head_lr * bottom_ratio`` at the stem;
    the new head, last, trains at ``head_lr``."""
    k = len(layer_groups)
    out = []
    for i, params in enumerate(layer_groups):
        # i = k-1 is the top block; fraction 0 at the top, 1 at the stem
        frac = (k - 1 - i) / (k - 1) if k > 1 else 0.0
        lr = head_lr * top_ratio * (bottom_ratio / top_ratio) ** frac
        out.append(ParamGroup(f"backbone[{i}]", params, lr))
    out.append(ParamGroup("head", head, head_lr))
    return out


def unfrozen_groups(n_backbone_groups: int, stages: int, epoch: int) -> set[int]:
    """Indices trainable at ``epoch`` (1-based) of gradual unfreezing: the head (index
    ``n_backbone_groups``) always, plus the top ``ceil(stage * n / stages)`` backbone groups,
    one more stage each epoch until everything trains."""
    stage = min(max(epoch, 1), stages)
    n_open = math.ceil(stage * n_backbone_groups / stages)
    return {n_backbone_groups} | set(range(n_backbone_groups - n_open, n_backbone_groups))


def uniform_groups(layer_groups: list[list[nn.Parameter]], head: list[nn.Parameter], lr: float) -> list[ParamGroup]:
    """One learning rate for everything (the ``full`` and ``scratch`` rungs)."""
    return [ParamGroup(f"backbone[{i}]", p, lr) for i, p in enumerate(layer_groups)] + [ParamGroup("head", head, lr)]
