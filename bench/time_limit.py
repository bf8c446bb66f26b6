"""A run under ``--time-limit`` on real data at full size: does it end at its limit, and how far is
each stage's prediction (after the cuts) from what it took?

Text: all 5,000 fine-food reviews (the run's own split: about 3,250 train), MiniLM, every other
setting at its default (10 epochs, 256 tokens, the default ladder). Image: 3,000 training images
of Animal-MNIST (96 px), MobileNetV2, the default ladder. Each run with a fresh feature and rung
cache, so every stage is paid. Reported per run: the wall time against the limit (target: within
5%), the cuts the limit made, the rungs stopped at their deadline, and predicted/actual per stage
(targets: 30% per stage, 20% for the run). A trained rung that re-planned its steps to fill its
share of the limit takes about that share whatever the prediction: its steps planned against
trained (``epochs_trained.*.steps``) say how far the prediction of its steps was off.

    python bench/time_limit.py [--text-limit 20m] [--image-limit 10m] [--modality text image]
Writes bench/results/time_limit.json. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import transferlab
from transferlab.config import RunSpec, parse_duration
from transferlab.demo import demo_data

SETTINGS = {
    "text": {"backbones": ["minilm"]},
    "image": {"backbones": ["mobilenet_v2"], "max_train": 3000, "max_val": 500, "max_test": 1000, "image_size": 96},
}


def stage_ratios(plan: dict) -> list[dict]:
    """Each stage of a run's plan: predicted and actual seconds, and predicted / actual."""
    return [
        {
            "name": s["name"],
            "kind": s["kind"],
            "predicted": s["seconds"],
            "actual": s.get("actual_seconds"),
            "ratio": round(s["seconds"] / s["actual_seconds"], 2) if s.get("actual_seconds") else None,
            "how": s["how"],
        }
        for s in plan["stages"]
    ]


def bench(modality: str, limit: float, work: Path) -> dict:
    settings = {
        **SETTINGS[modality],
        "time_limit": limit,
        "cache_dir": str(work / "cache"),
        "out": str(work / f"run-{modality}"),
    }
    data = demo_data(modality)
    start = time.time()
    results = transferlab.run(data, spec=RunSpec(**settings), quiet=True)
    wall = time.time() - start
    plan = results["plan"]
    stages = stage_ratios(plan)
    return {
        "modality": modality,
        "settings": {k: v for k, v in settings.items() if k not in ("cache_dir", "out")},
        "sizes": results["task"].get("splits"),
        "limit_seconds": limit,
        "wall_seconds": round(wall, 1),
        "wall_over_limit": round(wall / limit, 3),
        "predicted_total": plan["total_seconds"],
        "actual_total": plan["actual_total_seconds"],
        "total_ratio": round(plan["total_seconds"] / plan["actual_total_seconds"], 2),
        "time_limit": plan.get("time_limit"),
        "recalibrated": plan.get("recalibrated"),
        "pace": plan.get("pace"),
        "retimed": plan.get("retimed"),
        "probes": {
            k: {f: round(v, 4) if isinstance(v, float) else v for f, v in p.items() if isinstance(v, (float, dict))}
            for k, p in plan["probes"].items()
        },
        "stopped_at_limit": [r["name"] for r in results["rungs"] if r.get("stopped_at_limit")],
        "ranking_seconds": {
            c["backbone"]: {k: round(c.get(k) or 0.0, 2) for k in ("score_seconds", "memory_seconds")}
            for c in results["ranking"]
        },
        "rung_seconds": {
            r["name"]: {k: r.get(k) for k in ("fit_seconds", "predict_seconds")} for r in results["rungs"]
        },
        "rungs": {r["name"]: round(r["test"]["accuracy"]["mean"], 3) for r in results["rungs"]},
        # what each trained rung really trained: early stopping ends a rung before its planned epochs
        "epochs_trained": {
            r["name"]: {
                "epochs": max(r["curves"]["epoch"]),
                "best_epoch": r["curves"].get("best_epoch"),
                "stopped_early": any("Stopped early" in note for note in r.get("notes") or []),
                # a rung that re-planned its steps to fill its share of the limit: planned and trained
                **({"steps": r["chosen"]["steps"]} if "steps" in (r.get("chosen") or {}) else {}),
            }
            for r in results["rungs"]
            if isinstance(r.get("curves"), dict) and r["curves"].get("epoch")
        },
        "recommendation": (results.get("recommendation") or {}).get("rung"),
        "stages": stages,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text-limit", default="20m")
    parser.add_argument("--image-limit", default="10m")
    parser.add_argument("--modality", nargs="+", default=["text", "image"])
    args = parser.parse_args()
    limits = {
        "text": parse_duration(args.text_limit, "text-limit"),
        "image": parse_duration(args.image_limit, "image-limit"),
    }
    path = Path(__file__).parent / "results" / "time_limit.json"
    out = json.loads(path.read_text()) if path.exists() else {"runs": []}
    out["runs"] = [r for r in out.get("runs", []) if r["modality"] not in args.modality]
    with tempfile.TemporaryDirectory() as tmp:
        for modality in args.modality:
            load = [round(x, 2) for x in os.getloadavg()]
            result = bench(modality, limits[modality], Path(tmp))
            result.update(
                {
                    "load_average_before": load,
                    "load_average_after": [round(x, 2) for x in os.getloadavg()],
                    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                }
            )
            out["runs"].append(result)
            print(json.dumps({k: v for k, v in result.items() if k != "stages"}, indent=1))
            for s in result["stages"]:
                print(
                    f"  {s['name']:<34} predicted {s['predicted']:8.1f}  actual {s['actual'] or 0:8.1f}  "
                    f"ratio {s['ratio']}"
                )
            path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
