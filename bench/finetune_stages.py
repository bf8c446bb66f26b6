"""finetune on a short budget: does gradual unfreezing (one stage per epoch) keep it from beating
its warmed-up head? The rung alone on 3,000 Animal-MNIST training images (MobileNetV2, 96 px),
``--epochs`` 3.5 (the budget the 8-minute time-limit runs gave it), the default screen of rates,
with each number of unfreezing stages given (default 3 and 1: every group open from the first
epoch, at the layer-wise rates). No audit, corruptions or learning curve.

    python bench/finetune_stages.py [--stages 3 1] [--epochs 3.5] [--seed 0]
Writes bench/results/finetune_stages.json. Accuracy does not depend on the machine's load.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from time_limit import SETTINGS

import transferlab
from transferlab.config import RunSpec
from transferlab.demo import demo_data


def bench(stages: int, epochs: float, seed: int, work: Path) -> dict:
    spec = RunSpec(
        **SETTINGS["image"],
        rungs=["finetune"],
        epochs=epochs,
        unfreeze_stages=stages,
        seed=seed,
        audit=False,
        learning_curve=False,
        corruptions=False,
        cache_dir=str(work.parent / "cache"),
        out=str(work / "run"),
    )
    start = time.time()
    results = transferlab.run(demo_data("image"), spec=spec, quiet=True)
    rung = next(r for r in results["rungs"] if r["strategy"] == "finetune")
    curves, chosen = rung["curves"], rung["chosen"]
    return {
        "stages": stages,
        "epochs": epochs,
        "seed": seed,
        "wall_seconds": round(time.time() - start, 1),
        "val_metric": [round(v, 3) for v in curves["val_metric"]],
        "phase": curves["phase"],
        "best_epoch": curves["best_epoch"],
        "screen": {f"{t['factor']:g}": t["screen_val_metric"] for t in chosen.get("lr_trials", [])},
        "lr": chosen["lr"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", type=int, nargs="+", default=[3, 1])
    parser.add_argument("--epochs", type=float, default=3.5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as work:
        for stages in args.stages:
            runs.append(bench(stages, args.epochs, args.seed, Path(work) / f"stages-{stages}"))
            print(json.dumps(runs[-1]))
    path = Path(__file__).parent / "results" / "finetune_stages.json"
    path.write_text(
        json.dumps({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "runs": runs}, indent=1) + "\n"
    )


if __name__ == "__main__":
    main()
