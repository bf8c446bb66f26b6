"""Where a fine-tuning step's time goes: each part of one training step, timed on its own.

The model of bench/finetune.py (the backbone with transferlab's head, from seed 0), a random
training batch per step (MiniLM: 16 fine-food reviews at 128 tokens; MobileNetV2: 32 Animal-MNIST
images at 96 px), one torch thread:

* batch preparation as transferlab's loop does it (``backbone.preprocess`` on the raw items:
  tokenising, or decoding and augmenting images); for text also as ``transformers.Trainer`` does
  it (token ids made once up front, padded per batch by ``DataCollatorWithPadding``);
* forward, loss, backward, gradient clipping, the loop's bookkeeping (``loss.item()``, the count
  of correct predictions), ``zero_grad(set_to_none=True)``;
* the optimizer step of AdamW three ways on the same gradients: the per-parameter loop
  (``torch.optim.AdamW()``'s default on CPU), ``foreach=True``, and ``fused=True`` (what
  ``transformers.Trainer`` uses by default, and transferlab's loop now).

    python bench/step_sections.py [--steps 8]
Writes bench/results/step_sections.json (medians in milliseconds, the first step left out).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from finetune import build
from run_all import median, save
from torch import nn

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def sections(backbone, task, batch_size: int, steps: int) -> dict[str, float]:
    from transformers import DataCollatorWithPadding

    items, y = task.part("train")
    text = backbone.modality == "text"
    if text:  # the Trainer's way: token ids once, padding per batch
        ids = backbone.tokenizer(list(items), truncation=True, max_length=backbone.max_length)
        rows = [{k: ids[k][i] for k in ids.keys()} for i in range(len(items))]
        collate = DataCollatorWithPadding(backbone.tokenizer)
    model = build(backbone, len(task.classes)).train()
    params = list(model.parameters())
    optimizers = {
        "optimizer step: AdamW, per-parameter loop": torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01),
        "optimizer step: AdamW, foreach": torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01, foreach=True),
        "optimizer step: AdamW, fused": torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01, fused=True),
    }
    rng = np.random.default_rng(0)
    times: dict[str, list[float]] = {}

    def timed(name: str, fn):
        start = time.perf_counter()
        out = fn()
        times.setdefault(name, []).append(time.perf_counter() - start)
        return out

    for step in range(steps + 1):
        idx = rng.permutation(len(items))[:batch_size]
        batch = timed(
            "batch preparation (from the raw items)", lambda: backbone.preprocess([items[i] for i in idx], True)
        )
        if text:
            timed("batch preparation (token ids made once, padded per batch)", lambda: collate([rows[i] for i in idx]))
        targets = torch.as_tensor(y[idx])
        logits = timed("forward", lambda: model(**batch))
        loss = timed("loss", lambda: nn.functional.cross_entropy(logits, targets))
        timed("backward", loss.backward)
        timed("gradient clipping", lambda: torch.nn.utils.clip_grad_norm_(params, 1.0))
        timed("bookkeeping (loss.item, correct count)", lambda: (loss.item(), int((logits.argmax(1) == targets).sum())))
        names = list(optimizers) if step % 2 else list(optimizers)[::-1]  # alternated: drift hits all alike
        for name in names:
            timed(name, optimizers[name].step)
        timed("zero_grad(set_to_none=True)", lambda: model.zero_grad(set_to_none=True))
        print(f"step {step}: batch {tuple(next(iter(batch.values())).shape)}", flush=True)
    return {name: 1000 * median(t[1:]) for name, t in times.items()}  # the first step warms up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    from transferlab.backbones import resolve
    from transferlab.config import RunSpec
    from transferlab.demo import demo_data
    from transferlab.runner import prepare_task

    results = []
    for modality, backbone, name, bs in (
        ("text", lambda: resolve("minilm", max_length=128), "MiniLM, fine-food reviews, 128 tokens", 16),
        ("image", lambda: resolve("mobilenet_v2", image_size=96), "MobileNetV2, Animal-MNIST, 96 px", 32),
    ):
        task = prepare_task(demo_data(modality), RunSpec(max_train=400, max_val=150, max_test=500))
        ms = sections(backbone(), task, bs, args.steps)
        results.append({"setup": name, "batch_size": bs, "steps_timed": args.steps, "median_ms": ms})
        for k, v in ms.items():
            print(f"{name}: {k}: {v:.1f} ms", flush=True)
    save("step_sections", {"torch_threads": torch.get_num_threads(), "results": results})


if __name__ == "__main__":
    main()
