"""Each verdict rule on hand-built rung records (predictions, curves, costs)."""

import re
import zlib

import numpy as np
import pytest

from transferlab.evaluation import evaluate
from transferlab.verdicts import RULES, VerdictContext, decidable, rules, run_verdicts  # noqa: F401 (registration)

CLASSES = ["a", "b"]
RNG = np.random.default_rng(0)
Y = RNG.integers(0, 2, 400)
Y_TRAIN = RNG.integers(0, 2, 800)
Y_VAL = RNG.integers(0, 2, 300)


def _pred(acc, seed, y=None):
    y = Y if y is None else y
    rng = np.random.default_rng(seed)
    return np.where(rng.random(len(y)) < acc, y, 1 - y)


def rung(name, strategy, pred, backbone=None, curves=None, fit=1.0, val_acc=None):
    """A rung record; its validation predictions are as accurate as its test ones unless ``val_acc``."""
    val_acc = float(np.mean(pred == Y)) if val_acc is None else val_acc
    val = _pred(val_acc, zlib.crc32(name.encode()), Y_VAL)
    return {
        "name": name,
        "strategy": strategy,
        "backbone": backbone,
        "test": evaluate(Y, pred, CLASSES),
        "val": evaluate(Y_VAL, val, CLASSES, with_details=False),
        "predictions": {"test": pred.tolist(), "val": val.tolist()},
        "curves": curves or {},
        "cost": {"fit_seconds": fit},
    }


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
    curves = {
        "epoch": [0, 1, 2],
        "phase": ["head warm-up", "top", "all"],
        "train_metric": [0.9, 0.9, 0.9],
        "val_metric": [0.9, 0.88, 0.7],
        "metric": "accuracy",
    }
    ft = rung("finetune:m", "finetune", _pred(0.9, 1), "m", curves=curves)
    assert codes([ft]).count("catastrophic_forgetting") == 1
    steady = dict(curves, val_metric=[0.9, 0.91, 0.92])
    assert "catastrophic_forgetting" not in codes([rung("finetune:m", "finetune", _pred(0.9, 1), "m", curves=steady)])
    # the shock of unfreezing, recovered from: not forgetting
    dip = dict(curves, val_metric=[0.86, 0.75, 0.88])
    assert "catastrophic_forgetting" not in codes([rung("finetune:m", "finetune", _pred(0.9, 1), "m", curves=dip)])


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
    dedupe = {
        "removed": {"train": 23, "val": 1},
        "share": {"train": 0.23, "val": 0.01},
        "max_share": 0.05,
        "over_max_share": True,
        "confirmed": True,
    }
    found = run_verdicts(
        VerdictContext(
            [rung("classical", "classical", _pred(0.8, 1))],
            Y,
            Y_TRAIN,
            CLASSES,
            "accuracy",
            audit,
            "dedupe",
            dedupe=dedupe,
        )
    )
    leak = next(v for v in found if v["code"] == "leakage")
    assert leak["severity"] == "warning" and leak["evidence"]["dedupe"] == dedupe
    assert (
        "23 training examples (23.0% of the split) and 1 validation example (1.0% of the split), more than "
        "the 5% removed without asking, as confirmed (--confirm-dedupe)"
    ) in leak["message"]


def test_transfer_chooses_both_sides_on_validation_not_test():
    # frozen:a is best on test but worst on validation: the rule must compare frozen:b, chosen on validation
    a = rung("frozen:a", "frozen", _pred(0.95, 1), "a", val_acc=0.6)
    b = rung("frozen:b", "frozen", _pred(0.75, 2), "b", val_acc=0.9)
    control = rung("classical", "classical", _pred(0.75, 3), val_acc=0.8)
    weak_control = rung("scratch_small", "scratch_small", _pred(0.95, 4), val_acc=0.5)  # best control on test
    (v,) = [
        v
        for v in run_verdicts(VerdictContext([a, b, control, weak_control], Y, Y_TRAIN, CLASSES, "accuracy"))
        if v["code"] in ("transfer_helped", "negative_transfer")
    ]
    assert v["rungs"] == ["frozen:b", "classical"] and v["evidence"]["chosen_on"] == "validation"


def test_imbalance_never_calls_a_significant_gap_noise():
    """The best rung far below majority on a one-sided test is 'less accurate', not 'within noise'."""
    global Y
    saved = Y
    Y = np.array([0] * 360 + [1] * 40)
    try:
        maj = rung("majority", "majority", np.zeros(400, dtype=int))
        worse = rung("classical", "classical", np.where(np.arange(400) % 3 == 0, 1, Y))  # wrong on a third
        found = run_verdicts(VerdictContext([maj, worse], Y, np.array([0] * 90 + [1] * 10), CLASSES, "accuracy"))
        imb = [v for v in found if v["code"] == "imbalance"][0]
        c = imb["evidence"]["versus_majority"]
        assert c["significant"] and c["delta"] < 0
        assert "less accurate than always predicting the majority class" in imb["message"]
        assert "within noise" not in imb["message"]
    finally:
        Y = saved


# --- test splits that cannot decide -------------------------------------------------------------------


def _one_class_case():
    """A time split whose newest data lost class b: test is all a; training was half b."""
    y_test = np.zeros(300, dtype=int)
    y_train = np.array([0, 1] * 400)
    y_val = np.array([0, 1] * 75)

    def r(name, strategy, acc, backbone=None, fit=1.0):
        pred = np.where(np.random.default_rng(zlib.crc32(name.encode())).random(300) < acc, 0, 1)
        val = _pred(acc, 7, y_val)
        return {
            "name": name,
            "strategy": strategy,
            "backbone": backbone,
            "test": evaluate(y_test, pred, CLASSES),
            "val": evaluate(y_val, val, CLASSES, with_details=False),
            "predictions": {"test": pred.tolist(), "val": val.tolist()},
            "curves": {},
            "cost": {"fit_seconds": fit},
        }

    rungs = [
        {**r("majority", "majority", 1.0), "predictions": {"test": [0] * 300, "val": [0] * 150}},
        r("classical", "classical", 0.35),
        r("zero_shot:m", "zero_shot", 0.5, "m"),
        r("frozen:m", "frozen", 0.35, "m"),
        r("finetune:m", "finetune", 0.1, "m", fit=500.0),
    ]
    return VerdictContext(rungs, y_test, y_train, CLASSES, "accuracy", y_val=y_val, split_by="time")


def test_one_class_test_yields_test_cannot_decide_and_no_comparison(monkeypatch):
    ctx = _one_class_case()
    found = run_verdicts(ctx)
    assert found[0]["code"] == "test_cannot_decide" and found[0]["severity"] == "error"
    v = found[0]
    assert "all 300 test examples are 'a'" in v["message"] and "'b' (50% of the training set) has none" in v["message"]
    assert "label mix changed" in v["message"] and "newest" in v["message"]
    assert "stratified random split" in v["action"] and "--split-column" in v["action"]
    assert v["evidence"]["counts"] == {"a": 300, "b": 0}
    codes = {x["code"] for x in found}
    assert not codes & {
        "negative_transfer",
        "transfer_helped",
        "within_noise",
        "finetune_not_worth_cost",
        "no_training_needed",
        "catastrophic_forgetting",
    }, codes
    assert all(x["evidence"].get("versus_majority") is None for x in found if x["code"] == "imbalance")
    undecided = ctx.compare(ctx.rungs[1], ctx.rungs[0])  # what a rule registered elsewhere would get
    assert undecided["decided"] is False and undecided["significant"] is False and "delta" not in undecided
    # the same records on a test taken at face value: every one of those comparisons would have been made
    monkeypatch.setattr(VerdictContext, "test_problem", property(lambda self: None))
    naive = {x["code"] for x in run_verdicts(_one_class_case())}
    assert {
        "transfer_helped",
        "catastrophic_forgetting",
        "finetune_not_worth_cost",
        "no_training_needed",
        "imbalance",
    } <= naive, naive


def test_a_class_too_thin_in_test_cannot_decide_but_a_naturally_rare_one_can():
    from transferlab.verdicts.decidable import split_problem

    y_train = np.array([0, 1] * 400)
    drifted = np.array([0] * 497 + [1] * 3)  # b: half of training, 3 of 500 test examples
    p = split_problem(drifted, y_train, CLASSES)
    assert p["thin"] == [{"class": "b", "count": 3, "needed": 5, "expected": 250.0, "train_share": 0.5}]
    assert split_problem(np.array([0] * 495 + [1] * 5), y_train, CLASSES) is None
    rare_train = np.array([0] * 980 + [1] * 20)  # b: 2% of training; its share predicts 2 of 100 test examples
    assert split_problem(np.array([0] * 99 + [1]), rare_train, CLASSES) is None
    assert split_problem(np.array([0] * 100), rare_train, CLASSES)["thin"][0]["count"] == 0  # absent always counts


# --- every rule's words match its evidence -------------------------------------------------------------

NOISE_WORDS = ("within noise", "not better", "does not beat", "no better", "not shown", "no evidence")
BETTER = re.compile(r"\bbeats\b|(?<!not )\bbetter than\b")
WORSE = re.compile(r"\bworse than\b|\bless accurate than\b")


def _comparisons(evidence):
    """Every paired comparison (a dict with delta, ci, significant) anywhere in a verdict's evidence."""
    if isinstance(evidence, dict):
        if {"delta", "ci", "significant"} <= set(evidence):
            yield evidence
        for value in evidence.values():
            yield from _comparisons(value)
    elif isinstance(evidence, list):
        for value in evidence:
            yield from _comparisons(value)


def _outcome(c):
    return "noise" if not c["significant"] else "better" if c["delta"] > 0 else "worse"


def check_words_match_evidence(v: dict) -> list[str]:
    """Each comparison is quoted in the message, and the clause quoting it says what it shows."""
    message = v["message"]
    found = []
    for c in _comparisons(v["evidence"]):
        quote = f"{c['delta']:+.3f} [{c['ci'][0]:+.3f}, {c['ci'][1]:+.3f}]"
        at = message.find(quote)
        assert at >= 0, f"{v['code']}: comparison {quote} is not in the message: {message}"
        clause = re.split(r"[;.] ", message[:at])[-1].lower()
        outcome = _outcome(c)
        noise = any(w in clause for w in NOISE_WORDS)
        if outcome == "noise":
            assert "within noise" in clause and not BETTER.search(clause) and not WORSE.search(clause), (
                v["code"],
                clause,
            )
        elif outcome == "better":
            assert BETTER.search(clause) and not noise and not WORSE.search(clause), (v["code"], clause)
        else:
            assert WORSE.search(clause) and not noise and not BETTER.search(clause), (v["code"], clause)
        found.append(outcome)
    if not found:
        text = message.lower()
        assert not any(w in text for w in ("within noise", "beats", "significant")), (v["code"], message)
    return found


SCENARIOS = [  # (share of class a in test, {rung: test accuracy}); each gives some rule each outcome
    (
        0.5,
        {
            "classical": 0.7,
            "frozen:m": 0.9,
            "finetune:m": 0.6,
            "full:m": 0.9,
            "lora:m": 0.9,
            "zero_shot:m": 0.55,
            "scratch:m": 0.55,
        },
    ),
    (0.5, {"classical": 0.9, "frozen:m": 0.7, "zero_shot:m": 0.55, "scratch_small": 0.6}),
    (0.5, {"classical": 0.8, "frozen:m": 0.8, "zero_shot:m": 0.93, "finetune:m": 0.8}),
    (0.5, {"classical": 0.6, "frozen:m": 0.8, "zero_shot:m": 0.8}),
    (0.8, {"classical": 0.8, "frozen:m": 0.79}),
    (0.8, {"classical": 0.7, "frozen:m": 0.68}),
]
FIT = {
    "classical": 0.5,
    "scratch": 50,
    "scratch_small": 5,
    "zero_shot": 0.1,
    "frozen": 1.0,
    "finetune": 60,
    "full": 40,
    "lora": 30,
}


def _scenario(share_a: float, accuracies: dict):
    """Every listed rung on one test set at its accuracy, beside the majority baseline."""
    global Y
    Y = np.where(np.random.default_rng(5).random(400) < share_a, 0, 1)
    rungs = [rung("majority", "majority", np.zeros(400, dtype=int))]
    for i, (name, acc) in enumerate(accuracies.items()):
        strategy = name.split(":")[0]
        rungs.append(rung(name, strategy, _pred(acc, 100 + i), "m" if ":" in name else None, fit=FIT[strategy]))
    return VerdictContext(rungs, Y, np.where(np.random.default_rng(6).random(800) < share_a, 0, 1), CLASSES, "accuracy")


def test_every_rule_words_its_verdict_from_its_own_evidence():
    global Y
    saved, seen = Y, set()
    assert {"transfer", "imbalance", "within_noise", "finetune_cost", "zero_shot", "forgetting"} <= set(RULES.list_())
    try:
        for share_a, accuracies in SCENARIOS:
            ctx = _scenario(share_a, accuracies)
            for name in RULES.list_():
                for v in RULES.get(name)(ctx):
                    seen.update((v["code"], o) for o in check_words_match_evidence(v))
    finally:
        Y = saved
    expected = {
        ("transfer_helped", "better"),
        ("negative_transfer", "worse"),
        ("negative_transfer", "noise"),
        ("imbalance", "noise"),
        ("imbalance", "worse"),
        ("within_noise", "noise"),
        ("finetune_not_worth_cost", "noise"),
        ("finetune_not_worth_cost", "worse"),
        ("no_training_needed", "noise"),
        ("no_training_needed", "worse"),
        ("catastrophic_forgetting", "worse"),
    }
    assert expected <= seen, expected - seen


@pytest.mark.parametrize(
    "message, ok",
    [
        (
            "X is within noise of always predicting the majority class (accuracy -0.637 [-0.681, -0.594], p=0.000).",
            False,
        ),
        (
            "X is less accurate than always predicting the majority class (accuracy -0.637 [-0.681, -0.594], p=0.000).",
            True,
        ),
    ],
)
def test_the_word_check_catches_noise_called_for_a_significant_gap(message, ok):
    c = {"delta": -0.637, "ci": [-0.681, -0.594], "p_value": 0.0, "significant": True}
    v = {"code": "imbalance", "message": message, "evidence": {"versus_majority": c}}
    if ok:
        assert check_words_match_evidence(v) == ["worse"]
    else:
        with pytest.raises(AssertionError):
            check_words_match_evidence(v)
