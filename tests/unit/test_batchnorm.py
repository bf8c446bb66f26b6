"""BatchNorm statistics re-estimated before validation: evaluation must see the statistics of the
weights it evaluates, not running averages that lag behind them (momentum 0.01, as in
EfficientNet-Lite)."""

import numpy as np
import pytest
import torch
from torch import nn

from transferlab.training import LoopConfig, ParamGroup, fit, fit_epochs
from transferlab.training.batchnorm import reestimate_batchnorm, reestimate_on_sample


class _SlowBNNet(nn.Module):
    """linear -> BatchNorm (momentum 0.01) -> ReLU -> dropout -> linear."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16, momentum=0.01), nn.ReLU(), nn.Dropout(0.2))
        self.head = nn.Linear(16, 2)

    def forward(self, x):
        return self.head(self.body(x))


def _data(n=128, seed=0):
    """Two classes far from the origin: the BatchNorm's initial statistics (mean 0, variance 1)
    are far from those of its inputs, as pretrained statistics are from a new domain's."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = (rng.normal(size=(n, 4)) + 6 + 3 * y[:, None]).astype(np.float32)
    return list(x), y


def _make_batch(rows, train):
    return {"x": torch.from_numpy(np.stack(rows))}


def _bn_inputs(net, rows):
    """What the BatchNorm layer normalises, under the current weights."""
    with torch.no_grad():
        return net.body[0](torch.from_numpy(np.stack(rows)))


def _train(batchnorm_items, epochs=2, freeze=False):
    torch.manual_seed(0)
    net = _SlowBNNet()
    items, y = _data()
    result = fit(
        net,
        _make_batch,
        (items, y),
        (items, y),
        [ParamGroup("all", list(net.parameters()), 0.01)],
        # one batch of statistics: its variance is the whole sample's, to compare exactly
        LoopConfig(epochs=epochs, batch_size=32, patience=5, eval_batch_size=128, batchnorm_items=batchnorm_items)
        if not freeze
        else LoopConfig(epochs=epochs, batch_size=32, batchnorm_items=batchnorm_items, freeze_batchnorm_stats=True),
    )
    return net, items, y, result


@pytest.mark.parametrize("items", [0, 128])
def test_evaluation_uses_the_statistics_of_the_trained_weights(items):
    net, rows, y, result = _train(items)
    bn = net.body[1]
    inputs = _bn_inputs(net, rows)
    fresh = torch.allclose(bn.running_mean, inputs.mean(0), atol=1e-4) and torch.allclose(
        bn.running_var, inputs.var(0), rtol=1e-3
    )
    assert fresh == bool(items)  # momentum 0.01 over 8 steps: the running mean is still 92% the initial 0
    assert result.batchnorm_layers == (1 if items else 0)
    # evaluation then predicts as the whole training set normalised by its own statistics does
    net.eval()
    with torch.no_grad():
        eval_pred = net(**_make_batch(rows, False)).argmax(1)
        net.body[1].train()
        batch_pred = net(**_make_batch(rows, False)).argmax(1)
    agree = float((eval_pred == batch_pred).float().mean())
    assert (agree == 1.0) if items else (agree < 0.9)


def _augmenting_batch(rows, train):
    """Training batches get random noise, as image augmentation draws random numbers."""
    x = torch.from_numpy(np.stack(rows))
    return {"x": x + 0.1 * torch.randn_like(x) if train else x}


def test_reestimation_changes_only_the_statistics_not_the_training():
    """Its random numbers (the training inputs' augmentation) come from a forked generator and
    dropout is off while it runs, so the weights train exactly as without it."""
    runs = []
    for items in (0, 128):
        torch.manual_seed(0)
        net = _SlowBNNet()
        rows, y = _data()
        run = fit_epochs(
            net,
            _augmenting_batch,
            (rows, y),
            (rows, y),
            [ParamGroup("all", list(net.parameters()), 0.01)],
            LoopConfig(epochs=3, batch_size=32, patience=5, batchnorm_items=items),
        )
        next(run)
        next(run)
        runs.append([p.detach().clone() for p in net.parameters()])
        run.close()
    assert all(torch.equal(a, b) for a, b in zip(*runs))


def test_layers_kept_frozen_keep_their_statistics():
    net, rows, y, result = _train(128, freeze=True)
    assert result.batchnorm_layers == 0
    assert torch.equal(net.body[1].running_mean, torch.zeros(16))


def test_modes_and_momentum_are_restored():
    torch.manual_seed(0)
    net = _SlowBNNet().train()
    rows, _ = _data(33)
    assert reestimate_batchnorm(net, _make_batch, rows, batch_size=16) == 1  # 16 + 17: no batch of one
    assert net.training and all(m.training for m in net.modules())
    assert net.body[1].momentum == 0.01
    batch_means = (_bn_inputs(net, rows[:16]).mean(0) + _bn_inputs(net, rows[16:]).mean(0)) / 2
    assert torch.allclose(net.body[1].running_mean, batch_means, atol=1e-4)  # every batch weighs the same


def test_no_batchnorm_is_a_no_op():
    """Text encoders (LayerNorm) and frozen BatchNorm layers: nothing runs, nothing changes."""

    def refuse(rows, train):
        raise AssertionError("no forward pass expected")

    net = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2)).train()
    assert reestimate_on_sample(net, refuse, _data()[0], 64, seed=0) == 0
    frozen = _SlowBNNet().train()
    frozen.body[1].eval()  # as the loop leaves a BatchNorm whose statistics it keeps
    assert reestimate_on_sample(frozen, refuse, _data()[0], 64, seed=0) == 0
    assert reestimate_on_sample(_SlowBNNet().train(), refuse, _data()[0], 0, seed=0) == 0


def test_full_keeps_the_recomputed_statistics_and_says_so(tiny_torchvision_weights, image_folder):
    from transferlab.backbones import resolve
    from transferlab.config import RunSpec
    from transferlab.rungs import RUNGS
    from transferlab.rungs.base import Context
    from transferlab.runner import prepare_task

    backbone = resolve(f"torchvision:mobilenet_v3_small@{tiny_torchvision_weights}", image_size=32)
    spec = RunSpec(epochs=1, batch_size=8, lr_factors=[1])
    ctx = Context(prepare_task(str(image_folder), spec), spec, 0, backbone, None)
    out = RUNGS.get("full")().run(ctx)
    n_train = len(ctx.train()[0])
    assert out.chosen["batchnorm_stats_items"] == n_train  # fewer than the 256 the rung samples
    assert any(n.startswith("BatchNorm statistics of the") and f"on {n_train} training items" in n for n in out.notes)
    # the model that predicts holds the statistics of its own weights on that sample (the same
    # augmentation too: the rung's re-estimation drew its random numbers from a forked generator
    # and nothing has drawn any since)
    model = out.model.model
    saved = {k: v.clone() for k, v in model.state_dict().items() if k.endswith(("running_mean", "running_var"))}
    model.train()
    reestimate_on_sample(model, backbone.preprocess, ctx.train()[0], 256, ctx.seed, spec.extract_batch_size)
    model.eval()
    assert saved and all(torch.allclose(v, model.state_dict()[k], atol=1e-5) for k, v in saved.items())
