"""Learning rates on evidence: the schedule's shape, the screen of rates, and the verdicts that cite it."""

import numpy as np
import pytest

from transferlab.evaluation import evaluate
from transferlab.formats import format_rate
from transferlab.training import lr_scale
from transferlab.verdicts import VerdictContext, run_verdicts

CLASSES = ["a", "b"]
RNG = np.random.default_rng(0)
Y = RNG.integers(0, 2, 400)
Y_TRAIN = RNG.integers(0, 2, 800)


def _mean_scale(steps_per_epoch: int, epochs: int, **kw) -> float:
    total = steps_per_epoch * epochs
    warmup = max(1, int(0.1 * steps_per_epoch))
    return float(np.mean([lr_scale(s, total, 0, warmup, **kw) for s in range(total)]))


def test_schedule_keeps_a_two_epoch_budget_near_the_peak():
    # 13 steps per epoch: 400 images in batches of 32, the size that showed the problem
    assert _mean_scale(13, 2) > 0.85
    assert _mean_scale(100, 2) > 0.85
    # the schedule it replaces (cosine to zero over every step) halves the mean rate
    assert _mean_scale(13, 2, decay_fraction=1.0, floor=0.0) < 0.55


def test_schedule_warms_up_each_group_and_ends_at_the_floor():
    total = 100
    assert lr_scale(0, total, 0, 5) == pytest.approx(0.2)
    assert lr_scale(4, total, 0, 5) == pytest.approx(1.0)
    assert lr_scale(50, total, 50, 5) == pytest.approx(0.2)  # a group unfrozen at step 50 warms up again
    assert lr_scale(60, total, 0, 5) == pytest.approx(1.0)  # constant before the tail
    assert lr_scale(total - 1, total, 0, 5) == pytest.approx(0.1, abs=0.01)
    tail = [lr_scale(s, total, 0, 5) for s in range(80, total)]
    assert all(a >= b for a, b in zip(tail, tail[1:]))


def _pred(acc, seed):
    rng = np.random.default_rng(seed)
    return np.where(rng.random(len(Y)) < acc, Y, 1 - Y)


def _rung(name, strategy, pred, val=None, chosen=None, curves=None):
    test = evaluate(Y, pred, CLASSES)
    val = test["accuracy"]["mean"] if val is None else val  # rules choose rungs on validation
    return {
        "name": name,
        "strategy": strategy,
        "backbone": "m",
        "test": test,
        "val": {"accuracy": {"mean": val}},
        "predictions": {"test": pred.tolist()},
        "curves": curves or {},
        "cost": {"fit_seconds": 1.0},
        "chosen": chosen or {},
    }


def _trials(*rows):
    """(lr, factor, screen validation score, kept) -> lr_trials as the trained rungs record them."""
    return [
        {
            "lr": lr,
            "factor": f,
            "chosen": kept,
            "screen_epochs": 1,
            "screen_val_metric": v,
            "val_metric": v + (0.02 if kept else 0.0),
            "epochs": 3 if kept else 1,
            "curves": {},
        }
        for lr, f, v, kept in rows
    ]


def _verdicts(rungs):
    return run_verdicts(VerdictContext(rungs, Y, Y_TRAIN, CLASSES, "accuracy"))


def test_rate_100x_too_high_gives_learning_rate_too_high_with_the_fixing_rate():
    trials = _trials((1e-2, 1.0, 0.36, False), (1e-3, 0.1, 0.55, False), (1e-4, 0.01, 0.89, True))
    full = _rung("full:m", "full", _pred(0.9, 2), chosen={"lr": 1e-4, "lr_factor": 0.01, "lr_trials": trials})
    frozen = _rung("frozen:m", "frozen", _pred(0.9, 1), val=0.88)
    found = [v for v in _verdicts([frozen, full]) if v["code"] == "learning_rate_too_high"]
    assert len(found) == 1
    v = found[0]
    assert v["evidence"]["too_high"] == {"lr": 1e-2, "val_metric": 0.36}
    assert v["evidence"]["fixed_by"]["lr"] == 1e-4 and v["evidence"]["fixed_by"]["val_metric"] == 0.89
    assert "1e-2" in v["message"] and "0.360" in v["message"] and "1e-4" in v["message"] and "0.890" in v["message"]
    assert "below the 0.880" in v["message"]  # the frozen rung's validation score it had to keep
    assert v["severity"] == "warning"
    # too low the other way round: the recipe's rate under-trains, a higher one was kept
    low = _trials((1e-3, 10.0, 0.70, True), (1e-4, 1.0, 0.48, False), (1e-5, 0.1, 0.09, False))
    full["chosen"] = {"lr": 1e-3, "lr_factor": 10.0, "lr_trials": low}
    [v] = [v for v in _verdicts([frozen, full]) if v["code"].startswith("learning_rate")]
    assert v["code"] == "learning_rate_too_low" and v["evidence"]["too_low"] == {"lr": 1e-4, "val_metric": 0.48}
    assert v["evidence"]["fixed_by"]["lr"] == 1e-3 and "0.480" in v["message"] and "0.700" in v["message"]
    # the recipe's own rate kept: nothing was too high or too low
    kept_default = _trials((1e-3, 10.0, 0.36, False), (1e-4, 1.0, 0.89, True), (1e-5, 0.1, 0.85, False))
    ok = _rung("full:m", "full", _pred(0.9, 2), chosen={"lr": 1e-4, "lr_factor": 1.0, "lr_trials": kept_default})
    assert not [v for v in _verdicts([frozen, ok]) if v["code"].startswith("learning_rate")]


def _forgetting(rungs):
    return [v for v in _verdicts(rungs) if v["code"] == "catastrophic_forgetting"]


def test_forgetting_message_says_only_one_rate_was_tried():
    frozen = _rung("frozen:m", "frozen", _pred(0.9, 1), val=0.88)
    full = _rung("full:m", "full", _pred(0.6, 2), chosen={"lr": 1e-4, "lr_factor": 1.0})
    [v] = _forgetting([frozen, full])
    assert v["evidence"]["learning_rates"]["tried"] == []
    assert "Only one learning rate was tried (1e-4)" in v["message"] and "still rising" not in v["message"]
    # a curve still climbing at its last epoch: said, with the curve, as possible under-training
    full["curves"] = {"epoch": [1, 2, 3], "val_metric": [0.48, 0.715, 0.81], "train_metric": [0.5, 0.7, 0.8]}
    [v] = _forgetting([frozen, full])
    assert v["evidence"]["still_rising"] == [0.48, 0.715, 0.81]
    assert "still rising at the last epoch (0.480, 0.715, 0.810)" in v["message"]


def test_forgetting_message_lists_the_rates_tried_and_whether_a_lower_one_avoided_it():
    frozen = _rung("frozen:m", "frozen", _pred(0.9, 1), val=0.88)
    trials = _trials((1e-3, 10.0, 0.40, False), (1e-4, 1.0, 0.62, True), (1e-5, 0.1, 0.60, False))
    full = _rung("full:m", "full", _pred(0.6, 2), chosen={"lr": 1e-4, "lr_factor": 1.0, "lr_trials": trials})
    [v] = _forgetting([frozen, full])
    rates = v["evidence"]["learning_rates"]
    assert rates["lower_rate_avoided_it"] is False and rates["reference"] == 0.88
    for t in rates["tried"]:
        assert f"at {format_rate(t['lr'])}" in v["message"] and f"{t['val_metric']:.3f}" in v["message"]
    assert "No lower rate avoided it" in v["message"]
    # the kept rate was the lowest tried: the message says no lower one was tried, not that none helped
    lowest = _trials((1e-3, 10.0, 0.40, False), (1e-4, 1.0, 0.62, True))
    full["chosen"] = {"lr": 1e-4, "lr_factor": 1.0, "lr_trials": lowest}
    [v] = _forgetting([frozen, full])
    assert v["evidence"]["learning_rates"]["lower_rate_avoided_it"] is None
    assert "No rate below 1e-4 was tried" in v["message"]


def test_screen_keeps_the_lower_rate_when_the_recipe_rate_is_far_too_high(tiny_bert, reviews_csv, tmp_path):
    """A real run: full's rate 100x too high (0.1 for AdamW) against one 100x lower."""
    import transferlab

    r = transferlab.run(
        reviews_csv,
        text_column="review",
        label_column="stars",
        backbones=[f"hf:{tiny_bert}"],
        rungs=["frozen", "full"],
        out=str(tmp_path / "run"),
        epochs=2,
        max_length=16,
        quiet=True,
        lr=1e-3,
        top_lr_ratio=100,
        lr_factors=[1, 0.01],
        seeds=1,
        learning_curve=False,
        corruptions=False,
    )
    full = [x for x in r["rungs"] if x["strategy"] == "full"][0]
    chosen = full["chosen"]
    assert chosen["lr"] == pytest.approx(1e-3) and chosen["lr_factor"] == 0.01
    trials = {t["factor"]: t for t in chosen["lr_trials"]}
    assert set(trials) == {1.0, 0.01} and trials[0.01]["chosen"] and not trials[1.0]["chosen"]
    assert trials[1.0]["epochs"] == 1 and trials[0.01]["epochs"] == len(full["curves"]["epoch"])
    assert trials[0.01]["curves"]["val_metric"] == full["curves"]["val_metric"]
    assert any("Learning rate chosen on validation" in n for n in full["notes"])
    # a text encoder has no BatchNorm: nothing recomputed, nothing said
    assert "batchnorm_stats_items" not in chosen and not any("BatchNorm" in n for n in full["notes"])


def test_lr_factors_setting_is_validated():
    from transferlab.config import RunSpec
    from transferlab.errors import ConfigError

    assert RunSpec(lr_factors="10, 1,0.1").lr_factors == [10.0, 1.0, 0.1]
    for bad in ([], [1, 1], [0.1, -1], "ten", [True]):
        with pytest.raises(ConfigError, match="'lr_factors' setting must be a list of distinct positive numbers"):
            RunSpec(lr_factors=bad)


class _BNNet(__import__("torch").nn.Module):
    def __init__(self):
        from torch import nn

        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU())
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        return self.head(self.body(x))


@pytest.mark.parametrize("freeze", [True, False])
def test_batchnorm_statistics_follow_the_setting_while_its_weights_train(freeze):
    import torch

    from transferlab.training import LoopConfig, ParamGroup, fit

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 64)
    x = (rng.normal(size=(64, 4)) * 3 + 5 * y[:, None]).astype(np.float32)
    net = _BNNet()
    bn = net.body[1]
    stats, weight = bn.running_mean.clone(), bn.weight.detach().clone()
    make_batch = lambda rows, train: {"x": torch.from_numpy(np.stack(rows))}  # noqa: E731
    fit(
        net,
        make_batch,
        (list(x), y),
        (list(x), y),
        [ParamGroup("all", list(net.parameters()), 0.05)],
        LoopConfig(epochs=2, batch_size=16, patience=5, freeze_batchnorm_stats=freeze),
        start_score=-1.0,
    )
    assert not torch.equal(bn.weight.detach(), weight)  # the layer's parameters trained either way
    assert torch.equal(bn.running_mean, stats) == freeze
