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
    evidence = (
        d * log_alpha + n * log_beta - n * np.log(2 * np.pi) - beta * r @ r - alpha * m @ m - np.linalg.slogdet(a)[1]
    ) / 2
    return evidence / n


def optimised_log_evidence(f, y):
    # log beta is bounded: when N < D the supremum is approached as beta -> inf, where A becomes
    # too ill-conditioned for a dense solve to be trusted.
    best = -np.inf
    for start in [(0.0, 0.0), (5.0, 5.0), (5.0, 15.0)]:
        res = minimize(lambda p: -dense_log_evidence(f, y, *p), start, method="L-BFGS-B", bounds=[(-20, 20)] * 2)
        best = max(best, -res.fun)
    return best


@pytest.mark.parametrize("regime", REGIMES)
def test_logme_matches_direct_maximisation_of_the_evidence(regime):
    f, y = blobs(regime)
    per_class = [log_evidence(f, (y == c).astype(float)) for c in range(3)]
    for c, ours in enumerate(per_class):
        assert ours == pytest.approx(optimised_log_evidence(f, (y == c).astype(float)), rel=1e-3, abs=1e-4)
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


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: logme(np.ones(5), Y[:5]), r"features must be a 2-D array \(N, D\); got shape \(5,\)"),
        (lambda: logme(X, Y[:9]), "labels has 9 entries but features has 10 rows"),
        (lambda: hscore(np.full((10, 3), np.nan), Y), "features contains 30 NaN or infinite"),
        (lambda: knn_accuracy(X, np.zeros(10, int)), "labels must contain at least 2 classes"),
        (lambda: logme(X, Y.astype(float)), "labels must be integer"),
        (lambda: leep(np.full((10, 3), 0.5), Y), "source_probs rows must sum to 1"),
        (lambda: leep(one_hot_probs(Y, 3), Y[:9]), "labels has 9 entries but source_probs has 10 rows"),
        (lambda: nce(np.zeros((10, 2), int), Y), "source_labels must be a 1-D array"),
        (lambda: score_features(X, np.arange(10) % 5, max_items=8), "max_items=8"),
    ],
)
def test_invalid_inputs_raise_value_errors_naming_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def paper_hscore_shrinkage(f, y):
    """Ibrahim et al. (2022), written out with dense matrices: cov_a(f)^-1 (1 - a) cov(E[f|y])."""
    from sklearn.covariance import ledoit_wolf_shrinkage

    f = f - f.mean(axis=0)
    a = ledoit_wolf_shrinkage(f, assume_centered=True)
    cov_f = np.cov(f, rowvar=False, bias=True)
    cov_a = (1 - a) * cov_f + a * np.trace(cov_f) / f.shape[1] * np.eye(f.shape[1])
    g = np.stack([f[y == c].mean(axis=0) for c in y])  # (N, D) class mean of each row
    return np.trace(np.linalg.solve(cov_a, (1 - a) * np.cov(g, rowvar=False, bias=True)))


@pytest.mark.parametrize("regime", REGIMES)
def test_hscore_shrinkage_is_the_papers_definition(regime):
    f, y = blobs(regime)
    assert hscore_shrinkage(f, y, standardize=False) == pytest.approx(paper_hscore_shrinkage(f, y), rel=1e-6)
    live = f.std(axis=0) > 0  # rank-deficient features have no constant columns, but check
    assert hscore_shrinkage(f, y) == pytest.approx(
        paper_hscore_shrinkage(f[:, live] / f[:, live].std(axis=0), y), rel=1e-6
    )


@pytest.mark.parametrize("n, d", [(20, 64), (40, 200), (100, 50)])
@pytest.mark.parametrize("seed", range(4))
def test_hscore_shrinkage_ranks_informative_features_above_shuffled_labels_at_small_n(n, d, seed):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    f = rng.normal(size=(n, d)) + 0.5 * rng.normal(size=(3, d))[y]
    shuffled = np.random.default_rng(100 + seed).permutation(y)
    assert 0 <= hscore_shrinkage(f, shuffled) < hscore_shrinkage(f, y) <= 2


@pytest.mark.parametrize("seed", range(4))
def test_hscore_shrinkage_survives_a_dominant_dimension(seed):
    f, y = blobs("n<d", sep=0.7, seed=seed)
    shuffled = np.random.default_rng(1).permutation(y)
    loud = f.copy()
    loud[:, 0] *= 1000  # one dimension with a million times the variance of the others
    loud[:, 1] = 0.0  # and a dead one
    assert hscore_shrinkage(loud, y) == pytest.approx(hscore_shrinkage(f[:, np.r_[0, 2:80]], y), rel=1e-6)
    assert 0 < hscore_shrinkage(loud, shuffled) < hscore_shrinkage(loud, y)
    # the paper's shrinkage towards mu I drowns every other dimension: informative no longer wins
    assert hscore_shrinkage(loud, y, standardize=False) < 0.5 * hscore_shrinkage(f, y, standardize=False)


def test_score_features_reports_shrinkage_h_score_as_unavailable_on_a_flat_spectrum(monkeypatch):
    # uncorrelated components of nearly equal variance (like truncated-SVD features) with D close
    # to N: Ledoit-Wolf shrinks almost all the way to the identity, and the score says next to
    # nothing although a linear probe separates the classes
    rng = np.random.default_rng(0)
    y = np.arange(200) % 2
    f = rng.normal(size=(200, 150)) + 0.15 * y[:, None]
    from transferlab.ranking import scores as scores_module
    from transferlab.ranking.hscore import shrunk_hscore

    value, shrinkage = shrunk_hscore(f, y)
    assert shrinkage > 0.98 and value < 0.05 and linear_probe_accuracy(f, y) > 0.7  # majority: 0.5
    # at a shrinkage of exactly 1 the score is 0 for any labels: it is reported unavailable, with why
    monkeypatch.setattr(scores_module, "shrunk_hscore", lambda f, y: (0.0, 1.0))
    scores = score_features(f, y)
    assert "hscore_shrinkage" not in scores
    assert "Ledoit-Wolf shrinkage is 1 on these 200 x 150 features" in scores.unavailable["hscore_shrinkage"]
    assert scores.unavailable["leep"] == scores.unavailable["nce"] == "no source-model probabilities were given"


def test_score_features_unavailable_scores_carry_the_given_reason():
    f, y = blobs("n>d")
    scores = score_features(f, y, no_source_reason="minilm has no classifier")
    assert scores.unavailable == {"leep": "minilm has no classifier", "nce": "minilm has no classifier"}
    assert score_features(f, y, source_probs=one_hot_probs(y, 5)).unavailable == {}


@pytest.fixture
def tiny_mobilenet(tiny_torchvision_weights):
    from transferlab.backbones import resolve

    return resolve(f"torchvision:mobilenet_v3_small@{tiny_torchvision_weights}", image_size=32)


def image_features(backbone, folder):
    import torch

    paths = sorted(folder.glob("*/*.png"))
    y = np.array([p.parent.name == "bright" for p in paths], dtype=int)
    with torch.inference_mode():
        f = backbone.encoder()(**backbone.preprocess(paths)).numpy()  # (N, 576)
    return paths, f, y


def test_source_probabilities_are_the_full_classifiers_softmax(tiny_mobilenet, tiny_torchvision_weights, image_folder):
    import torch
    import torchvision
    from safetensors.torch import load_file

    from transferlab.ranking.cost import source_probabilities

    paths, f, y = image_features(tiny_mobilenet, image_folder)
    probs, note = source_probabilities(tiny_mobilenet, f)
    full = torchvision.models.mobilenet_v3_small(weights=None)
    full.load_state_dict(load_file(str(tiny_torchvision_weights)))
    with torch.inference_mode():
        expected = torch.softmax(full.eval()(tiny_mobilenet.preprocess(paths)["pixel_values"]), dim=1).numpy()
    assert probs.shape == (len(paths), 1000) and "1000 classes" in note
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    scores = score_features(f, y, source_probs=probs)
    assert {"leep", "nce"} <= set(scores) and not scores.unavailable.keys() & {"leep", "nce"}


def test_leep_of_an_informative_source_head_beats_the_same_head_shuffled(
    tiny_mobilenet, tiny_torchvision_weights, make_image_folder, tmp_path
):
    import torch
    from safetensors.torch import load_file, save_file

    from transferlab.backbones import resolve
    from transferlab.ranking.cost import source_probabilities

    paths, f, y = image_features(tiny_mobilenet, make_image_folder(tmp_path / "shapes", n_per_class=30))
    # random weights give near-uniform softmaxes; write a head into the weights file whose source
    # class 7 fires on bright squares and 42 on dark ones (hidden units 0 and 1 = +-6 along the
    # direction between the two classes' mean features, through Hardswish)
    d = f[y == 1].mean(0) - f[y == 0].mean(0)
    u, mid = 6 * d / (d @ d), (f[y == 1].mean(0) + f[y == 0].mean(0)) / 2
    state = load_file(str(tiny_torchvision_weights))
    w0, b0, w3 = (
        torch.zeros_like(state[k]) for k in ("classifier.0.weight", "classifier.0.bias", "classifier.3.weight")
    )
    w0[0], w0[1] = torch.from_numpy(u), torch.from_numpy(-u)
    b0[0], b0[1] = -float(u @ mid), float(u @ mid)
    w3[7, 0] = w3[42, 1] = 5.0
    state.update(
        {
            "classifier.0.weight": w0,
            "classifier.0.bias": b0,
            "classifier.3.weight": w3,
            "classifier.3.bias": torch.zeros_like(state["classifier.3.bias"]),
        }
    )
    save_file(state, str(tmp_path / "informed.safetensors"))
    informed = resolve(f"torchvision:mobilenet_v3_small@{tmp_path / 'informed.safetensors'}", image_size=32)
    probs, _ = source_probabilities(informed, image_features(informed, tmp_path / "shapes")[1])
    shuffled = probs[np.random.default_rng(0).permutation(len(probs))]  # the same answers, to other images
    assert leep(probs, y) > -0.1 and leep(shuffled, y) < -0.5
    assert nce(probs.argmax(1), y) > nce(shuffled.argmax(1), y) + 0.3
    assert score_features(f, y, source_probs=probs)["leep"] > score_features(f, y, source_probs=shuffled)["leep"]


def test_backbones_without_a_source_head_say_why(tiny_bert):
    from transferlab.backbones import resolve
    from transferlab.ranking.cost import source_probabilities

    text = resolve(f"hf:{tiny_bert}")
    probs, why = source_probabilities(text, np.zeros((4, 32)))
    assert probs is None and "has no classifier over its pretraining classes (a sentence embedder)" in why
    assert text._pretrained is None  # nothing was loaded to find that out


def test_measure_cost_reports_peak_memory_of_one_batch(tiny_mobilenet, image_folder):
    from transferlab.backbones.images import TorchvisionBackbone
    from transferlab.ranking.cost import measure_cost

    paths = sorted(image_folder.glob("*/*.png"))
    cost = measure_cost(tiny_mobilenet, paths, batch_size=8)
    weights_mb = tiny_mobilenet.num_params() * 4 / 2**20
    assert cost["peak_memory_batch"] == 8 and cost.get("peak_memory_note") is None
    assert weights_mb < cost["peak_memory_mb"] < 50 * weights_mb
    direct = TorchvisionBackbone(tiny_mobilenet.recipe[0].partition(":")[2], image_size=32)
    assert measure_cost(direct, paths, 8)["peak_memory_mb"] is None


def test_a_run_ranks_image_classifiers_with_leep_nce_and_memory(tiny_torchvision_weights, image_folder, tmp_path):
    import transferlab

    r = transferlab.rank(
        str(image_folder),
        backbones=[f"torchvision:mobilenet_v3_small@{tiny_torchvision_weights}"],
        image_size=32,
        out=str(tmp_path / "r"),
        quiet=True,
    )
    (c,) = r["ranking"]
    assert {"leep", "nce"} <= set(c["scores"])  # from the model's own 1000-class head
    assert c["peak_memory_mb"] > c["weights_mb"] > 0 and c["peak_memory_batch"] > 0
    assert "1000 classes" in c["source_probabilities"]


def test_linear_probe_correctness_is_the_accuracy_per_example():
    from transferlab.ranking.knn import knn_correct, linear_probe_correct

    f, y = blobs("n>d")
    for correct, accuracy in ((linear_probe_correct, linear_probe_accuracy), (knn_correct, knn_accuracy)):
        c = correct(f, y, seed=2)
        assert c.shape == y.shape and c.dtype == bool
        assert c.mean() == accuracy(f, y, seed=2)


def test_wilson_interval_covers_the_rate_and_narrows_with_n():
    from transferlab.ranking.confidence import items_for_interval, wilson_interval

    lo, hi = wilson_interval(80, 100)
    assert lo < 0.8 < hi and hi - lo == pytest.approx(0.155, abs=0.005)  # the textbook value
    lo2, hi2 = wilson_interval(800, 1000)
    assert lo < lo2 < 0.8 < hi2 < hi
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(1.0)
    n = items_for_interval(0.03)
    lo, hi = wilson_interval(n // 2, n)
    assert (
        hi - lo <= 0.0601 and wilson_interval(n // 2 - 40, n - 80)[1] - wilson_interval(n // 2 - 40, n - 80)[0] > 0.06
    )


def separable(n: int, d: int, noise: float, seed: int):
    """Two-class features whose class means differ by 2 along every axis, plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    return 2.0 * y[:, None] + noise * rng.normal(size=(n, d)), y


def test_p_best_is_near_one_for_a_clearly_better_candidate_and_a_half_for_twins():
    from transferlab.ranking.confidence import p_best, predicted_accuracy

    good, y = separable(400, 8, noise=3.0, seed=0)
    bad, _ = separable(400, 8, noise=12.0, seed=1)
    scores = [score_features(f, y) for f in (good, bad, good)]
    probe = [s.correct["linear_probe_accuracy"] for s in scores]
    assert probe[0].mean() > probe[1].mean() + 0.15
    p = p_best(probe[:2])
    assert p[0] > 0.99 and p.sum() == pytest.approx(1.0)
    twins = p_best([probe[0], probe[2]])  # the same features scored twice: equally good
    assert twins == pytest.approx([0.5, 0.5])
    close = p_best([probe[0], probe[0] ^ (np.arange(400) == 0)])  # one example apart
    assert 0.1 < close[0] < 0.9  # tied whenever example 0 is not drawn (e^-1 of the time)
    acc = predicted_accuracy(probe[1], "linear_probe_accuracy")
    assert acc["ci"][0] < acc["mean"] == probe[1].mean() < acc["ci"][1] and acc["n"] == 400


def test_p_best_needs_the_same_examples_for_every_candidate():
    from transferlab.errors import DataError
    from transferlab.ranking.confidence import p_best

    with pytest.raises(DataError, match="same examples"):
        p_best([np.ones(5, bool), np.ones(6, bool)])


def test_a_run_gives_each_candidate_a_predicted_accuracy_and_p_best(tiny_bert, reviews_csv, tmp_path):
    """The same weights under two names: equally good, so each is the best half the time."""
    import shutil

    import transferlab

    twin = shutil.copytree(tiny_bert, tmp_path / "twin")
    r = transferlab.rank(
        reviews_csv,
        text_column="review",
        label_column="stars",
        out=str(tmp_path / "r"),
        backbones=[f"hf:{tiny_bert}", f"hf:{twin}"],
        max_length=16,
        quiet=True,
    )
    assert len(r["ranking"]) == 2
    for c in r["ranking"]:
        pred = c["predicted_frozen_accuracy"]
        assert 0 <= pred["ci"][0] <= pred["mean"] <= pred["ci"][1] <= 1 and pred["by"] == "linear_probe_accuracy"
        assert pred["mean"] == c["scores"]["linear_probe_accuracy"] and pred["ci"][1] - pred["ci"][0] > 0.01
        assert "_probe_correct" not in c
        assert c["p_best"] == pytest.approx(0.5)


@pytest.mark.parametrize("regime", list(REGIMES))
def test_ledoit_wolf_shrinkage_from_singular_values_matches_scikit_learn(regime):
    from sklearn.covariance import ledoit_wolf_shrinkage

    from transferlab.ranking.hscore import _ledoit_wolf_shrinkage

    f, _ = blobs(regime)
    f = (f - f.mean(axis=0)) * np.linspace(0.1, 3, f.shape[1])
    s = np.linalg.svd(f, compute_uv=False)
    ours = _ledoit_wolf_shrinkage(s**2, np.sum(f**2, axis=1), *f.shape)
    assert ours == pytest.approx(ledoit_wolf_shrinkage(f, assume_centered=True), rel=1e-9)


def _ranked(name, probe, p_best):
    return {
        "backbone": name,
        "scores": {"logme": -0.5, "linear_probe_accuracy": probe},
        "predicted_frozen_accuracy": {
            "mean": probe,
            "ci": [probe - 0.04, probe + 0.03],
            "n": 500,
            "by": "linear_probe_accuracy",
        },
        "p_best": p_best,
        "params": 1000,
        "feature_dim": 8,
        "items_per_second": 10.0,
    }


def test_report_and_terminal_show_the_predicted_accuracy_and_p_best():
    from rich.console import Console

    from transferlab.report.ranking import ranking_view
    from transferlab.report.terminal import ranking_table

    ranking = [_ranked("good", 0.91, 0.97), _ranked("weak", 0.80, 0.03)]
    view = ranking_view(ranking)
    assert view["scores"][:2] == ["Predicted acc.", "P(best)"]
    good, weak = view["rows"]
    assert good["scores"][0]["value"] == "0.910 [0.870, 0.940]" and good["scores"][1] == {
        "value": "0.97",
        "best": True,
        "why": None,
    }
    assert weak["scores"][1]["value"] == "0.03" and not weak["scores"][1]["best"]
    assert [name for name, _ in view["legend"][:2]] == ["Predicted acc.", "P(best)"]
    console = Console(record=True, width=160)
    console.print(ranking_table({"ranking": ranking}, wide=True))
    text = console.export_text()
    assert "P(best)" in text and "0.910 [0.870, 0.940]" in text and "0.97" in text
    for width, wide in ((80, False), (100, True)):  # the new columns fit; no number is cut short
        console = Console(record=True, width=width)
        console.print(ranking_table({"ranking": ranking}, wide=wide))
        text = console.export_text()
        assert max(len(line) for line in text.splitlines()) <= width
        assert "0.800 [0.760, 0.830]" in text and "0.03" in text and "1.0k" in text
    # older results without the new fields: no empty columns
    old = [{k: v for k, v in c.items() if k not in ("predicted_frozen_accuracy", "p_best")} for c in ranking]
    assert "Predicted acc." not in ranking_view(old)["scores"]
    console = Console(record=True, width=160)
    console.print(ranking_table({"ranking": old}, wide=True))
    assert "P(best)" not in console.export_text()


def test_report_orders_candidates_by_the_leading_score_and_says_why():
    from transferlab.report.ranking import LEAD, SCORES, ranking_view

    low, high = _ranked("low", 0.80, 0.1), _ranked("high", 0.70, 0.9)
    low["scores"][LEAD], high["scores"][LEAD] = 0.5, 0.9
    view = ranking_view([low, _ranked("none", 0.75, 0.0), high])
    assert [row["backbone"] for row in view["rows"]] == ["high", "low", "none"]  # without the score: last
    assert view["scores"][2] == SCORES[LEAD][0]  # first of the scores, after the predicted accuracy and P(best)
    assert view["notes"][0].startswith(f"Ordered by {SCORES[LEAD][0]}: ")


def test_the_run_orders_candidates_by_the_score_the_report_leads_with():
    """The report reads results.json alone, so it names its lead score itself: the two must agree."""
    from transferlab.ranking.scores import LEAD_SCORE
    from transferlab.report.ranking import LEAD

    assert LEAD == LEAD_SCORE
