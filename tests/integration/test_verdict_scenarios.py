"""Verdicts on constructed scenarios, with real pretrained models where the scenario needs one."""

import numpy as np
import pytest

import transferlab
from transferlab.data import from_arrays
from transferlab.demo import demo_data

pytestmark = pytest.mark.integration


def _codes(results, severity=None):
    return [v["code"] for v in results["verdicts"] if severity is None or v["severity"] == severity]


def test_learning_rate_100x_too_high_is_caught_by_the_screen(tmp_path):
    """finetune's backbone at 100x its recipe's rate (1e-2 on every layer of MobileNetV2): a screen of
    1x, 0.1x and 0.01x for one epoch keeps a lower rate and names the one that was too high. (At 1e-3
    MobileNetV2 still forgets on 64-px images, so a screen that stops at 0.1x compares two failures whose
    order is noise.)"""
    ds = demo_data("image")
    idx = np.random.default_rng(0).permutation(len(ds))[:700]
    data = from_arrays([ds.items[i] for i in idx], [ds.labels[i] for i in idx])
    r = transferlab.run(
        data,
        backbones=["mobilenet_v2"],
        rungs="frozen,finetune",
        image_size=64,
        epochs=2,
        head_epochs=10,
        batch_size=32,
        top_lr_ratio=10.0,
        bottom_lr_ratio=1.0,
        lr_factors=[1, 0.1, 0.01],
        audit=False,  # the screen is under test: no audit, corrupted copies or learning curve to pay for
        corruptions=False,
        learning_curve=False,
        out=str(tmp_path / "r"),
        quiet=True,
    )
    finetune = r.rung("finetune:mobilenet_v2")
    assert finetune["chosen"]["lr"] == pytest.approx(1e-4) and len(finetune["chosen"]["lr_trials"]) == 3
    too_high = [v for v in r["verdicts"] if v["code"] == "learning_rate_too_high"]
    assert too_high, r["verdicts"]
    evidence = too_high[0]["evidence"]
    assert evidence["too_high"]["lr"] == pytest.approx(1e-2) and evidence["fixed_by"]["lr"] < 1e-2
    assert evidence["fixed_by"]["val_metric"] > evidence["too_high"]["val_metric"] + 0.3
    assert "catastrophic_forgetting" not in _codes(r)


# Train on some words, test on their synonyms: a bag of words cannot generalise, sentence embeddings can.
TRAIN = {
    "animal": ["dog", "cat", "horse", "cow", "sheep", "rabbit"],
    "vehicle": ["car", "truck", "bus", "train", "bicycle", "plane"],
}
TEST = {
    "animal": ["puppy", "kitten", "pony", "goat", "lamb", "hamster"],
    "vehicle": ["automobile", "lorry", "coach", "tram", "motorbike", "jet"],
}
TEMPLATES = [
    "I saw a {} yesterday",
    "there is a {} outside",
    "my neighbour has a {}",
    "look at that {}",
    "the {} was very fast",
    "a photo of a {}",
    "we talked about the {}",
    "the old {} is here",
]


def test_clean_balanced_easy_task_yields_no_warnings(tmp_path):
    texts, labels, splits = [], [], []
    for words, split_of in ((TRAIN, lambda i: "val" if i % 4 == 0 else "train"), (TEST, lambda i: "test")):
        for label, nouns in words.items():
            for i, (noun, template) in enumerate((n, t) for n in nouns for t in TEMPLATES):
                texts.append(template.format(noun))
                labels.append(label)
                splits.append(split_of(i))
    r = transferlab.run(
        from_arrays(texts, labels, splits=splits),
        backbones=["minilm"],
        rungs="majority,classical,frozen",
        out=str(tmp_path / "r"),
        quiet=True,
    )
    assert r.rung("frozen:minilm")["test"]["accuracy"]["mean"] > 0.9
    assert _codes(r, "warning") == [] and _codes(r, "error") == [], r["verdicts"]
    assert "transfer_helped" in _codes(r)
