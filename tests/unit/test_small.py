"""The scratch_small rung: a small model from random weights learns on small real sets (scikit-learn's
digits, fine-food reviews, synthesised speech), never reads test labels, takes --train-seeds, and
exports (images, text) or refuses to with the reason (audio)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import transferlab
from transferlab.config import RunSpec
from transferlab.data.sources import Dataset
from transferlab.errors import ConfigError
from transferlab.export import ArtifactError, export
from transferlab.rungs import RUNGS, Context
from transferlab.runner import prepare_task

QUIET = dict(audit=False, corruptions=False, learning_curve=False, seeds=1, quiet=True)


def digits(n: int = 500) -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = [(x * 16).clip(0, 255).astype(np.uint8) for x in d.images[:n]]  # 8x8, values 0..16 -> 0..255
    return Dataset("image", images, [str(t) for t in d.target[:n]], [f"digit {i}" for i in range(n)])


def fine_food(n: int) -> Dataset:
    from transferlab.data import demo

    data = demo.fine_food_reviews()
    keep = [i for i, s in enumerate(data.splits) if s == "train"][:n]
    return Dataset(
        "text", [data.items[i] for i in keep], [data.labels[i] for i in keep], [data.origins[i] for i in keep]
    )


def fit(task, spec, seed: int = 0):
    return RUNGS.get("scratch_small")().run(Context(task, spec, seed))


def accuracy(task, pred) -> tuple[float, float]:
    """(accuracy, majority share) on the test split."""
    y = task.part("test")[1]
    return float((pred == y).mean()), float(np.bincount(y).max() / len(y))


@pytest.fixture(scope="module")
def digit_task():
    spec = RunSpec(rungs=["scratch_small"], small_flip=False, small_epochs=25)
    return prepare_task(digits(), spec), spec


@pytest.fixture(scope="module")
def review_task():
    spec = RunSpec(rungs=["scratch_small"], small_epochs=30, max_train=1200, max_val=200, max_test=400)
    return prepare_task(fine_food(2400), spec), spec


def test_small_cnn_learns_digits_from_scratch(digit_task):
    task, spec = digit_task
    out = fit(task, spec)
    acc, majority = accuracy(task, out.test_pred)
    assert acc > 0.85 > majority + 0.5, (acc, majority)
    assert "16x16 grey images" in out.notes[0] and "no flips" in out.notes[0]  # 8x8 upsampled, 1 channel
    assert out.trainable_params == out.total_params < 50_000
    assert out.curves["best_epoch"] >= 1 and len(out.curves["epoch"]) <= spec.small_epochs
    assert np.allclose(out.test_proba.sum(1), 1) and np.array_equal(out.test_proba.argmax(1), out.test_pred)


def test_small_model_stops_at_its_deadline_and_keeps_its_best_epoch(digit_task):
    """Under a time limit the small control has a deadline (its share of the limit): it stops
    there, keeps the best epoch's weights (a first epoch is scored part-trained) and says so."""
    import time

    from transferlab.training.deadline import deadline

    task, spec = digit_task
    spec = dataclasses.replace(spec, small_epochs=1000, small_patience=1000)
    with deadline(time.time() + 3.0):
        out = fit(task, spec)
    assert out.chosen["stopped_at_limit"] and 1 <= len(out.curves["epoch"]) < 1000
    assert any("Stopped at its share of the time limit" in note for note in out.notes)
    assert out.curves["best_epoch"] >= 1 and len(out.test_pred) == len(task.part("test")[1])


def test_bag_of_ngrams_learns_fine_food_reviews(review_task):
    from transferlab.evaluation.metrics import score

    task, spec = review_task
    out = fit(task, spec)
    acc, majority = accuracy(task, out.test_pred)
    # the majority class is ~65% of the reviews; TF-IDF + logistic regression reaches ~0.77 on this split
    assert acc > majority + 0.06, (acc, majority)
    assert score("balanced_accuracy", task.part("test")[1], out.test_pred) > 0.65
    assert "words and word pairs" in out.notes[0]


def _shuffled(task, split: str):
    """A copy of ``task`` whose labels in ``split`` are permuted (and really differ)."""
    shuffled = task.select(np.arange(len(task.items)))
    rows = shuffled.indices(split)
    shuffled.y = shuffled.y.copy()
    shuffled.y[rows] = np.random.default_rng(0).permutation(shuffled.y[rows])
    assert not np.array_equal(shuffled.y[rows], task.y[rows])
    return shuffled


# a few epochs are enough to show that labels stay out: the accuracy tests above train to the end
LEAK_EPOCHS = 4


@pytest.mark.parametrize("which", ["image", "text"])
def test_test_labels_are_never_read(which, digit_task, review_task):
    task, spec = digit_task if which == "image" else review_task
    spec = dataclasses.replace(spec, small_epochs=LEAK_EPOCHS)
    shuffled = _shuffled(task, "test")
    a, b = fit(task, spec), fit(shuffled, spec)
    assert np.array_equal(a.test_pred, b.test_pred) and np.allclose(a.test_proba, b.test_proba)


def test_validation_labels_stay_out_of_the_fit(review_task):
    """Early stopping runs on a part of train, so the ladder compares the rung on validation without
    the optimism of having picked its epoch there: shuffled validation labels change nothing."""
    task, spec = review_task
    spec = dataclasses.replace(spec, small_epochs=LEAK_EPOCHS)
    shuffled = _shuffled(task, "val")
    a, b = fit(task, spec), fit(shuffled, spec)
    assert np.array_equal(a.val_pred, b.val_pred) and np.array_equal(a.test_pred, b.test_pred)
    assert any("held out" in note and "validation stays out of the fit" in note for note in a.notes)


def test_image_run_exports_the_same_probabilities(tmp_path):
    """Through transferlab.run on a folder of PNGs: export rebuilds the model and its input pipeline."""
    from PIL import Image

    data = digits(300)
    for i, (img, label) in enumerate(zip(data.items, data.labels)):
        (tmp_path / "digits" / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(tmp_path / "digits" / label / f"{i}.png")
    r = transferlab.run(
        tmp_path / "digits",
        rungs=["majority", "scratch_small"],
        out=str(tmp_path / "run"),
        small_epochs=15,
        small_flip=False,
        **QUIET,
    )
    record = r.rung("scratch_small")
    assert record["test"]["accuracy"]["mean"] > 0.6 and record["backbone"] is None
    out = export(r.path, "scratch_small", tmp_path / "art")
    config = json.loads((out / "config.json").read_text())
    assert config["head"]["kind"] == "small" and config["backbone"] is None
    import csv

    rows = [row for row in csv.DictReader(open(r.path / "split_manifest.csv")) if row["split"] == "test"]
    predictor = transferlab.load_artifact(out)
    assert predictor.predict_proba([row["origin"] for row in rows]).argmax(1).tolist() == record["predictions"]["test"]


def test_train_seeds_and_the_trained_learning_curve(reviews_csv, tmp_path):
    settings = dict(text_column="review", label_column="stars", rungs=["scratch_small"], small_epochs=5, **QUIET)
    r = transferlab.run(reviews_csv, train_seeds=2, out=str(tmp_path / "r"), **settings)
    record = r.rung("scratch_small")
    assert record["seeds"] == [0, 1] and len(record["test"]["accuracy"]["seeds"]) == 2
    assert not r["learning_curve"]  # retraining for the curve only on request
    settings["learning_curve"] = True
    r = transferlab.run(reviews_csv, learning_curve_trained=True, out=str(tmp_path / "c"), **settings)
    curve = r["learning_curve"]["rungs"]["scratch_small"]
    assert len(curve["n_per_class"]) == len(curve["score_mean"]) >= 2, curve


def test_audio_learns_spoken_words_and_refuses_export(spoken_words, tmp_path):
    r = transferlab.run(
        spoken_words,
        rungs=["majority", "scratch_small"],
        out=str(tmp_path / "run"),
        clip_seconds=1.0,
        small_epochs=10,
        test_fraction=0.25,
        **QUIET,
    )
    record = r.rung("scratch_small")
    assert "log-mel spectrograms" in record["notes"][0]
    assert record["val"]["accuracy"]["mean"] > r.rung("majority")["val"]["accuracy"]["mean"]
    assert record["artifact"]["not_exportable"].startswith("scratch_small audio models have no export format")
    with pytest.raises(ArtifactError, match="cannot be exported: scratch_small audio"):
        export(r.path, "scratch_small", tmp_path / "art")


@pytest.mark.parametrize(
    "setting, value", [("small_epochs", 0), ("small_patience", 1.5), ("small_lr", -1e-3), ("small_flip", "no")]
)
def test_bad_settings_name_the_field(setting, value):
    with pytest.raises(ConfigError, match=f"The '{setting}' setting must be"):
        RunSpec(**{setting: value})


def test_is_a_default_rung_without_a_backbone():
    rung = RUNGS.get("scratch_small")
    assert "scratch_small" in RunSpec().rungs and not rung.needs_backbone and rung.seeding == "train"
    assert not RunSpec(rungs=["majority", "scratch_small"]).needs_backbone()
