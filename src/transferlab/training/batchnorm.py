"""BatchNorm running statistics re-estimated from the current weights ("precise BN").

In evaluation mode a BatchNorm layer normalises by its running mean and variance, an
exponential average of the batch statistics seen in training. With a small momentum the
average remembers the pretrained statistics long after the weights below the layer have
moved: EfficientNet-Lite's layers (ported from TensorFlow) have momentum 0.01, so after the
25 steps of a one-epoch screen a running mean is still 78% (0.99 ** 25) what it was before
training began. The weights are then evaluated with statistics that belong to other weights.
Recomputing the statistics of the layers that trained, as an equal-weight average over a
bounded sample of training items, gives evaluation the statistics of the weights it evaluates
(Wu & Johnson, "Rethinking 'Batch' in BatchNorm", 2021; fvcore's ``update_bn_stats``).

``torch.optim.swa_utils.update_bn`` does the same for every BatchNorm of a model; this version
leaves alone the layers that training keeps frozen (in evaluation mode), whose pretrained
statistics are kept on purpose (``LoopConfig.freeze_batchnorm_stats``).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..devices import to_device


def updating_batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The BatchNorm layers that a forward pass in the model's current modes would update."""
    return [
        m
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training and m.track_running_stats
    ]


@torch.no_grad()
def reestimate_batchnorm(
    model: nn.Module,
    make_batch: Callable[[Sequence, bool], dict],
    items: Sequence,
    batch_size: int = 64,
) -> int:
    """Replace the running statistics of the layers that training updates (those in training
    mode now) by their equal-weight average over ``items`` -> how many layers were re-estimated
    (0 without such a layer or without two items: nothing runs).

    Every other layer runs as in evaluation (no dropout, no drop-connect; BatchNorm layers kept
    frozen use their own statistics), so the statistics are those of the network that will be
    evaluated. ``items`` are training items, prepared as the loop prepares them for training
    (``make_batch(items, True)``, the one call a training item is sure to support); whatever
    random numbers that draws come from a forked generator, so training goes on exactly as it
    would have without the re-estimation.
    """
    layers = updating_batchnorms(model)
    if not layers or len(items) < 2:  # one item has no variance to estimate
        return 0
    dev = next(model.parameters()).device
    modes = {m: m.training for m in model.modules()}
    momenta = {m: m.momentum for m in layers}
    model.eval()
    for m in layers:
        m.train()
        m.reset_running_stats()
        m.momentum = None  # a cumulative average: every batch weighs the same
    try:
        starts = list(range(0, len(items), batch_size))
        if len(items) - starts[-1] < 2 and len(starts) > 1:
            starts.pop()  # a last batch of one item joins the one before
        with torch.random.fork_rng(devices=[dev.index or 0] if dev.type == "cuda" else []):
            for lo, hi in zip(starts, starts[1:] + [len(items)]):
                model(**to_device(make_batch(list(items[lo:hi]), True), dev))
    finally:
        for m, momentum in momenta.items():
            m.momentum = momentum
        for m, training in modes.items():
            m.training = training
    return len(layers)


def reestimate_on_sample(
    model: nn.Module,
    make_batch: Callable[[Sequence, bool], dict],
    train_items: Sequence,
    n_items: int,
    seed: int,
    batch_size: int = 64,
) -> int:
    """``reestimate_batchnorm`` on at most ``n_items`` training items drawn with ``seed`` (the
    same ones at every call); ``n_items`` 0 leaves the running averages as they are."""
    if n_items <= 0 or not updating_batchnorms(model):
        return 0
    pick = np.random.default_rng(seed + 1).permutation(len(train_items))[:n_items]
    return reestimate_batchnorm(model, make_batch, [train_items[i] for i in pick], batch_size)
