import numpy as np
from sklearn.metrics import balanced_accuracy_score, f1_score

from transferlab.evaluation import bootstrap_ci, evaluate
from transferlab.training import layerwise_groups, unfrozen_groups


def test_evaluate_matches_sklearn_and_ci_brackets_estimate():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    p = np.where(rng.random(300) < 0.7, y, rng.integers(0, 3, 300))
    out = evaluate(y, p, ["a", "b", "c"])
    assert out["accuracy"]["mean"] == (y == p).mean()
    assert np.isclose(out["balanced_accuracy"]["mean"], balanced_accuracy_score(y, p))
    assert np.isclose(out["macro_f1"]["mean"], f1_score(y, p, average="macro"))
    for m in ("accuracy", "balanced_accuracy", "macro_f1"):
        lo, hi = out[m]["ci"]
        assert lo < out[m]["mean"] < hi and hi - lo < 0.2
    assert np.array(out["confusion_matrix"]).sum() == 300
    assert out["per_class"]["a"]["support"] == (y == 0).sum()


def test_bootstrap_matches_slow_resampling():
    """The vectorised bootstrap equals sklearn applied to explicit resamples (same draws)."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 120)
    p = np.where(rng.random(120) < 0.6, y, rng.integers(0, 4, 120))
    fast = bootstrap_ci(y, p, n_classes=4, n_resamples=400, seed=5)
    stats = []
    gen = np.random.default_rng(5)
    for _ in range(2):  # the same chunks of 200 draws the fast path takes
        for counts in gen.multinomial(120, np.full(120, 1 / 120), size=200):
            idx = np.repeat(np.arange(120), counts)
            stats.append(f1_score(y[idx], p[idx], average="macro"))
    slow = [np.quantile(stats, 0.025), np.quantile(stats, 0.975)]
    assert np.allclose(fast["macro_f1"], slow)


def test_perfect_predictions_have_degenerate_interval():
    y = np.array([0, 1, 1, 0, 2])
    out = evaluate(y, y, ["a", "b", "c"])
    assert out["accuracy"]["ci"] == [1.0, 1.0]


def test_layerwise_learning_rates_are_10_to_100x_below_head():
    groups = layerwise_groups([[1], [2], [3], [4]], [5], head_lr=1e-3, top_ratio=0.1, bottom_ratio=0.01)
    lrs = [g.lr for g in groups]
    assert np.isclose(lrs[-1], 1e-3) and np.isclose(lrs[-2], 1e-4) and np.isclose(lrs[0], 1e-5)
    assert all(a < b for a, b in zip(lrs, lrs[1:]))  # rising from stem to head


def test_unfreezing_goes_top_down_one_stage_per_epoch():
    assert unfrozen_groups(6, 3, 1) == {6, 5, 4}
    assert unfrozen_groups(6, 3, 2) == {6, 5, 4, 3, 2}
    assert unfrozen_groups(6, 3, 3) == set(range(7))
    assert unfrozen_groups(6, 3, 9) == set(range(7))
