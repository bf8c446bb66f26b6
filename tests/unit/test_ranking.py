import numpy as np
import pytest
from scipy.optimize import minimize

from transferlab.ranking import (
    SCORES,
    hscore,
    hscore_shrinkage,
    knn_accuracy,
    leep,
    linear_probe_accuracy,
    logme,
    nce,
    score_features,
)
from transferlab.ranking.logme import log_evidence
from transferlab.ranking.scores import stratified_subsample

# (N, D, rank): more rows than dimensions, fewer, and rank-deficient features
REGIMES = {"n>d": (200, 20, None), "n<d": (30, 80, None), "rank-deficient": (100, 40, 5)}


def blobs(regime: str, seed: int = 0, n_classes: int = 3, sep: float = 1.0):
    """Class means + noise, optionally pushed through a rank-r map to D dimensions."""
    n, d, rank = REGIMES[regime]
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    r = rank or d
    f = rng.normal(size=(n, r)) + sep * rng.normal(size=(n_classes, r))[y]  # (N, r)
    if rank:
        f = f @ rng.normal(size=(rank, d))  # (N, D) of rank r
    return f, y


def dense_log_evidence(f, y, log_alpha, log_beta):
    """L(alpha, beta) / N straight from the definition, with D x D matrices."""
    n, d = f.shape
    alpha, beta = np.exp(log_alpha), np.exp(log_beta)
    a = alpha * np.eye(d) + beta * f.T @ f
    m = beta * np.linalg.solve(a, f.T @ y)
    r = y - f @ m
    evidence = (d * log_alpha + n * log_beta - n * np.log(2 * np.pi) - beta * r @ r
                - alpha * m @ m - np.linalg.slogdet(a)[1]) / 2
    return evidence / n


def optimised_log_evidence(f, y):
    # log beta is bounded: when N < D the supremum is approached as beta -> inf, where A becomes
    # too ill-conditioned for a dense solve to be trusted.
    best = -np.inf
    for start in [(0.0, 0.0), (5.0, 5.0), (5.0, 15.0)]:
        res = minimize(lambda p: -dense_log_evidence(f, y, *p), start, method="L-BFGS-B",
                       bounds=[(-20, 20)] * 2)
        best = max(best, -res.fun)
    return best


@pytest.mark.parametrize("regime", REGIMES)
def test_logme_matches_direct_maximisation_of_the_evidence(regime):
    f, y = blobs(regime)
    per_class = [log_evidence(f, (y == c).astype(float)) for c in range(3)]
    for c, ours in enumerate(per_class):
        assert ours == pytest.approx(optimised_log_evidence(f, (y == c).astype(float)),
                                     rel=1e-3, abs=1e-4)
    assert logme(f, y) == pytest.approx(np.mean(per_class), rel=1e-6)


@pytest.mark.parametrize("regime", REGIMES)
def test_logme_prefers_true_labels_and_ignores_scale(regime):
    f, y = blobs(regime)
    shuffled = np.random.default_rng(1).permutation(y)
    assert logme(f, y) > logme(f, shuffled) + 0.1
    for scale in (1e-4, 1e4):
        assert logme(scale * f, y) == pytest.approx(logme(f, y), rel=1e-4)


@pytest.mark.parametrize("regime", REGIMES)
def test_logme_unchanged_by_all_zero_columns(regime):
    # zero columns add D/2 log alpha to the evidence and the same amount to 1/2 log|A|;
    # counting D in one place and only the nonzero singular values in the other breaks this
    f, y = blobs(regime)
    padded = np.hstack([f, np.zeros((len(f), 50))])
    assert logme(padded, y) == pytest.approx(logme(f, y), rel=1e-6)


def test_logme_finite_on_degenerate_features():
    y = np.arange(40) % 2
    assert np.isfinite(logme(np.zeros((40, 8)), y))
    exact = np.eye(2)[y]  # features that are the one-hot labels: evidence has no maximum
    assert np.isfinite(logme(np.hstack([exact, np.zeros((40, 3))]), y))


@pytest.mark.parametrize("regime", ["n>d", "rank-deficient"])
def test_hscore_prefers_true_labels(regime):
    f, y = blobs(regime)
    shuffled = np.random.default_rng(1).permutation(y)
    assert 0 <= hscore(f, shuffled) < hscore(f, y) <= 2 + 1e-9
    assert 0 <= hscore_shrinkage(f, shuffled) < hscore_shrinkage(f, y) <= 2 + 1e-9


def test_hscore_shrinkage_stays_informative_when_n_below_d():
    f, y = blobs("n<d", sep=0.5)
    shuffled = np.random.default_rng(1).permutation(y)
    assert hscore(f, y) == pytest.approx(hscore(f, shuffled))  # plain H-score saturates at C-1
    true, shuf = hscore_shrinkage(f, y), hscore_shrinkage(f, shuffled)
    assert np.isfinite(true) and 0 <= shuf < true <= 2


def one_hot_probs(z, n_source, confidence=0.99):
    p = np.full((len(z), n_source), (1 - confidence) / (n_source - 1))
    p[np.arange(len(z)), z] = confidence
    return p


def test_leep_and_nce_reward_a_source_that_determines_the_label():
    rng = np.random.default_rng(0)
    y = np.arange(200) % 4
    z = np.array([7, 2, 5, 0])[y]  # source top-1 is an injective function of the target label
    probs = one_hot_probs(z, 10)
    assert nce(z, y) == 0.0
    assert -0.1 < leep(probs, y) <= 0
    random_probs = rng.dirichlet(np.ones(10), size=len(y))
    assert nce(random_probs.argmax(1), y) < -0.5
    assert leep(random_probs, y) < leep(probs, y) - 0.5
    assert nce(np.zeros(len(y), dtype=int), y) == pytest.approx(-np.log(4))  # says nothing


def test_knn_and_linear_probe_accuracy():
    f, y = blobs("n>d")
    shuffled = np.random.default_rng(1).permutation(y)
    for probe in (knn_accuracy, linear_probe_accuracy):
        assert probe(f, y) > 0.9
        assert probe(f, shuffled) < 0.6
        assert probe(f, y, seed=3) == probe(f, y, seed=3)


def test_small_classes_reduce_the_number_of_folds():
    f, y = blobs("n>d")
    y = y.copy()
    y[:3] = 3  # a class of 3 examples, fewer than the 5 folds
    assert 0 < knn_accuracy(f, y, folds=5) <= 1
    assert 0 < linear_probe_accuracy(f, y, folds=5) <= 1


def test_score_features_subsamples_and_skips_source_scores_without_probs():
    f, y = blobs("n>d")
    scores = score_features(f, y, max_items=90)
    assert set(scores) == set(SCORES) - {"leep", "nce"}
    assert all(np.isfinite(v) for v in scores.values())
    assert scores == score_features(f, y, max_items=90)
    probs = one_hot_probs(y, 5)
    with_source = score_features(f, y, source_probs=probs, max_items=90)
    assert set(with_source) == set(SCORES)
    assert with_source["nce"] == 0.0


def test_stratified_subsample_keeps_proportions_and_every_class():
    y = np.r_[np.zeros(900, int), np.ones(97, int), np.full(3, 2)]
    keep = stratified_subsample(y, 100, seed=0)
    assert len(keep) == 100 and len(np.unique(keep)) == 100
    counts = np.bincount(y[keep])
    assert counts[2] == 2 and abs(counts[1] - 10) <= 1
    assert (keep == stratified_subsample(y, 100, seed=0)).all()


X, Y = np.ones((10, 3)), np.arange(10) % 2


@pytest.mark.parametrize("call, message", [
    (lambda: logme(np.ones(5), Y[:5]), r"features must be a 2-D array \(N, D\); got shape \(5,\)"),
    (lambda: logme(X, Y[:9]), "labels has 9 entries but features has 10 rows"),
    (lambda: hscore(np.full((10, 3), np.nan), Y), "features contains 30 NaN or infinite"),
    (lambda: knn_accuracy(X, np.zeros(10, int)), "labels must contain at least 2 classes"),
    (lambda: logme(X, Y.astype(float)), "labels must be integer"),
    (lambda: leep(np.full((10, 3), 0.5), Y), "source_probs rows must sum to 1"),
    (lambda: leep(one_hot_probs(Y, 3), Y[:9]), "labels has 9 entries but source_probs has 10 rows"),
    (lambda: nce(np.zeros((10, 2), int), Y), "source_labels must be a 1-D array"),
    (lambda: score_features(X, np.arange(10) % 5, max_items=8), "max_items=8"),
])
def test_invalid_inputs_raise_value_errors_naming_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()
