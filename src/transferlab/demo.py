"""The offline demos: real data and real pretrained models that pip packages ship.

Sized for a 2-core laptop without a GPU (each demo under 10 minutes there): the training
set is subsampled and epochs are capped, and the report says so at the top.
"""

from __future__ import annotations

from typing import Any

from .config import RunSpec

DEMOS: dict[str, dict[str, Any]] = {
    "text": {
        "backbones": ["minilm"],
        "max_train": 400,
        "max_val": 150,
        "max_test": 500,
        "epochs": 2,
        "max_length": 96,  # the median review is 69 tokens; a batch pads to its longest
        "batch_size": 16,
        "ood_max_items": 200,
        "rungs": [
            "majority",
            "classical",
            "zero_shot",
            "frozen",
            "finetune",
            "full",
            "lora",
            "scratch_small",
        ],  # not scratch: MiniLM from random weights ends at the majority class in this budget (--rungs adds it)
        # zero_shot embeds these in place of the bare label names ("great" is 5 stars, "other" 1-4)
        "label_descriptions": {
            "great": "A five-star review: excellent, delicious, I love it and will buy it again.",
            "other": "A disappointing review: it was not good and I would not buy it again.",
        },
    },
    "image": {
        "backbones": ["mobilenet_v2", "efficientnet_lite0"],
        "max_train": 800,
        "max_val": 200,
        "max_test": 1000,
        # the ranking picks the one backbone the costly rungs train; the cheap ones run on both
        "epochs": 2,
        "image_size": 96,
        "batch_size": 32,
        "top_k": 1,
    },
}


def demo_spec(modality: str = "text", **overrides: Any) -> RunSpec:
    settings = dict(DEMOS[modality])
    settings.update({k: v for k, v in overrides.items() if v is not None})
    caps = f"train {settings['max_train']}, val {settings['max_val']}, test {settings['max_test']}"
    notes = settings["notes"] = list(settings.get("notes") or [])
    notes.insert(
        0,
        f"Demo sized for a 2-core CPU: stratified subsample to {caps} examples; at most "
        f"{settings['epochs']} epochs for the trainable rungs"
        + (
            f"; texts truncated to {settings['max_length']} tokens."
            if modality == "text"
            else f"; images resized to {settings['image_size']} px."
        )
        + (
            f" The costly rungs train only the best {settings['top_k']} backbone(s) by the ranking."
            if settings.get("top_k")
            else ""
        ),
    )
    return RunSpec(**settings)


def demo_data(modality: str = "text"):
    from .data import demo

    data = demo.fine_food_reviews() if modality == "text" else demo.animal_mnist()
    data.reference = f"demo:{modality}"  # how `transferlab run --resume` loads it again
    return data
