"""How the classical and frozen rungs choose C: cross-validation on train, validation untouched."""

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from transferlab.rungs import linear
from transferlab.rungs.linear import C_GRID, fit_logreg


def _data(n=300, seed=0):
    X, y = make_classification(n_samples=n, n_features=40, n_informative=5, n_classes=3, random_state=seed)
    return X, y


def test_c_is_the_cross_validated_best_on_train_and_matches_a_manual_search():
    X, y = _data()
    X_val, y_val = _data(60, seed=1)
    model, c, how = fit_logreg(X, y, X_val, y_val, metric="accuracy", seed=0)
    assert how["by"] == "cv" and how["folds"] == 5
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    manual = {f"{g:g}": -cross_val_score(make_pipeline(StandardScaler(), LogisticRegression(C=g, max_iter=1000, tol=1e-3)),
                                          X, y, cv=folds, scoring="neg_log_loss").mean() for g in C_GRID}
    assert how["cv_log_loss_by_C"][f"{c:g}"] == min(how["cv_log_loss_by_C"].values())
    assert set(how["cv_log_loss_by_C"]) == set(manual) and len(manual) == 13
    for g, loss in manual.items():  # the warm-started path gives the plain per-C fits' losses where
        if float(g) <= 1:  # the fits converge (barely regularised fits stop at tol on a different point)
            assert abs(how["cv_log_loss_by_C"][g] - loss) < 0.02 * loss
    assert manual[f"{c:g}"] <= min(manual.values()) + 0.01
    assert model[-1].coef_.shape == (3, 40)
    assert float(np.ravel(model[-1].C_)[0]) == c


def test_validation_takes_no_part_in_the_fit():
    X, y = _data()
    X_val, y_val = _data(60, seed=1)
    a = fit_logreg(X, y, X_val, y_val, metric="accuracy", seed=0)
    b = fit_logreg(X, y, X_val, np.roll(y_val, 7), metric="accuracy", seed=0)  # scrambled validation labels
    assert a[1] == b[1] and np.array_equal(a[0].predict(X_val), b[0].predict(X_val))


def test_a_class_with_one_training_example_falls_back_to_validation():
    X, y = _data()
    keep = np.r_[np.flatnonzero(y != 2), np.flatnonzero(y == 2)[:1]]
    X_val, y_val = _data(60, seed=1)
    model, c, how = fit_logreg(X[keep], y[keep], X_val, y_val, metric="macro_f1", seed=0)
    assert how["by"] == "validation" and set(how["val_scores_by_C"]) == {f"{g:g}" for g in C_GRID}
    assert c in C_GRID and list(model[-1].classes_) == [0, 1, 2]


def test_a_single_c_is_fitted_without_a_search():
    X, y = _data()
    model, c, how = fit_logreg(X, y, None, None, metric="accuracy", seed=0, grid=(0.1,))
    assert c == 0.1 and how == {"by": "given"} and model[-1].C == 0.1


def test_a_large_training_set_scores_c_on_one_holdout_split(monkeypatch):
    monkeypatch.setattr(linear, "HOLDOUT_ABOVE", 100)
    X, y = _data()
    X = X.astype(np.float32)
    model, c, how = linear.fit_logreg(X, y, None, None, metric="accuracy", seed=0)
    assert how["by"] == "holdout" and how["folds"] == 1 and c in C_GRID
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
        np.testing.assert_allclose(proba[:, model.classes_], model.predict_proba(X), rtol=1e-6, atol=1e-9)
        assert (proba[:, [c for c in range(4) if c not in seen]] == 0).all()
