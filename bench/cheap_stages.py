"""The cheap stages alone at full size: how far are their per-item rates (constants in
``stages/costplan.py``) from what they take on this machine today?

Runs the audit, the ranking and the cheap rungs (majority, classical, scratch_small, frozen) on
the data of ``bench/time_limit.py`` (all fine-food reviews with MiniLM; 3,000 Animal-MNIST
training images at 96 px with MobileNetV2), no trained rung and no limit, fresh caches. Reports
predicted / actual per stage and the probed backbone speed, to set beside the stages of the
time-limit runs.

    python bench/cheap_stages.py [--modality text image]
Writes bench/results/cheap_stages.json (one entry per modality, replaced on each run). Run it on
an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from time_limit import SETTINGS, stage_ratios

import transferlab
from transferlab.config import RunSpec
from transferlab.demo import demo_data

RUNGS = ["majority", "classical", "scratch_small", "frozen"]


def bench(modality: str, work: Path) -> dict:
    spec = RunSpec(**SETTINGS[modality], rungs=RUNGS, cache_dir=str(work / "cache"), out=str(work / "run"))
    start = time.time()
    results = transferlab.run(demo_data(modality), spec=spec, quiet=True)
    wall = time.time() - start
    plan = results["plan"]
    return {
        "modality": modality,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "wall_seconds": round(wall, 1),
        "backbone_seconds_per_item": {k: round(p["forward_per_item"], 5) for k, p in plan["probes"].items()},
        "recalibrated": plan.get("recalibrated"),
        "pace": plan.get("pace"),
        "stages": stage_ratios(plan),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modality", nargs="+", default=["text", "image"], choices=["text", "image"])
    args = parser.parse_args()
    path = Path(__file__).parent / "results" / "cheap_stages.json"
    runs = {r["modality"]: r for r in (json.loads(path.read_text())["runs"] if path.exists() else [])}
    for modality in args.modality:
        with tempfile.TemporaryDirectory() as work:
            runs[modality] = bench(modality, Path(work))
        for s in runs[modality]["stages"]:
            print(f"{modality:6s} {s['name']:24s} predicted/actual {s['ratio']}")
    path.write_text(json.dumps({"runs": list(runs.values())}, indent=1) + "\n")


if __name__ == "__main__":
    main()
