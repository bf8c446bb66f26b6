"""An unchanged re-run vs the cold run, and adding a backbone vs running both cold.

``transferlab.run`` in one process, each run into a new run directory:

- the text demo's data, settings and ladder at a smaller size (--n-train training reviews,
  --epochs): a cold run with a fresh cache folder, then the same run again into another run
  directory (the rung cache and the feature cache hand back every rung and embedding);
- the image demo's data and ladder (MobileNetV2, EfficientNet-Lite0) at a smaller size: MobileNetV2
  alone with a fresh cache folder, then both backbones with that cache folder (adding one
  backbone: only its rungs are fitted), against both backbones with another fresh cache folder.

Wall time of each run, and the time of each stage, taken from the progress tasks the runner
opens (embedding, audit, each rung, its OOD sets and learning curve); "other" is the rest
(reading and splitting, ranking scores, reusing cached rungs, the report).

    python bench/rerun.py [--n-train 300] [--epochs 1] [--image-n-train 300]
Writes bench/results/rerun.json.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from run_all import save

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def timed_stages(stages: dict[str, float]):
    """Wrap Progress.task so each (top-level) task's duration lands in ``stages``."""
    from transferlab.progress import Progress

    original = Progress.task
    depth = [0]

    @contextmanager
    def task(self, description, total=None):
        start = time.perf_counter()
        depth[0] += 1
        try:
            with original(self, description, total) as update:
                yield update
        finally:
            depth[0] -= 1
            if depth[0] == 0:
                key = "embed for the audit" if description.startswith("embed all") else description
                stages[key] = stages.get(key, 0.0) + time.perf_counter() - start

    Progress.task = task
    return original


def one_run(data, settings: dict, out: Path) -> dict:
    import transferlab
    from transferlab.progress import Progress

    stages: dict[str, float] = {}
    original = timed_stages(stages)
    start = time.perf_counter()
    try:
        r = transferlab.run(data, out=str(out), quiet=True, **settings)
    finally:
        Progress.task = original
    wall = time.perf_counter() - start
    stages["other"] = wall - sum(stages.values())
    return {
        "wall_seconds": wall,
        "stages": stages,
        "features_from_cache": [c.get("features_from_cache") for c in r["ranking"]],
        "rungs": [x["name"] for x in r["rungs"]],
        "reused": [x["name"] for x in r["rungs"] if x.get("reused_from")],
        "test_accuracy": {x["name"]: x["test"]["accuracy"]["mean"] for x in r["rungs"]},
        "test_predictions": {x["name"]: x["predictions"]["test"] for x in r["rungs"]},
    }


def _public(settings: dict) -> dict:
    return {k: v for k, v in settings.items() if k != "cache_dir"}


def rerun_text(args, tmp: Path) -> dict:
    """The text demo cold, then unchanged into another run directory."""
    from transferlab.demo import DEMOS, demo_data

    settings = {
        **DEMOS["text"],
        "max_train": args.n_train,
        "max_val": args.n_val,
        "max_test": args.n_test,
        "epochs": args.epochs,
        "ood_max_items": args.n_test // 2,
        "cache_dir": str(tmp / "text-cache"),
    }
    data = demo_data("text")
    cold = one_run(data, settings, tmp / "text-cold")
    unchanged = one_run(data, settings, tmp / "text-unchanged")
    same = unchanged["test_predictions"] == cold["test_predictions"]
    for run in (cold, unchanged):
        run.pop("test_predictions")
    return {
        "settings": _public(settings),
        "cold": cold,
        "unchanged": unchanged,
        "same_predictions": same,
        "ratio_cold_over_unchanged": cold["wall_seconds"] / unchanged["wall_seconds"],
    }


def add_backbone(args, tmp: Path) -> dict:
    """The image demo on MobileNetV2, then with EfficientNet-Lite0 added; against both cold."""
    from transferlab.demo import DEMOS, demo_data

    base = {
        **DEMOS["image"],
        "max_train": args.image_n_train,
        "max_val": args.image_n_val,
        "max_test": args.image_n_test,
        "epochs": args.epochs,
        "ood_max_items": args.image_n_test // 2,
    }
    first, both = base["backbones"][0], list(base["backbones"])
    data = demo_data("image")
    one = one_run(data, {**base, "backbones": [first], "cache_dir": str(tmp / "image-cache")}, tmp / "image-one")
    cold = one_run(data, {**base, "cache_dir": str(tmp / "image-cold-cache")}, tmp / "image-both-cold")
    added = one_run(data, {**base, "cache_dir": str(tmp / "image-cache")}, tmp / "image-added")
    same = added["test_predictions"] == cold["test_predictions"]
    for run in (one, cold, added):
        run.pop("test_predictions")
    return {
        "settings": {**_public(base), "backbones": both},
        "first": one,
        "both_cold": cold,
        "added": added,
        "same_predictions": same,
        "ratio_cold_over_added": cold["wall_seconds"] / added["wall_seconds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=300)
    parser.add_argument("--n-val", type=int, default=100)
    parser.add_argument("--n-test", type=int, default=300)
    parser.add_argument("--image-n-train", type=int, default=300)
    parser.add_argument("--image-n-val", type=int, default=100)
    parser.add_argument("--image-n-test", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--skip-backbone", action="store_true", help="Only the unchanged re-run.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = rerun_text(args, Path(tmp))
        if not args.skip_backbone:
            result["add_backbone"] = add_backbone(args, Path(tmp))
    save("rerun", result)
    print(section({**result, "date": "now"}))


def _stage_rows(cold: dict, warm: dict) -> str:
    names = sorted(set(cold["stages"]) | set(warm["stages"]), key=lambda k: -cold["stages"].get(k, 0))
    rows = []
    for k in names:
        c, w = cold["stages"].get(k, 0.0), warm["stages"].get(k, 0.0)
        if c < 0.5 and w < 0.5:
            continue
        ratio = "—" if w <= 0.05 else f"{c / w:.1f}×" if c / w < 10 else f"{c / w:.0f}×"
        rows.append(f"| {k} | {c:.1f} s | {w:.1f} s | {ratio} |")
    return "\n".join(rows)


def _load(d: dict) -> str:
    load = d.get("load_average")
    if not load:
        return ""
    return (
        f", with {d.get('machine', {}).get('torch_threads', '?')} torch thread(s) on {d.get('machine', {}).get('cpus', '?')} cores "
        f"(load average {load['start'][0]:.1f} at the start, {load['end'][0]:.1f} at the end: other work shared the "
        "machine, which slows every run; the cold run's absolute times are not a quiet machine's)"
    )


def section(d: dict) -> str:
    """This benchmark's part of bench/RESULTS.md."""
    if "unchanged" not in d:  # a result of the earlier version of this benchmark (feature cache only)
        return ""
    cold, warm, s = d["cold"], d["unchanged"], d["settings"]
    text = f"""## An unchanged re-run vs the cold run, and adding a backbone

`python bench/rerun.py` — `transferlab.run` in one process, each run into a new run directory.
The text demo's data and ladder (MiniLM, {s["max_train"]}/{s["max_val"]}/{s["max_test"]} train/val/test
reviews, {s["epochs"]} epoch(s), corruptions and learning curves on): a cold run with a fresh cache
folder, then the same run again. Stage times come from the progress tasks the runner opens
("other" is reading and splitting the data, ranking scores, reading the cached rungs and writing
the report). Run {d["date"]}{_load(d)}.

Cold run **{cold["wall_seconds"]:.1f} s**; the unchanged re-run **{warm["wall_seconds"]:.1f} s**: the cold run takes
**{d["ratio_cold_over_unchanged"]:.0f}×** as long. The re-run reused {len(warm["reused"])} of {len(warm["rungs"])} rungs
(the rung cache) and every embedding (the feature cache); its test predictions are
{"identical to" if d["same_predictions"] else "NOT identical to"} the cold run's.

| stage | cold | unchanged re-run | cold / re-run |
|---|---|---|---|
{_stage_rows(cold, warm)}

The cold run is also the process's first: importing torch and transformers, loading MiniLM and
warming up its kernels fall in its "other" and first rungs, so part of the ratio is not the cache.
A re-run in a new process pays those imports again.
"""
    a = d.get("add_backbone")
    if a:
        sa = a["settings"]
        text += f"""
Adding a backbone: the image demo's data and ladder ({sa["max_train"]}/{sa["max_val"]}/{sa["max_test"]} Animal-MNIST
images at {sa["image_size"]} px, {sa["epochs"]} epoch(s)) on {sa["backbones"][0]} alone with a fresh cache folder
(**{a["first"]["wall_seconds"]:.0f} s**), then on {" and ".join(sa["backbones"])} with that cache folder:
**{a["added"]["wall_seconds"]:.0f} s** ({len(a["added"]["reused"])} of {len(a["added"]["rungs"])} rungs reused), against
**{a["both_cold"]["wall_seconds"]:.0f} s** for both backbones with a fresh cache folder
(**{a["ratio_cold_over_added"]:.1f}×**). Test predictions of the added run and the cold one are
{"identical" if a["same_predictions"] else "NOT identical"}.

| stage | both cold | {sa["backbones"][0]} cached, {sa["backbones"][1]} added | cold / added |
|---|---|---|---|
{_stage_rows(a["both_cold"], a["added"])}

The added backbone's stages appear in both columns: their ratio, 1× on a quiet machine, shows how
much the machine's load moved between the two runs.
"""
    return text + "".join(f"- {n}\n" for n in d.get("notes", []))


if __name__ == "__main__":
    main()
