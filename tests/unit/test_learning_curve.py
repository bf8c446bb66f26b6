import numpy as np

import transferlab
from transferlab.evaluation.learning_curve import fit_power_law, learning_curve, needed_per_class, nested_subsets


def test_nested_subsets_are_nested_and_stratified():
    y = np.array([0] * 50 + [1] * 20)
    subsets = nested_subsets(y, seed=0)
    for small, big in zip(subsets, subsets[1:]):
        assert set(small) <= set(big)
    assert len(subsets[-1]) == 70 and np.bincount(y[subsets[0]]).min() >= 2


def test_power_law_recovers_a_known_curve_and_the_examples_needed():
    n = np.array([5, 10, 20, 40, 80, 160], dtype=float)
    scores = 0.95 - 0.6 * n**-0.5
    fit = fit_power_law(n, scores)
    assert abs(fit["c"] - 0.95) < 0.01 and abs(fit["b"] - 0.5) < 0.05
    assert abs(needed_per_class(fit, 0.9) - (0.6 / 0.05) ** 2) / 144 < 0.1
    assert needed_per_class(fit, 0.99) is None  # above the plateau


def test_learning_curve_estimates_or_says_out_of_reach():
    rng = np.random.default_rng(0)
    y_train = np.repeat([0, 1], 100)
    y_test = np.repeat([0, 1], 1000)

    def fit_predict(idx):  # accuracy rises with the amount of data, saturating at ~0.9
        acc = 0.9 - 0.8 * (len(idx) / 2) ** -0.6
        return np.where(rng.random(len(y_test)) < acc, y_test, 1 - y_test)

    lc = learning_curve(fit_predict, y_train, y_test, metric="accuracy", target=0.85)
    assert lc["examples_per_class"] is not None and "per class" in lc["verdict"]
    lc = learning_curve(fit_predict, y_train, y_test, metric="accuracy", target=0.99)
    assert lc["examples_per_class"] is None and "out of reach" in lc["verdict"]


def test_run_reports_learning_curves_for_cheap_rungs(reviews_csv, tmp_path):
    r = transferlab.run(
        reviews_csv,
        text_column="review",
        label_column="stars",
        rungs="majority,classical",
        target=0.95,
        out=str(tmp_path / "r"),
        quiet=True,
        corruptions=False,
    )
    lc = r["learning_curve"]
    assert lc["target"] == 0.95 and list(lc["rungs"]) == ["classical"]
    assert len(lc["rungs"]["classical"]["n_per_class"]) == 5


def test_trained_rung_learning_curve_when_asked(tiny_bert, reviews_csv, tmp_path):
    import transferlab

    r = transferlab.run(
        reviews_csv,
        text_column="review",
        label_column="stars",
        backbones=[f"hf:{tiny_bert}"],
        rungs=["finetune"],
        learning_curve_trained=True,
        epochs=1,
        head_epochs=2,
        max_length=16,
        corruptions=False,
        out=str(tmp_path / "r"),
        quiet=True,
    )
    name = r["rungs"][0]["name"]
    curve = r["learning_curve"]["rungs"][name]
    assert len(curve["n_per_class"]) == 3 and curve["seeds"] == 1
    # the last point is the rung's own model on the whole training set, not a refit
    assert curve["score_mean"][-1] == r["rungs"][0]["test"]["accuracy"]["mean"]
    off = transferlab.run(
        reviews_csv,
        text_column="review",
        label_column="stars",
        backbones=[f"hf:{tiny_bert}"],
        rungs=["finetune"],
        epochs=1,
        head_epochs=2,
        max_length=16,
        corruptions=False,
        out=str(tmp_path / "r2"),
        quiet=True,
    )
    assert not off["learning_curve"]
