"""The cheap stages alone at full size: how far are their per-item rates (constants in
``stages/costplan.py``) from what they take on this machine today?

Runs the audit, the ranking and the cheap rungs (majority, classical, scratch_small, frozen) on
the data of ``bench/time_limit.py`` (all fine-food reviews with MiniLM; 3,000 Animal-MNIST
training images at 96 px with MobileNetV2), no trained rung and no limit, fresh caches. Reports
predicted / actual per stage and the probed backbone speed, to set beside the stages of the
time-limit runs.

    python bench/cheap_stages.py [--modality text image] [--busy N] [--no-pace]
Writes bench/results/cheap_stages.json (one entry per modality and condition, replaced on each
run). Run it on an otherwise idle machine; ``--busy N`` keeps N cores busy with spinning
processes for the whole run (plan included), to see whether the plan's measured pace
(``stages.pace``) follows a slower machine; ``--no-pace`` plans with the per-item rates alone
(pace 1), the alternative it replaces.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from time_limit import SETTINGS, stage_ratios

import transferlab
from transferlab.config import RunSpec
from transferlab.demo import demo_data

RUNGS = ["majority", "classical", "scratch_small", "frozen"]


def _spin() -> None:
    while True:
        pass


@contextmanager
def busy(cores: int):
    """``cores`` processes spinning until the block ends."""
    procs = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(cores)]
    for p in procs:
        p.start()
    try:
        yield
    finally:
        for p in procs:
            p.terminate()
            p.join()


def bench(modality: str, work: Path, busy_cores: int = 0, pace: bool = True) -> dict:
    spec = RunSpec(**SETTINGS[modality], rungs=RUNGS, cache_dir=str(work / "cache"), out=str(work / "run"))
    if not pace:  # the alternative: the per-item rates as they are, whatever the machine's pace
        import transferlab.stages.costplan as costplan
        from transferlab.stages.pace import CheapPace

        costplan.measure_pace = lambda *a, **k: CheapPace()
    with busy(busy_cores):
        start = time.time()
        results = transferlab.run(demo_data(modality), spec=spec, quiet=True)
        wall = time.time() - start
    plan = results["plan"]
    return {
        "modality": modality,
        "condition": condition(busy_cores, pace),
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
    parser.add_argument("--busy", type=int, default=0, help="cores kept busy by spinning processes")
    parser.add_argument("--no-pace", action="store_true", help="plan with the per-item rates alone")
    args = parser.parse_args()
    path = Path(__file__).parent / "results" / "cheap_stages.json"
    key = lambda r: (r["modality"], r.get("condition", "idle"))  # noqa: E731
    runs = {key(r): r for r in (json.loads(path.read_text())["runs"] if path.exists() else [])}
    for modality in args.modality:
        with tempfile.TemporaryDirectory() as work:
            run = bench(modality, Path(work), args.busy, not args.no_pace)
        runs[key(run)] = run
        for s in run["stages"]:
            print(f"{modality:6s} {run['condition']:18s} {s['name']:24s} predicted/actual {s['ratio']}")
    path.write_text(json.dumps({"runs": list(runs.values())}, indent=1) + "\n")


def condition(busy_cores: int, pace: bool) -> str:
    return ("idle" if not busy_cores else f"{busy_cores} core(s) busy") + ("" if pace else ", no pace")


if __name__ == "__main__":
    main()
