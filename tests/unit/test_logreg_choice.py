"""How the classical and frozen rungs choose C: held-out log loss on train, validation untouched."""

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from transferlab.rungs import linear
from transferlab.rungs.linear import C_GRID, fit_logreg, past_the_minimum


def _data(n=300, seed=0):
    X, y = make_classification(n_samples=n, n_features=40, n_informative=5, n_classes=3, random_state=seed)
    return X, y


def _brute_force(X, y, folds=3, seed=0) -> dict[str, float]:
    """Held-out log loss of every C of the grid, each fitted from scratch to a tight tolerance, on
    the parts of train fit_logreg uses: 3 folds up to ``FOLDS_UP_TO`` examples, one half/half
    split above."""
    if len(y) > linear.FOLDS_UP_TO:
        cv = StratifiedShuffleSplit(1, train_size=linear.FIT_SHARE, random_state=seed)
    else:
        cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return {
        f"{g:g}": -cross_val_score(
            make_pipeline(StandardScaler(), LogisticRegression(C=g, max_iter=5000, tol=1e-6)),
            X,
            y,
            cv=cv,
            scoring="neg_log_loss",
        ).mean()
        for g in C_GRID
    }


def test_c_is_the_cross_validated_best_on_train_and_matches_a_brute_force_search():
    X, y = _data()
    X_val, y_val = _data(60, seed=1)
    model, c, how = fit_logreg(X, y, X_val, y_val, metric="accuracy", seed=0)
    assert how["by"] == "cv" and how["folds"] == 3 and how["C_grid"] == list(C_GRID)
    manual = _brute_force(X, y)
    tried = how["cv_log_loss_by_C"]
    assert set(tried) <= set(manual) and tried[f"{c:g}"] == min(tried.values())
    for g, loss in tried.items():  # the warm-started walk's losses are close to those of fits to convergence
        assert abs(loss - manual[g]) < 0.02 * manual[g], g
    assert manual[f"{c:g}"] == min(manual.values())
    assert model[-1].coef_.shape == (3, 40) and model[-1].C == c and not model[-1].warm_start


@pytest.mark.parametrize(
    "n, d, classes, separation, best",
    [(300, 40, 3, 1.0, 0.1), (200, 200, 2, 1.0, 0.0316), (400, 10, 3, 1.0, 0.316), (600, 10, 3, 0.5, 0.0316)],
)
def test_the_walk_stops_past_the_minimum_and_picks_the_brute_force_c(n, d, classes, separation, best):
    """Constructed problems with their minimum inside the grid: 5 informative features among
    many (weakly regularised fits overfit: the loss rises steeply after the best C) or among
    few (the loss flattens after it: the walk must not stop in a plateau); 3 folds (n <= 300)
    or one split."""
    X, y = make_classification(
        n_samples=n,
        n_features=d,
        n_informative=5,
        n_redundant=0,
        n_classes=classes,
        class_sep=separation,
        random_state=0,
    )
    manual = _brute_force(X, y)
    assert min(manual, key=manual.get) == f"{best:g}"  # the problem is what it claims to be
    _, c, how = fit_logreg(X, y, None, None, metric="accuracy", seed=0)
    assert c == best and how["by"] == ("cv" if n <= linear.FOLDS_UP_TO else "holdout")
    tried = {float(g): v for g, v in how["cv_log_loss_by_C"].items()}
    decades = list(C_GRID[::2])
    walked = [g for g in decades if g in tried]
    assert 0.1 in walked and walked == decades[decades.index(walked[0]) : decades.index(walked[-1]) + 1]
    best_decade = min(walked, key=tried.get)
    halves = set(tried) - set(walked)  # then the half-decade steps either side of the best decade
    assert len(halves) <= 2 and all(abs(abs(np.log10(g / best_decade)) - 0.5) < 0.01 for g in halves)
    # the walk ends at the grid's ends, past the minimum, or (going down) at the middle it started from
    assert walked[0] == C_GRID[0] or tried[walked[0]] > 1.01 * min(tried.values())
    assert walked[-1] in (C_GRID[-1], 0.1) or tried[walked[-1]] > 1.01 * min(tried.values())
    assert len(tried) < len(C_GRID)


def test_a_sensible_c_on_real_data_scikit_learns_digits():
    """898 training digits (one split): the chosen C's test accuracy is within 0.01 of the best of
    the 13 Cs in hindsight, above one decade from the weakly and strongly regularised ends, and
    the walk scores few Cs (the strongly regularised end, where the loss is flat, is not walked)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.5, stratify=y, random_state=0)
    model, c, how = fit_logreg(X_tr, y_tr, None, None, metric="accuracy", seed=0)
    by_c = {
        g: fit_logreg(X_tr, y_tr, None, None, metric="accuracy", seed=0, grid=(g,))[0].score(X_te, y_te) for g in C_GRID
    }
    assert model.score(X_te, y_te) >= max(by_c.values()) - 0.01
    assert 0.01 <= c <= 10
    assert how["by"] == "holdout" and len(how["cv_log_loss_by_C"]) <= 7 and "0.0001" not in how["cv_log_loss_by_C"]


def test_the_probe_minimises_scikit_learns_objective():
    """``Probe`` and ``LogisticRegression`` at the same C reach the same weights (binary: one row;
    multiclass: one per class; dense and sparse features), and the same held-out log loss."""
    from scipy import sparse
    from sklearn.metrics import log_loss

    from transferlab.rungs.logreg_probe import Probe

    for classes, make in ((2, np.asarray), (3, np.asarray), (2, sparse.csr_matrix)):
        X, y = make_classification(n_samples=200, n_features=20, n_informative=5, n_classes=classes, random_state=1)
        X = make(StandardScaler().fit_transform(X))
        for c in (0.01, 1.0):
            probe = Probe(X[:150], y[:150], np.unique(y)).fit(c, 1e-9, np.inf)
            sk = LogisticRegression(C=c, tol=1e-10, max_iter=5000).fit(X[:150], y[:150])
            coef, intercept = probe.coef()
            assert np.abs(coef - sk.coef_).max() < 1e-5 * max(1, np.abs(sk.coef_).max()), (classes, c)
            assert np.abs(intercept - sk.intercept_).max() < 1e-5, (classes, c)
            assert abs(probe.log_loss(X[150:], y[150:]) - log_loss(y[150:], sk.predict_proba(X[150:]))) < 1e-6


def test_a_warm_started_probe_still_converges_on_small_features():
    """As for ``_fit`` below: from the weights at C=31.6 on small unit-norm rows, the probe's fit at
    C=100 moves to that C's optimum instead of stopping at once."""
    from sklearn.preprocessing import normalize

    from transferlab.rungs.logreg_probe import Probe

    X, y = make_classification(n_samples=300, n_features=50, n_informative=5, n_redundant=0, random_state=0)
    X = normalize(X) * 0.05
    probe = Probe(X, y, np.unique(y)).fit(31.6, linear.TOL, linear.SHRINK)
    before = probe.iterations
    probe.fit(100.0, linear.TOL, linear.SHRINK)
    optimum = LogisticRegression(C=100.0, max_iter=5000, tol=1e-10).fit(X, y).coef_
    assert probe.iterations > before and np.abs(probe.coef()[0] - optimum).max() < 0.02 * np.abs(optimum).max()


def test_validation_is_never_read_when_train_can_be_split():
    """Validation features that fail on any use: the choice on train never touches them."""

    class Untouchable:
        def __getattr__(self, name):
            raise AssertionError(f"validation read ({name})")

        def __array__(self, *args, **kwargs):
            raise AssertionError("validation read")

        def __len__(self):
            raise AssertionError("validation read")

    X, y = _data()
    for n in (300, 120):  # one split, 3 folds
        model, c, how = fit_logreg(X[:n], y[:n], Untouchable(), Untouchable(), metric="accuracy", seed=0)
        assert how["by"] in ("cv", "holdout") and c in C_GRID


def test_the_learning_curves_refit_scores_the_chosen_c_and_its_neighbours():
    """``neighbours(c)``: the walk starts at c (the middle) and scores at most those three Cs."""
    X, y = _data()
    _, c, _ = fit_logreg(X, y, None, None, metric="accuracy", seed=0)
    model, c2, how = fit_logreg(X[:150], y[:150], None, None, metric="accuracy", seed=0, grid=linear.neighbours(c))
    tried = {float(g) for g in how["cv_log_loss_by_C"]}
    assert c in tried and tried <= set(linear.neighbours(c)) and c2 in tried
    assert how["cv_log_loss_by_C"][f"{c2:g}"] == min(how["cv_log_loss_by_C"].values())
    assert model[-1].C == c2


def test_the_walk_is_not_stopped_by_a_bump_before_the_minimum():
    assert not past_the_minimum([0.5, 0.5, 0.5, 0.5])  # a plateau (the prior) is not a minimum
    assert not past_the_minimum([0.5, 0.502, 0.504])  # rises within 1% of the best
    assert past_the_minimum([1.0, 0.8, 0.85])
    assert not past_the_minimum([1.0, 0.9, 0.95, 0.8], patience=2)  # one rise, then lower
    assert past_the_minimum([1.0, 0.8, 0.85, 0.82], patience=2)  # both above the best, not necessarily rising


def test_a_warm_start_at_a_larger_c_still_converges_on_small_features():
    """Unit-norm rows scaled down, as TF-IDF's are small: from the weights at C=31.6 the gradient
    at C=100 starts below 0.002, and a fixed tolerance of 0.001 stopped lbfgs far from the optimum
    (7.7% of the largest weight off; every larger C then scored about the same loss)."""
    from sklearn.preprocessing import normalize

    from transferlab.rungs import linear

    X, y = make_classification(n_samples=300, n_features=50, n_informative=5, n_redundant=0, random_state=0)
    X = normalize(X) * 0.05
    model = linear._fit(linear._logreg(31.6, 0), X, y, 31.6)
    linear._fit(model, X, y, 100.0)
    optimum = LogisticRegression(C=100.0, max_iter=5000, tol=1e-10).fit(X, y).coef_
    assert model.n_iter_[0] > 0 and np.abs(model.coef_ - optimum).max() < 0.02 * np.abs(optimum).max()


def test_the_refit_on_all_of_train_is_the_plain_fit_at_that_c():
    X, y = _data()
    model, c, _ = fit_logreg(X, y, None, None, metric="accuracy", seed=0)
    plain = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000, tol=1e-3, random_state=0)).fit(X, y)
    assert (model.predict(X) == plain.predict(X)).mean() > 0.98
    assert np.abs(model.predict_proba(X) - plain.predict_proba(X)).max() < 0.05


def test_validation_takes_no_part_in_the_fit():
    X, y = _data()
    X_val, y_val = _data(60, seed=1)
    a = fit_logreg(X, y, X_val, y_val, metric="accuracy", seed=0)
    b = fit_logreg(X, y, X_val, np.roll(y_val, 7), metric="accuracy", seed=0)  # scrambled validation labels
    assert a[1] == b[1] and np.array_equal(a[0].predict(X_val), b[0].predict(X_val))


def test_a_class_with_two_training_examples_is_cross_validated_on_two_folds():
    X, y = _data()
    keep = np.r_[np.flatnonzero(y != 2), np.flatnonzero(y == 2)[:2]]
    model, c, how = fit_logreg(X[keep], y[keep], None, None, metric="accuracy", seed=0)
    assert how["by"] == "cv" and how["folds"] == 2 and c in C_GRID
    assert how["cv_log_loss_by_C"][f"{c:g}"] == min(how["cv_log_loss_by_C"].values())
    assert list(model[-1].classes_) == [0, 1, 2]


def test_a_class_with_one_training_example_falls_back_to_validation():
    X, y = _data()
    keep = np.r_[np.flatnonzero(y != 2), np.flatnonzero(y == 2)[:1]]
    X_val, y_val = _data(60, seed=1)
    model, c, how = fit_logreg(X[keep], y[keep], X_val, y_val, metric="macro_f1", seed=0)
    assert how["by"] == "validation" and set(how["val_scores_by_C"]) == {f"{g:g}" for g in C_GRID}
    assert c in C_GRID and list(model[-1].classes_) == [0, 1, 2]
    assert how["val_scores_by_C"][f"{c:g}"] == max(how["val_scores_by_C"].values())
    first_best = next(g for g, s in how["val_scores_by_C"].items() if s == max(how["val_scores_by_C"].values()))
    assert f"{c:g}" == first_best  # ties keep the stronger regularisation


def test_a_single_c_is_fitted_without_a_search():
    X, y = _data()
    model, c, how = fit_logreg(X, y, None, None, metric="accuracy", seed=0, grid=(0.1,))
    assert c == 0.1 and how == {"by": "given"} and model[-1].C == 0.1


def test_a_large_training_set_scores_c_on_one_holdout_split(monkeypatch):
    monkeypatch.setattr(linear, "FOLDS_UP_TO", 100)
    X, y = _data()
    X = X.astype(np.float32)
    model, c, how = linear.fit_logreg(X, y, None, None, metric="accuracy", seed=0)
    assert how["by"] == "holdout" and how["folds"] == 1 and how["fit_share"] == linear.FIT_SHARE and c in C_GRID
    assert how["cv_log_loss_by_C"][f"{c:g}"] == min(how["cv_log_loss_by_C"].values())
    assert model[-1].coef_.dtype == np.float32  # no float64 copy of the features
    plain = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000, tol=1e-3, random_state=0)).fit(X, y)
    assert (model.predict(X) == plain.predict(X)).mean() > 0.98  # refitted on all of train at that C
    tensors = linear.logreg_tensors(model)
    assert tensors["logreg.coef"].shape == (3, 40) and "scaler.mean" in tensors


@pytest.mark.parametrize("seen", [(0, 2), (0, 1, 3)])
def test_the_saved_arrays_give_sklearns_probabilities(seen):
    """A fitted logistic regression predicts from its arrays (logreg_proba), during the run and after
    loading: the same probabilities as scikit-learn's pipeline, binary or not, 0 for classes unseen."""
    from transferlab.rungs.linear import logreg_proba

    rng = np.random.default_rng(1)
    y = np.repeat(np.array(seen), 30)
    X = (rng.normal(size=(len(y), 6)) + y[:, None]).astype(np.float32)
    for scale in (True, False):
        model, _, _ = linear.fit_logreg(X, y, X[:5], y[:5], metric="accuracy", seed=0, scale=scale)
        proba = logreg_proba(linear.logreg_tensors(model), X, 4)
        np.testing.assert_allclose(
            proba[:, model.classes_], model.predict_proba(X), rtol=1e-5, atol=1e-6
        )  # sklearn may compute in float32
        assert (proba[:, [c for c in range(4) if c not in seen]] == 0).all()


def test_the_refit_is_the_probes_model_when_it_reaches_the_tolerance_and_scikit_learns_when_not(monkeypatch):
    """The refit on all of train is scikit-learn's model at that C: the probe's weights when its fit
    reached the tolerance (no scikit-learn fit then), and scikit-learn finishes it when it did not."""
    X, y = _data(n=400)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    w = np.zeros((3, X.shape[1] + 1))
    fits = []
    real_fit = LogisticRegression.fit
    monkeypatch.setattr(LogisticRegression, "fit", lambda self, *a, **k: fits.append(1) or real_fit(self, *a, **k))
    model = linear._refit(X, y, 0.1, w, 1e-4, seed=0)
    exact = real_fit(LogisticRegression(C=0.1, tol=1e-8, max_iter=5000), X, y)
    assert not fits and model.coef_.dtype == np.float32 and list(model.classes_) == [0, 1, 2]
    assert np.abs(model.predict_proba(X) - exact.predict_proba(X)).max() < 1e-3
    assert (model.predict(X) == exact.predict(X)).mean() > 0.99
    linear._refit(X, y, 0.1, w, 1e-12, seed=0)  # below float32's reach: the probe stalls, scikit-learn goes on
    assert fits == [1]
