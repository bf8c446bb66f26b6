"""Small pure functions for the disciplined fine-tune: layer-wise learning rates and unfreezing."""

from __future__ import annotations

import math

from torch import nn

from .loop import ParamGroup


def layerwise_groups(layer_groups: list[list[nn.Parameter]], head: list[nn.Parameter], head_lr: float,
                     top_ratio: float, bottom_ratio: float) -> list[ParamGroup]:
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
