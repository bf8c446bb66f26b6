"""zero_shot and lora with the packaged MiniLM on a small task whose label names mean something."""

import pytest

import transferlab
from transferlab.data import from_arrays

pytestmark = pytest.mark.integration

TOPICS = {
    "sports": (
        [
            "The striker scored",
            "Our team won",
            "The coach praised the defence after",
            "Fans cheered as the goalkeeper saved",
            "The runner finished first in",
            "The tennis player served an ace in",
        ],
        ["the final match.", "the league game.", "the second half.", "the championship.", "extra time.", "the derby."],
    ),
    "cooking": (
        [
            "Simmer the onions and garlic",
            "Bake the bread dough",
            "Whisk the eggs with sugar",
            "Season the soup with salt",
            "Roast the vegetables in olive oil",
            "Chop the fresh herbs",
        ],
        ["for ten minutes.", "until golden.", "before serving.", "in a large pan.", "over low heat.", "for the sauce."],
    ),
}


def _sentences() -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for label, (starts, ends) in TOPICS.items():
        texts += [f"{s} {e}" for s in starts for e in ends]
        labels += [label] * (len(starts) * len(ends))
    return texts, labels


def test_zero_shot_beats_chance_and_lora_learns(tmp_path):
    texts, labels = _sentences()
    # sentences built from shared halves match as near-duplicates across splits (21% of train)
    r = transferlab.run(
        from_arrays(texts, labels),
        backbones=["minilm"],
        rungs=["majority", "zero_shot", "lora"],
        epochs=2,
        batch_size=8,
        max_length=32,
        out=str(tmp_path / "run"),
        quiet=True,
        corruptions=False,
        learning_curve=False,
        seeds=1,
        confirm_dedupe=True,
    )
    zero, lora = r.rung("zero_shot:minilm"), r.rung("lora:minilm")
    # no training at all: the label names alone sort the sentences
    assert zero["test"]["accuracy"]["mean"] >= 0.85 and zero["test"]["accuracy"]["ci"][0] > 0.5
    assert zero["chosen"]["prompts"] == {"cooking": "cooking", "sports": "sports"}
    # lora trains: training loss falls and validation ends well above the majority guess
    c = lora["curves"]
    assert c["train_loss"][-1] < c["train_loss"][0]
    assert max(c["val_metric"]) >= 0.9 and lora["test"]["accuracy"]["mean"] >= 0.85
    cost = lora["cost"]
    assert cost["trainable_params"] < 0.05 * cost["total_params"]
    assert cost["adapter_bytes"] == 4 * cost["adapter_params"]  # float32
