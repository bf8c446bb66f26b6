"""The recommendation on hand-built rung records: a costlier rung has to prove itself on validation."""

import zlib

import numpy as np

from transferlab.evaluation import evaluate
from transferlab.verdicts import VerdictContext
from transferlab.verdicts.recommendation import cost_order, recommend

CLASSES = ["a", "b"]
RNG = np.random.default_rng(0)
Y_TEST = RNG.integers(0, 2, 400)
Y_VAL = RNG.integers(0, 2, 172)
Y_TRAIN = RNG.integers(0, 2, 800)


def _pred(y, correct: int, seed: int) -> np.ndarray:
    """Predictions right on exactly ``correct`` of the examples of ``y``."""
    right = np.zeros(len(y), dtype=bool)
    right[np.random.default_rng(seed).permutation(len(y))[:correct]] = True
    return np.where(right, y, 1 - y)


def rung(name, strategy, val_correct, test_acc=0.8, fit=1.0, extract=0.0, y_val=Y_VAL, y_test=Y_TEST):
    seed = zlib.crc32(name.encode())
    val, test = _pred(y_val, val_correct, seed), _pred(y_test, int(test_acc * len(y_test)), seed + 1)
    return {
        "name": name,
        "strategy": strategy,
        "backbone": name.partition(":")[2] or None,
        "test": evaluate(y_test, test, CLASSES),
        "val": evaluate(y_val, val, CLASSES, with_details=False),
        "predictions": {"test": test.tolist(), "val": val.tolist()},
        "cost": {"fit_seconds": fit, "extract_seconds": extract},
    }


def ctx(rungs, y_test=Y_TEST, y_val=Y_VAL):
    return VerdictContext(rungs, y_test, Y_TRAIN, CLASSES, "accuracy", y_val=y_val)


def test_the_cheaper_rung_stays_when_the_costlier_is_within_noise_on_validation():
    # the image demo: frozen 0.901 vs finetune 0.919 on 172 validation images (155 vs 158 right)
    frozen = rung("frozen:e", "frozen", 155, fit=0.4, extract=3.0)
    finetune = rung("finetune:e", "finetune", 158, fit=400.0)
    rec = recommend(ctx([finetune, frozen]))
    assert rec["rung"] == "frozen:e"
    assert rec["best_on_validation"] == "finetune:e"  # best on validation, yet not shown to be better
    assert "the costlier finetune:e was not shown to be better (validation Δ accuracy +0.017" in rec["why"]
    (c,) = rec["evidence"]
    assert (c["a"], c["b"], c["outcome"], c["significant"]) == ("finetune:e", "frozen:e", "kept", False)
    assert [o["rung"] for o in rec["order"]] == ["frozen:e", "finetune:e"]
    assert set(rec["within_noise_of_best"]) == {"finetune:e", "frozen:e"}


def test_the_costlier_rung_wins_when_significantly_better_on_validation():
    classical = rung("classical", "classical", 120, fit=0.6)
    frozen = rung("frozen:m", "frozen", 160, fit=1.0, extract=84.0)
    rec = recommend(ctx([classical, frozen]))
    assert rec["rung"] == "frozen:m"
    assert rec["why"].startswith("frozen:m beat the cheaper classical on validation (Δ accuracy +0.233")
    assert rec["evidence"][0]["outcome"] == "replaced" and rec["evidence"][0]["significant"]
    assert "held-out test accuracy" in rec["why"] and "Chosen on validation, not on test" in rec["why"]


def test_each_costlier_rung_must_beat_the_current_choice():
    classical = rung("classical", "classical", 120, fit=0.6)
    frozen = rung("frozen:m", "frozen", 160, fit=1.0, extract=84.0)
    full = rung("full:m", "full", 162, fit=900.0)  # not shown better than frozen
    lora = rung("lora:m", "lora", 100, fit=500.0)  # within 2x of full: one tier, full first (simpler)
    rec = recommend(ctx([full, lora, classical, frozen]))
    assert rec["rung"] == "frozen:m"
    assert [(c["a"], c["b"], c["outcome"]) for c in rec["evidence"]] == [
        ("frozen:m", "classical", "replaced"),
        ("full:m", "frozen:m", "kept"),
        ("lora:m", "frozen:m", "kept"),
    ]
    assert (
        "the costlier full:m was not shown to be better" in rec["why"]
        and "nor was 1 other costlier rung better" in rec["why"]
    )


def test_timing_noise_within_a_tier_does_not_change_the_order():
    """Costs within 2x of each other form one tier, ordered by the strategies' fixed simplicity."""

    def names(fit_frozen, fit_classical):
        rungs = [
            rung("frozen:m", "frozen", 150, fit=fit_frozen),
            rung("classical", "classical", 150, fit=fit_classical),
        ]
        return [(r["name"], tier) for r, tier in cost_order(rungs)]

    assert names(10.0, 14.0) == names(14.0, 10.0) == [("classical", 0), ("frozen:m", 0)]
    assert names(10.0, 40.0) == [("frozen:m", 0), ("classical", 1)]  # 4x apart: cost decides


def test_majority_is_never_recommended():
    y_val = np.zeros(172, dtype=int)
    y_val[:30] = 1
    majority = rung("majority", "majority", 142, fit=0.0, y_val=y_val)
    majority["predictions"]["val"] = [0] * 172  # right on every 'a'
    classical = rung("classical", "classical", 120, fit=0.5, y_val=y_val)
    rec = recommend(ctx([majority, classical], y_val=y_val))
    assert rec["rung"] == "classical" and "majority" not in [o["rung"] for o in rec["order"]]
    assert recommend(ctx([majority], y_val=y_val)) is None


def test_no_recommendation_when_the_test_cannot_decide():
    y_test = np.zeros(400, dtype=int)  # class b vanished from the newest data
    classical = rung("classical", "classical", 150, test_acc=0.35, fit=0.6, y_test=y_test)
    frozen = rung("frozen:m", "frozen", 120, test_acc=0.35, fit=1.0, extract=80.0, y_test=y_test)
    rec = recommend(ctx([classical, frozen], y_test=y_test))
    assert rec["rung"] is None and rec["validation_choice"] == "classical"
    assert rec["why"].startswith("No recommendation: the test split cannot compare rungs")
    assert "test_cannot_decide" in rec["why"]
    assert "0.350" not in rec["why"] and "held-out test" not in rec["why"]  # nothing quoted from the test


def test_no_recommendation_when_validation_holds_one_class():
    y_val = np.zeros(172, dtype=int)
    rec = recommend(
        ctx(
            [rung("classical", "classical", 150, y_val=y_val), rung("frozen:m", "frozen", 100, y_val=y_val)],
            y_val=y_val,
        )
    )
    assert rec["rung"] is None and "validation split holds only 'a'" in rec["why"]
