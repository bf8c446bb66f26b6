"""End to end on tiny random models: the ladder, results.json, the report, and honest splits."""

import csv
import json

import pytest

import transferlab
from transferlab.errors import ConfigError


@pytest.fixture
def finished_run(tiny_bert, reviews_csv, tmp_path):
    return transferlab.run(
        reviews_csv,
        text_column="review",
        label_column="stars",
        backbones=[f"hf:{tiny_bert}"],
        out=str(tmp_path / "run"),
        epochs=2,
        head_epochs=5,
        max_length=16,
        quiet=True,
    )


def test_every_rung_reports_held_out_metrics(finished_run):
    r = finished_run
    names = [x["name"] for x in r["rungs"]]
    assert names[:2] == ["majority", "classical"]
    assert {n.split(":")[0] for n in names} == {
        "majority",
        "classical",
        "frozen",
        "finetune",
        "full",
        "scratch",
        "scratch_small",
    }
    assert "scratch_small" in names  # no backbone: one rung, not one per candidate
    n_test = r["task"]["splits"]["test"]
    for rung in r["rungs"]:
        t = rung["test"]
        assert t["n"] == n_test
        assert sum(c["support"] for c in t["per_class"].values()) == n_test
        lo, hi = t["accuracy"]["ci"]
        assert lo <= t["accuracy"]["mean"] <= hi
        assert rung["cost"]["fit_seconds"] >= 0
    # majority really predicts one class; the telling-words task is easy for TF-IDF
    assert r.rung("majority")["test"]["balanced_accuracy"]["mean"] == 0.5
    assert r.rung("classical")["test"]["accuracy"]["mean"] >= 0.9


def test_trainable_rungs_have_curves_and_finetune_starts_from_head(finished_run):
    ft = [x for x in finished_run["rungs"] if x["strategy"] == "finetune"][0]
    c = ft["curves"]
    assert c["epoch"][0] == 0 and c["phase"][0] == "head warm-up"
    assert len(c["train_loss"]) == len(c["val_metric"]) == len(c["epoch"])
    full = [x for x in finished_run["rungs"] if x["strategy"] == "full"][0]
    assert full["cost"]["trainable_params"] == full["cost"]["total_params"]
    frozen = [x for x in finished_run["rungs"] if x["strategy"] == "frozen"][0]
    assert frozen["cost"]["trainable_params"] < frozen["cost"]["total_params"]


def test_run_directory_is_complete_and_test_split_disjoint(finished_run):
    out = finished_run.path
    data = json.loads((out / "results.json").read_text())
    assert data["schema"] == "transferlab.run/1"
    for key in ("task", "audit", "ranking", "rungs", "verdicts", "recommendation", "environment"):
        assert key in data
    assert data["recommendation"]["rung"] in [x["name"] for x in data["rungs"]]
    assert (out / "report.html").read_text().startswith("<!DOCTYPE html>")
    rows = list(csv.DictReader(open(out / "split_manifest.csv")))
    train = {r["sha256"] for r in rows if r["split"] == "train"}
    test = [r for r in rows if r["split"] == "test"]
    assert len(test) == data["task"]["splits"]["test"]
    assert not any(r["sha256"] in train for r in test)  # this synthetic set has no duplicates
    assert transferlab.load_run(out)["rungs"] == data["rungs"]


def test_second_run_reuses_cached_features(tiny_bert, reviews_csv, tmp_path):
    kwargs = dict(
        text_column="review",
        label_column="stars",
        backbones=[f"hf:{tiny_bert}"],
        rungs="frozen",
        max_length=16,
        quiet=True,
    )
    first = transferlab.run(reviews_csv, out=str(tmp_path / "a"), **kwargs)
    second = transferlab.run(reviews_csv, out=str(tmp_path / "b"), **kwargs)
    assert not first["ranking"][0]["features_from_cache"]
    assert second["ranking"][0]["features_from_cache"]  # nothing was extracted the second time
    assert second["ranking"][0]["items_per_second"] == first["ranking"][0]["items_per_second"]
    assert first.rung(f"frozen:hf:{tiny_bert}")["test"] == second.rung(f"frozen:hf:{tiny_bert}")["test"]


def test_image_folder_run(image_folder, tiny_torchvision_weights, tmp_path):
    r = transferlab.run(
        image_folder,
        backbones=[f"torchvision:mobilenet_v3_small@{tiny_torchvision_weights}"],
        rungs="majority,classical,frozen,finetune",
        out=str(tmp_path / "img"),
        epochs=1,
        head_epochs=3,
        image_size=32,
        batch_size=8,
        quiet=True,
    )
    assert r["task"]["modality"] == "image"
    assert r.rung("classical")["test"]["accuracy"]["mean"] == 1.0  # dark vs bright is trivial for HOG+pixels


def test_finished_run_directory_is_not_overwritten(finished_run, reviews_csv):
    with pytest.raises(ConfigError, match="already holds a finished run"):
        transferlab.run(
            reviews_csv,
            text_column="review",
            label_column="stars",
            rungs="majority",
            out=str(finished_run.path),
            quiet=True,
        )


def test_bad_settings_fail_before_anything_is_written(reviews_csv, tmp_path):
    with pytest.raises(ConfigError, match="Unknown rung 'lora-ish'"):
        transferlab.run(reviews_csv, rungs="majority,lora-ish", out=str(tmp_path / "x"))
    with pytest.raises(ConfigError, match="'epochs' setting must be a number >= 1 .* Got 0"):
        transferlab.run(reviews_csv, epochs=0, out=str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()


def test_random_weight_backbone_yields_negative_transfer(tiny_bert, reviews_csv, tmp_path):
    """The tiny BERT's weights are random: its features carry no knowledge, TF-IDF does better."""
    r = transferlab.run(
        reviews_csv,
        text_column="review",
        label_column="stars",
        backbones=[f"hf:{tiny_bert}"],
        rungs="majority,classical,frozen",
        out=str(tmp_path / "r"),
        max_length=16,
        quiet=True,
    )
    codes = [v["code"] for v in r["verdicts"]]
    assert "negative_transfer" in codes and "transfer_helped" not in codes
    assert r["recommendation"]["rung"] == "classical"


def test_rank_scores_candidates_without_training(tiny_bert, reviews_csv, tmp_path):
    r = transferlab.rank(
        reviews_csv,
        text_column="review",
        label_column="stars",
        out=str(tmp_path / "rank"),
        backbones=[f"hf:{tiny_bert}"],
        max_length=16,
        quiet=True,
    )
    assert r["rungs"] == [] and r["recommendation"] is None
    (cand,) = r["ranking"]
    assert set(cand["scores"]) >= {"logme", "hscore", "hscore_shrinkage", "knn_accuracy", "linear_probe_accuracy"}
    assert cand["params"] > 0 and cand["licence"] == "mit"
    assert (tmp_path / "rank" / "results.json").exists()


def test_top_k_trains_only_the_best_candidates(tiny_bert, reviews_csv, tmp_path):
    import shutil

    import torch
    from transformers import BertModel

    other = tmp_path / "other-bert"
    shutil.copytree(tiny_bert, other)
    torch.manual_seed(99)
    BertModel(BertModel.from_pretrained(tiny_bert).config).save_pretrained(other)  # same shape, other weights
    kwargs = dict(text_column="review", label_column="stars", max_length=16, quiet=True, epochs=1, head_epochs=2)
    r = transferlab.run(
        reviews_csv,
        backbones=[f"hf:{tiny_bert}", f"hf:{other}"],
        rungs="frozen,finetune",
        top_k=1,
        out=str(tmp_path / "k"),
        **kwargs,
    )
    best, second = (c["backbone"] for c in r["ranking"])
    assert r["ranking"][0]["scores"]["logme"] >= r["ranking"][1]["scores"]["logme"]
    assert sorted(x["name"] for x in r["rungs"]) == sorted([f"frozen:{best}", f"finetune:{best}", f"frozen:{second}"])
    assert r["ranking"][1]["achieved_test_accuracy"].keys() == {"frozen"}


def _test_split_without_negatives():
    """Reviews whose given test split holds one class: the newest data lost the other."""
    import numpy as np

    from transferlab.data import from_arrays

    rng = np.random.default_rng(0)
    words = {"pos": ["great", "tasty", "fresh", "lovely"], "neg": ["awful", "stale", "bland", "nasty"]}
    texts, labels, splits = [], [], []
    for i in range(120):
        split = "train" if i < 80 else "val" if i < 100 else "test"
        label = "pos" if split == "test" else ["pos", "neg"][i % 2]
        texts.append(
            " ".join(rng.choice(["the", "box", "was", "very", "quite"], 4)) + f" {i} " + rng.choice(words[label])
        )
        labels.append(label)
        splits.append(split)
    return from_arrays(texts, labels, splits=splits)


def test_one_class_test_split_gives_an_error_and_no_recommendation(tmp_path, capfd, recwarn):
    r = transferlab.run(
        _test_split_without_negatives(), rungs="majority,classical", out=str(tmp_path / "r"), quiet=False
    )
    first = r["verdicts"][0]
    assert first["code"] == "test_cannot_decide" and first["severity"] == "error"
    assert first["evidence"]["counts"] == {"neg": 0, "pos": 20}
    assert r["recommendation"]["rung"] is None and r["recommendation"]["why"].startswith("No recommendation")
    assert "held-out test" not in r["recommendation"]["why"]
    # scikit-learn's metric warnings about the one-class test stay out of the terminal, in warnings.txt
    err = capfd.readouterr().err
    assert "UserWarning" not in err and "y_pred contains classes not in y_true" not in err
    assert "library warnings" in err and "warnings.txt" in err
    assert not [w for w in recwarn if "y_true" in str(w.message)]
    kept = (tmp_path / "r" / "warnings.txt").read_text()
    assert "UserWarning" in kept and "y_pred contains classes not in y_true" in kept
    report = (tmp_path / "r" / "report.html").read_text()
    assert "No recommendation" in report and "test_cannot_decide" in report
