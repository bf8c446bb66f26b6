"""The run plan against the run: predicted vs actual seconds per stage and for the whole run.

On the text demo (fine-food reviews, MiniLM) and the image demo (Animal-MNIST, MobileNetV2),
each at a small size, with a fresh feature cache so extraction is paid: ``transferlab.plan``
first (its probe time reported), then ``transferlab.run`` with the same settings, whose
results.json holds the plan next to each stage's actual seconds. The ratio predicted/actual is
reported per stage and for the run (targets: within 30% per stage, 20% for the run).

    OMP_NUM_THREADS=1 python bench/plan.py [--max-train 200] [--epochs 1]
Writes bench/results/plan.json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import transferlab
from transferlab.demo import demo_data, demo_spec

SETTINGS = {
    "text": {"max_val": 100, "max_test": 200, "ood_max_items": 100},
    "image": {
        "backbones": ["mobilenet_v2"],
        "max_val": 100,
        "max_test": 200,
        "ood_max_items": 100,
        "rungs": ["majority", "classical", "frozen", "finetune", "full", "scratch"],
    },
}


def bench(modality: str, max_train: int, epochs: int, work: Path) -> dict:
    overrides = {
        **SETTINGS[modality],
        "max_train": max_train,
        "epochs": epochs,
        "cache_dir": str(work / "cache"),
        "out": str(work / f"run-{modality}"),
    }
    data = demo_data(modality)
    start = time.perf_counter()
    plan = transferlab.plan(data, spec=demo_spec(modality, **overrides))
    plan_seconds = time.perf_counter() - start
    results = transferlab.run(data, spec=demo_spec(modality, **overrides), quiet=True)
    recorded = results["plan"]
    stages = []
    for s in recorded["stages"]:
        actual = s.get("actual_seconds")
        ratio = s["seconds"] / actual if actual else None
        stages.append(
            {
                "name": s["name"],
                "predicted": s["seconds"],
                "actual": actual,
                "ratio": None if ratio is None else round(ratio, 2),
                "within_30pct": None if ratio is None else abs(ratio - 1) <= 0.3,
                "how": s["how"],
            }
        )
    total_ratio = recorded["total_seconds"] / recorded["actual_total_seconds"]
    return {
        "modality": modality,
        "settings": {k: v for k, v in overrides.items() if k not in ("cache_dir", "out")},
        "plan_command_seconds": round(plan_seconds, 1),
        "probe_seconds": recorded["probe_seconds"],
        "standalone_plan_total": round(plan.total_seconds, 1),
        "predicted_total": recorded["total_seconds"],
        "actual_total": recorded["actual_total_seconds"],
        "run_wall_seconds": results["environment"]["wall_seconds"],
        "total_ratio": round(total_ratio, 2),
        "total_within_20pct": abs(total_ratio - 1) <= 0.2,
        "stages": stages,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-train", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--modality", nargs="+", default=["text", "image"])
    args = parser.parse_args()
    path = Path(__file__).parent / "results" / "plan.json"
    out = json.loads(path.read_text()) if path.exists() else {"runs": []}  # the other modalities' runs are kept
    out["runs"] = [r for r in out.get("runs", []) if r["modality"] not in args.modality]
    with tempfile.TemporaryDirectory() as tmp:
        for modality in args.modality:
            load = [round(x, 2) for x in os.getloadavg()]
            result = bench(modality, args.max_train, args.epochs, Path(tmp))
            result.update(
                {
                    "load_average_before": load,
                    "load_average_after": [round(x, 2) for x in os.getloadavg()],
                    "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                }
            )
            out["runs"].append(result)
            print(json.dumps({k: v for k, v in result.items() if k != "stages"}))
            for s in result["stages"]:
                print(
                    f"  {s['name']:<32} predicted {s['predicted']:8.1f}  actual {s['actual'] or 0:8.1f}  "
                    f"ratio {s['ratio']}"
                )
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
