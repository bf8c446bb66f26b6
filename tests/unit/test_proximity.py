"""Label-free domain proximity: the measures on cases with a known answer, their independence from
the labels, and how a run records and the report shows them."""

import numpy as np
import pytest

from transferlab.errors import DataError
from transferlab.ranking.proximity import domain_proximity, feature_proximity, source_proximity

Z = 1000  # ImageNet-1k's classes


def test_a_uniform_source_softmax_is_far():
    p = source_proximity(np.full((200, Z), 1 / Z))
    assert p["source_information"] == pytest.approx(0, abs=1e-9)
    assert p["source_confidence"] == pytest.approx(1 / Z)


def test_confident_predictions_spread_over_many_classes_are_near():
    n = 300
    p = source_proximity(np.eye(Z)[np.arange(n) % Z])  # one-hot, each example its own class
    assert p["source_information"] == pytest.approx(np.log(n))  # the most n examples can carry
    assert p["source_confidence"] == pytest.approx(1)
    assert p["source_classes"] == pytest.approx(n)


def test_confident_predictions_that_all_name_one_class_are_far():
    p = source_proximity(np.eye(Z)[np.full(300, 7)])
    assert p["source_information"] == pytest.approx(0, abs=1e-12)
    assert p["source_confidence"] == pytest.approx(1) and p["source_classes"] == pytest.approx(1)


def test_source_information_falls_as_predictions_blur_towards_uniform():
    sharp = np.eye(Z)[np.random.default_rng(0).integers(0, Z, 400)]
    values = [source_proximity((1 - a) * sharp + a / Z)["source_information"] for a in (0.0, 0.3, 0.7, 0.95)]
    assert values == sorted(values, reverse=True) and values[0] > 5 * values[-1]


def test_effective_rank_counts_equal_directions_and_collapsed_features_have_one():
    k, d = 6, 20
    eye = np.eye(d)[:k]
    spread = feature_proximity(np.vstack([eye, -eye]))  # k orthogonal directions of equal variance, mean 0
    assert spread["effective_rank"] == pytest.approx(k)
    assert spread["centroid_cosine"] == pytest.approx(0, abs=1e-12)
    rng = np.random.default_rng(0)
    collapsed = 5 + rng.normal(size=(300, 1)) @ rng.normal(size=(1, d)) + 0.01 * rng.normal(size=(300, d))
    c = feature_proximity(collapsed)
    assert c["effective_rank"] < 1.1 and c["centroid_cosine"] > 0.95
    isotropic = feature_proximity(rng.normal(size=(300, d)))
    assert isotropic["effective_rank"] > 15 and isotropic["centroid_cosine"] < 0.3


def test_identical_rows_have_no_direction():
    assert feature_proximity(np.ones((10, 4)))["effective_rank"] == 0.0


def test_domain_proximity_reads_no_labels_and_subsamples_without_them():
    """No labels argument, and its subsample is drawn from the row count alone: the same rows
    whatever the labels (score_features' subsample is stratified by label)."""
    import inspect

    assert "labels" not in inspect.signature(domain_proximity).parameters
    rng = np.random.default_rng(1)
    f = rng.normal(size=(1500, 12))
    probs = rng.dirichlet(np.ones(30), size=1500)
    full = domain_proximity(f, source_probs=probs, max_items=2000)
    sub = domain_proximity(f, source_probs=probs, max_items=400)
    assert set(full) == {
        "source_information",
        "source_confidence",
        "source_classes",
        "effective_rank",
        "centroid_cosine",
    }
    assert sub != full and sub == domain_proximity(f, source_probs=probs, max_items=400)  # seeded
    assert set(domain_proximity(f)) == {"effective_rank", "centroid_cosine"}  # no source head


def test_bad_inputs_name_the_argument():
    with pytest.raises(DataError, match="source_probs"):
        domain_proximity(np.zeros((5, 3)), source_probs=np.full((4, 2), 0.5))
    with pytest.raises(DataError, match="source_probs"):
        source_proximity(np.ones((4, 3)))  # logits, not a softmax
    with pytest.raises(DataError, match="at least 2 rows"):
        feature_proximity(np.ones((1, 3)))


def _split_csv(tmp_path, shuffle: bool):
    """Synthetic reviews with fixed train/val/test splits; the training labels shuffled if asked."""
    import pandas as pd
    from conftest import synthetic_reviews

    texts, labels = synthetic_reviews()
    split = np.array(["train", "train", "train", "val", "test"] * (len(texts) // 5 + 1))[: len(texts)]
    labels = np.array(labels)
    if shuffle:
        train = np.flatnonzero(split == "train")
        labels[train] = labels[np.random.default_rng(3).permutation(train)]
    path = tmp_path / f"reviews-{shuffle}.csv"
    pd.DataFrame({"review": texts, "stars": labels, "split": split}).to_csv(path, index=False)
    return str(path)


def test_a_run_records_proximity_and_shuffling_the_labels_changes_nothing(tiny_bert, tmp_path):
    import transferlab

    def rank(shuffle):
        (c,) = transferlab.rank(
            _split_csv(tmp_path, shuffle),
            text_column="review",
            label_column="stars",
            split_column="split",
            backbones=[f"hf:{tiny_bert}"],
            max_length=16,
            out=str(tmp_path / f"r{shuffle}"),
            quiet=True,
        )["ranking"]
        return c

    kept, shuffled = rank(False), rank(True)
    assert set(kept["domain_proximity"]) == {"effective_rank", "centroid_cosine"}  # a sentence embedder: no head
    assert kept["domain_proximity"] == shuffled["domain_proximity"]
    assert kept["scores"]["knn_accuracy"] != shuffled["scores"]["knn_accuracy"]  # the labels did change


def test_a_run_with_an_imagenet_head_records_the_source_measures(tiny_torchvision_weights, image_folder, tmp_path):
    import transferlab

    (c,) = transferlab.rank(
        str(image_folder),
        backbones=[f"torchvision:mobilenet_v3_small@{tiny_torchvision_weights}"],
        image_size=32,
        out=str(tmp_path / "r"),
        quiet=True,
    )["ranking"]
    p = c["domain_proximity"]
    assert set(p) == {"source_information", "source_confidence", "source_classes", "effective_rank", "centroid_cosine"}
    assert 0 <= p["source_information"] <= np.log(1000) and 1 / 1000 <= p["source_confidence"] <= 1


def _candidate(name: str, proximity: dict | None, note: str = "") -> dict:
    c = {
        "backbone": name,
        "scores": {"knn_accuracy": 0.8, "linear_probe_accuracy": 0.8},
        "predicted_frozen_accuracy": {"mean": 0.8, "ci": [0.76, 0.84], "n": 500, "by": "linear_probe_accuracy"},
        "p_best": 0.5,
        "params": 1000,
        "feature_dim": 8,
        "items_per_second": 10.0,
        "pretrained_on": "ImageNet-1k",
        "source_probabilities": note,
    }
    if proximity is not None:
        c["domain_proximity"] = proximity
    return c


def test_report_and_terminal_show_proximity_next_to_the_provenance_with_its_evidence():
    from rich.console import Console

    from transferlab.report.ranking import PROXIMITY_EVIDENCE, ranking_view
    from transferlab.report.terminal import print_summary, ranking_table

    head = _candidate(
        "efficientnet_lite0", {"source_information": 2.3412, "centroid_cosine": 0.7012, "effective_rank": 40.0}
    )
    text = _candidate("embedder", {"centroid_cosine": 0.4811, "effective_rank": 90.0}, note="no classifier here")
    view = ranking_view([head, text])
    assert view["proximity"] and PROXIMITY_EVIDENCE in view["notes"]
    assert "does not" in PROXIMITY_EVIDENCE or "weak" in PROXIMITY_EVIDENCE  # the evidence is stated, not sold
    rows = {row["backbone"]: row["proximity"] for row in view["rows"]}
    assert rows["efficientnet_lite0"] == {"info": "2.34", "why": None, "cosine": "0.70"}
    assert rows["embedder"] == {"info": "n/a", "why": "no classifier here", "cosine": "0.48"}
    assert {"Source info", "Centroid cos."} <= {name for name, _ in view["legend"]}
    for width, wide in ((80, False), (160, True)):
        console = Console(record=True, width=width)
        print_summary({"ranking": [head, text]}, console)
        out = console.export_text()
        assert "src" in out and "info" in out and "2.34" in out and "label-free" in out
        assert ("ctr" in out and "0.48" in out) == wide
        assert "peak MB" in out and "0.800 [0.760, 0.840]" in out and "P(best)" in out  # no number cut short
        assert max(len(line) for line in out.splitlines()) <= width
    # a run recorded before the measure existed: no column, no note
    old = [_candidate("imagenet", None)]
    assert not ranking_view(old)["proximity"] and PROXIMITY_EVIDENCE not in ranking_view(old)["notes"]
    console = Console(record=True, width=160)
    console.print(ranking_table({"ranking": old}, wide=True))
    assert "info" not in console.export_text()


def test_the_html_report_has_the_proximity_column():
    from transferlab.report import render_html

    head = _candidate("imagenet", {"source_information": 2.3412, "centroid_cosine": 0.7012, "effective_rank": 40.0})
    html = render_html({"schema": "transferlab.run/1", "task": {"modality": "image"}, "ranking": [head]})
    assert "Near pretraining" in html and ">2.34<" in html and "cos 0.70" in html
    assert "Near pretraining" not in render_html({"schema": "transferlab.run/1", "ranking": [_candidate("x", None)]})
