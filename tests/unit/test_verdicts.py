"""Each verdict rule on hand-built rung records (predictions, curves, costs)."""

import numpy as np

from transferlab.evaluation import evaluate
from transferlab.verdicts import VerdictContext, run_verdicts

CLASSES = ["a", "b"]
RNG = np.random.default_rng(0)
Y = RNG.integers(0, 2, 400)
Y_TRAIN = RNG.integers(0, 2, 800)


def _pred(acc, seed):
    rng = np.random.default_rng(seed)
    return np.where(rng.random(len(Y)) < acc, Y, 1 - Y)


def rung(name, strategy, pred, backbone=None, curves=None, fit=1.0):
    return {"name": name, "strategy": strategy, "backbone": backbone, "test": evaluate(Y, pred, CLASSES),
            "predictions": {"test": pred.tolist()}, "curves": curves or {}, "cost": {"fit_seconds": fit}}


def codes(rungs, y_train=Y_TRAIN, audit=(), policy="warn"):
    found = run_verdicts(VerdictContext(rungs, Y, y_train, CLASSES, "accuracy", list(audit), policy))
    return [f"{v['code']}:{v['severity']}" if v["code"] == "leakage" else v["code"] for v in found]


def test_transfer_helped_and_negative_transfer():
    good = [rung("classical", "classical", _pred(0.7, 1)), rung("frozen:m", "frozen", _pred(0.9, 2), "m")]
    assert "transfer_helped" in codes(good) and "negative_transfer" not in codes(good)
    bad = [rung("scratch:m", "scratch", _pred(0.85, 1), "m"), rung("frozen:m", "frozen", _pred(0.7, 2), "m")]
    v = run_verdicts(VerdictContext(bad, Y, Y_TRAIN, CLASSES, "accuracy"))
    neg = [x for x in v if x["code"] == "negative_transfer"][0]
    assert neg["severity"] == "error" and neg["evidence"]["comparison"]["delta"] < 0


def test_catastrophic_forgetting_from_test_and_from_curves():
    frozen = rung("frozen:m", "frozen", _pred(0.9, 1), "m")
    full = rung("full:m", "full", _pred(0.6, 2), "m")
    assert "catastrophic_forgetting" in codes([frozen, full])
    curves = {"epoch": [0, 1, 2], "phase": ["head warm-up", "top", "all"], "train_metric": [0.9, 0.9, 0.9],
              "val_metric": [0.9, 0.88, 0.7], "metric": "accuracy"}
    ft = rung("finetune:m", "finetune", _pred(0.9, 1), "m", curves=curves)
    assert codes([ft]).count("catastrophic_forgetting") == 1
    steady = dict(curves, val_metric=[0.9, 0.91, 0.92])
    assert "catastrophic_forgetting" not in codes([rung("finetune:m", "finetune", _pred(0.9, 1), "m", curves=steady)])


def test_overfitting_and_underfitting_from_curves():
    over = {"train_metric": [0.7, 0.9, 1.0], "val_metric": [0.68, 0.72, 0.7], "metric": "accuracy"}
    assert "overfitting" in codes([rung("full:m", "full", _pred(0.7, 1), "m", curves=over)])
    flat = {"train_metric": [0.5, 0.51, 0.5], "val_metric": [0.5, 0.5, 0.5], "metric": "accuracy"}
    assert "underfitting" in codes([rung("scratch:m", "scratch", _pred(0.5, 1), "m", curves=flat)])
    healthy = {"train_metric": [0.8, 0.9, 0.92], "val_metric": [0.8, 0.88, 0.9], "metric": "accuracy"}
    assert codes([rung("full:m", "full", _pred(0.9, 1), "m", curves=healthy)]) == []


def test_imbalance_when_no_better_than_majority():
    global Y
    saved = Y
    Y = np.array([0] * 360 + [1] * 40)
    try:
        maj = rung("majority", "majority", np.zeros(400, dtype=int))
        # right on 10 minority examples, wrong on 10 majority ones: the majority's accuracy, exactly
        guess = np.zeros(400, dtype=int)
        guess[350:360] = 1
        guess[390:400] = 1
        weak = rung("classical", "classical", guess)
        found = run_verdicts(VerdictContext([maj, weak], Y, np.array([0] * 90 + [1] * 10), CLASSES, "accuracy"))
        imb = [v for v in found if v["code"] == "imbalance"][0]
        assert imb["evidence"]["low_recall"] == {"b": 0.25} and imb["evidence"]["versus_majority"] is not None
    finally:
        Y = saved


def test_within_noise_and_cost():
    a = rung("frozen:m", "frozen", _pred(0.8, 1), "m", fit=1.0)
    b = rung("finetune:m", "finetune", np.where(np.arange(400) < 2, 1 - _pred(0.8, 1), _pred(0.8, 1)), "m", fit=100.0)
    found = codes([a, b])
    assert "within_noise" in found and "finetune_not_worth_cost" in found


def test_leakage_from_audit_findings():
    audit = [{"check": "near_duplicates", "severity": "error", "count": 7, "message": "7 near duplicates"}]
    assert codes([rung("classical", "classical", _pred(0.8, 1))], audit=audit) == ["leakage:error"]
    # removed before training: still reported, no longer an error
    assert codes([rung("classical", "classical", _pred(0.8, 1))], audit=audit, policy="dedupe") == ["leakage:info"]
    assert codes([rung("classical", "classical", _pred(0.8, 1))]) == []
    # removed beyond the share the user has to confirm: a warning that says how much, and that it was confirmed
    dedupe = {"removed": {"train": 23, "val": 1}, "share": {"train": 0.23, "val": 0.01}, "max_share": 0.05,
              "over_max_share": True, "confirmed": True}
    found = run_verdicts(VerdictContext([rung("classical", "classical", _pred(0.8, 1))], Y, Y_TRAIN, CLASSES,
                                        "accuracy", audit, "dedupe", dedupe))
    leak = next(v for v in found if v["code"] == "leakage")
    assert leak["severity"] == "warning" and leak["evidence"]["dedupe"] == dedupe
    assert ("23 training examples (23.0% of the split) and 1 validation example (1.0% of the split), more than "
            "the 5% removed without asking, as confirmed (--confirm-dedupe)") in leak["message"]
