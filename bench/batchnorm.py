"""Why ``full`` collapsed on EfficientNet-Lite0: BatchNorm statistics, head rate, or something else.

The ``full`` recipe (a new head and every layer at one rate, transferlab's loop) trains for one
epoch - the learning-rate screen's epoch - from the same initial weights and batches, at each
rate of the screen, under these variants:

* ``recipe``: as the rung trained before (BatchNorm statistics updated with the layers' own
  momentum: 0.01 on EfficientNet-Lite, 0.1 on MobileNetV2);
* ``bn frozen``: every BatchNorm keeps its pretrained statistics (``freeze_batchnorm_stats``);
* ``head 1e-3``: the new head at 1e-3 whatever the backbone's rate (below 1e-3).

After the epoch, validation accuracy is measured in evaluation mode as trained (``stale``),
after re-estimating the statistics of the layers that trained on N training items
(``precise N``), and in training mode on shuffled batches of 64 (each batch normalised by its
own statistics, as the weights saw them while training).

    python bench/batchnorm.py [--backbones efficientnet_lite0 mobilenet_v2] [--n-train 800]
Writes bench/results/batchnorm.json.

    python bench/batchnorm.py --rung [--backbones ...] [--rung-names full scratch]

instead runs the ``full`` (or ``scratch``) rung itself on the image demo's data and settings (800 train, 200
validation, 1,000 test, 96 px, 2 epochs, the screen of three rates), with the statistics
recomputed before each validation pass (now) and without (before), and writes
bench/results/batchnorm_rung.json.

    python bench/batchnorm.py --compare-inputs

compares the statistics recomputed on training items prepared for training (augmented) and for
evaluation, and writes bench/results/batchnorm_inputs.json.
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch
from run_all import save

from transferlab.training.batchnorm import reestimate_batchnorm

RATES = (1e-3, 1e-4, 1e-5)


def accuracy(model, backbone, items, y, train_mode: bool = False) -> float:
    from transferlab.training import predict_logits

    if not train_mode:
        return float((predict_logits(model, backbone.preprocess, items, 64).argmax(1) == y).mean())
    order = np.random.default_rng(0).permutation(len(items))  # batches that mix the classes
    model.train()
    with torch.no_grad():
        pred = [
            model(**backbone.preprocess([items[i] for i in order[lo : lo + 64]], False)).argmax(1).numpy()
            for lo in range(0, len(items), 64)
        ]
    model.eval()
    return float((np.concatenate(pred) == y[order]).mean())


def one_epoch(backbone, task, lr: float, variant: str, batch_size: int, n_classes: int):
    """The full recipe's screen epoch (a run planned for 2 epochs, stopped after the first)."""
    from transferlab.rungs.trainable import Classifier
    from transferlab.training import LoopConfig, fit_epochs, set_trainable, uniform_groups

    torch.manual_seed(0)
    model = Classifier(backbone.trainable_copy(pretrained=True), backbone.feature_dim, n_classes)
    groups = uniform_groups(backbone.layer_groups(model.encoder), list(model.head.parameters()), lr)
    if variant == "head 1e-3":
        groups[-1].lr = 1e-3
    set_trainable(groups, set(range(len(groups))))
    cfg = LoopConfig(epochs=2, batch_size=batch_size, freeze_batchnorm_stats=variant == "bn frozen")
    run = fit_epochs(model, backbone.preprocess, task.part("train"), task.part("val"), groups, cfg)
    start = time.perf_counter()
    next(run)
    seconds = time.perf_counter() - start
    run.close()
    return model, seconds


def measure(backbone, task, lr: float, variant: str, batch_size: int, sizes: list[int]) -> dict:
    val_items, y_val = task.part("val")
    train_items = task.part("train")[0]
    model, seconds = one_epoch(backbone, task, lr, variant, batch_size, len(task.classes))
    row = {"lr": lr, "variant": variant, "epoch_seconds": round(seconds, 1)}
    row["stale"] = accuracy(model, backbone, val_items, y_val)
    row["train mode"] = accuracy(model, backbone, val_items, y_val, train_mode=True)
    sample = np.random.default_rng(1).permutation(len(train_items))
    for n in sizes:
        m = copy.deepcopy(model)
        m.train()
        if variant == "bn frozen":
            continue  # nothing trained its statistics
        start = time.perf_counter()
        layers = reestimate_batchnorm(m, backbone.preprocess, [train_items[i] for i in sample[:n]])
        row[f"precise {n}"] = accuracy(m, backbone, val_items, y_val)
        row[f"precise {n} seconds"] = round(time.perf_counter() - start, 1)
        row["bn layers"] = layers
    print(row, flush=True)
    return row


def rung_before_after(name: str, rung: str = "full") -> list[dict]:
    """The rung (``full`` or ``scratch``) as the image demo runs it, with and without the recomputed statistics."""
    from transferlab.backbones import resolve
    from transferlab.demo import demo_data, demo_spec
    from transferlab.rungs import RUNGS, Context, trainable
    from transferlab.runner import prepare_task

    spec = demo_spec("image")
    task = prepare_task(demo_data("image"), spec)
    backbone = resolve(name, image_size=spec.image_size)
    backbone.encoder()  # loaded first, as in a run (the ranking embeds the data before any rung trains)
    y_val, y_test = task.part("val")[1], task.part("test")[1]
    rows = []
    for label, items in (("before (running averages)", 0), ("now (recomputed)", trainable.BATCHNORM_ITEMS)):
        kept, trainable.BATCHNORM_ITEMS = trainable.BATCHNORM_ITEMS, items
        try:
            start = time.perf_counter()
            out = RUNGS.get(rung)().run(Context(task, spec, 0, backbone))
            seconds = time.perf_counter() - start
        finally:
            trainable.BATCHNORM_ITEMS = kept
        screen = {t["lr"]: t["screen_val_metric"] for t in out.chosen.get("lr_trials", [])}
        rows.append(
            {
                "backbone": name,
                "rung": rung,
                "run": label,
                "screen_val": screen,
                "lr": out.chosen["lr"],
                "val_curve": out.curves["val_metric"],
                "val": float((out.val_pred == y_val).mean()),
                "test": float((out.test_pred == y_test).mean()),
                "seconds": round(seconds, 1),
            }
        )
        print(rows[-1], flush=True)
    return rows


def compare_inputs(backbones: list[str], rates=(1e-3, 1e-4)) -> list[dict]:
    """The statistics recomputed on 256 training items prepared for training (augmented; two
    draws) or for evaluation, after the recipe's screen epoch."""
    from transferlab.backbones import resolve
    from transferlab.config import RunSpec
    from transferlab.demo import demo_data
    from transferlab.runner import prepare_task

    task = prepare_task(demo_data("image"), RunSpec(max_train=800, max_val=200, max_test=1000))
    train_items = task.part("train")[0]
    val_items, y_val = task.part("val")
    pick = [train_items[i] for i in np.random.default_rng(1).permutation(len(train_items))[:256]]
    rows = []
    for name in backbones:
        backbone = resolve(name, image_size=96)
        backbone.encoder()
        for lr in rates:
            model, _ = one_epoch(backbone, task, lr, "recipe", 32, len(task.classes))
            row = {"backbone": name, "lr": lr}
            for label, train, draws in (("evaluation inputs", False, 1), ("training inputs", True, 2)):
                for draw in range(draws):
                    m = copy.deepcopy(model)
                    m.train()
                    torch.manual_seed(draw)
                    reestimate_batchnorm(m, lambda items, _, t=train: backbone.preprocess(items, t), pick)
                    row[f"{label} {draw}"] = accuracy(m, backbone, val_items, y_val)
            print(row, flush=True)
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=["efficientnet_lite0", "mobilenet_v2"])
    parser.add_argument("--n-train", type=int, default=800)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--variants", nargs="+", default=["recipe", "bn frozen", "head 1e-3"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256, 800])
    parser.add_argument("--rates", type=float, nargs="+", default=list(RATES))
    parser.add_argument("--rung", action="store_true", help="run the full rung before and after instead")
    parser.add_argument("--rung-names", nargs="+", default=["full"], help="with --rung: full and/or scratch")
    parser.add_argument("--compare-inputs", action="store_true", help="training vs evaluation inputs instead")
    args = parser.parse_args()
    if args.compare_inputs:
        save("batchnorm_inputs", {"rows": compare_inputs(args.backbones)})
        return
    if args.rung:
        rows = [r for rung in args.rung_names for name in args.backbones for r in rung_before_after(name, rung)]
        save(
            "batchnorm_rung" + ("" if args.rung_names == ["full"] else "_" + "_".join(args.rung_names)), {"rows": rows}
        )
        return
    from transferlab.backbones import resolve
    from transferlab.config import RunSpec
    from transferlab.demo import demo_data
    from transferlab.runner import prepare_task

    task = prepare_task(demo_data("image"), RunSpec(max_train=args.n_train, max_val=200, max_test=1000))
    rows = []
    for name in args.backbones:
        backbone = resolve(name, image_size=args.image_size)
        backbone.encoder()  # loaded before the first seeding, so every run starts from the same random state
        for variant in args.variants:
            for lr in args.rates:
                if variant == "head 1e-3" and lr == 1e-3:
                    continue  # the recipe itself
                rows.append({"backbone": name, **measure(backbone, task, lr, variant, 32, args.sizes)})
    save("batchnorm", {"splits": task.sizes(), "image_size": args.image_size, "batch_size": 32, "rows": rows})


if __name__ == "__main__":
    main()
