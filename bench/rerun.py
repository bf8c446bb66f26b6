"""A warm-cache re-run vs the cold run: what the feature cache saves, and what it cannot.

``transferlab.run`` on the same data three times in one process, with a fresh feature cache
directory: the first run is cold (every embedding is computed), the next two are warm (the same
items hash to the same cache files). The text demo's data, settings and ladder at a smaller size
(--n-train training reviews, 1 epoch). Wall time of each run, and the time of each stage,
taken from the progress tasks the runner opens (embedding, audit, each rung, its OOD sets and
learning curve); "other" is the rest (reading and splitting, ranking scores, the report).

    python bench/rerun.py [--n-train 300] [--epochs 1]
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
    return {"wall_seconds": wall, "stages": stages,
            "features_from_cache": [c.get("features_from_cache") for c in r["ranking"]],
            "test_accuracy": {x["name"]: x["test"]["accuracy"]["mean"] for x in r["rungs"]}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=300)
    parser.add_argument("--n-val", type=int, default=100)
    parser.add_argument("--n-test", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--warm-runs", type=int, default=2)
    args = parser.parse_args()
    from transferlab.demo import DEMOS, demo_data

    settings = {**DEMOS["text"], "max_train": args.n_train, "max_val": args.n_val, "max_test": args.n_test,
                "epochs": args.epochs, "ood_max_items": args.n_test // 2}
    data = demo_data("text")
    with tempfile.TemporaryDirectory() as tmp:
        settings["cache_dir"] = str(Path(tmp) / "cache")
        runs = [one_run(data, settings, Path(tmp) / f"run{i}") for i in range(1 + args.warm_runs)]
    cold, warm = runs[0], runs[1:]
    result = {"settings": {k: v for k, v in settings.items() if k != "cache_dir"}, "cold": cold, "warm": warm,
              "ratio_cold_over_warm": cold["wall_seconds"] / min(w["wall_seconds"] for w in warm)}
    save("rerun", result)
    print(section({**result, "date": "now"}))


def section(d: dict) -> str:
    """This benchmark's part of bench/RESULTS.md."""
    cold, warm = d["cold"], d["warm"]
    best = min(warm, key=lambda w: w["wall_seconds"])
    names = sorted(set(cold["stages"]) | set(best["stages"]), key=lambda k: -cold["stages"].get(k, 0))
    rows = []
    faster, same = [], []
    for k in names:
        c, w = cold["stages"].get(k, 0.0), best["stages"].get(k, 0.0)
        rows.append(f"| {k} | {c:.1f} s | {w:.1f} s | {c / w:.1f}× |" if w > 0.05 else f"| {k} | {c:.1f} s | {w:.1f} s | — |")
        if c > 1 and c > 2 * w:
            faster.append(f"{k} ({c:.0f} s → {w:.0f} s)")
        elif c > 5:
            same.append(k)
    s = d["settings"]
    warm_walls = ", ".join(f"{w['wall_seconds']:.0f} s" for w in warm)
    return f"""## A warm-cache re-run vs the cold run

`python bench/rerun.py` — `transferlab.run` on the text demo's data and ladder (MiniLM,
{s['max_train']}/{s['max_val']}/{s['max_test']} train/val/test reviews, {s['epochs']} epoch(s), corruptions and
learning curves on), {1 + len(warm)} times in one process with one fresh feature cache directory: a cold
run, then warm re-runs. Stage times come from the progress tasks the runner opens ("other" is
reading and splitting the data, ranking scores and writing the report). Run {d['date']}.

Cold run **{cold['wall_seconds']:.0f} s**; warm re-runs {warm_walls}: the cold run takes **{d['ratio_cold_over_warm']:.2f}×**
the fastest warm one.

| stage | cold | warm (fastest re-run) | cold / warm |
|---|---|---|---|
{chr(10).join(rows)}

Faster when warm (the feature cache: embeddings of the training, validation, test and corrupted
items are read from the memory-mapped `.npy` files): {', '.join(faster) or 'nothing'}. Not faster:
{', '.join(same) or 'nothing'} — training a backbone and predicting with a trained one are not
cached, since their weights change with every run; so on a ladder that fine-tunes, the cache
saves the embedding time and no more. The cold run is also the process's first: importing
torch and transformers, loading MiniLM and warming up its kernels fall in its "other" and first
rungs, so part of the ratio is not the cache.
{chr(10).join('- ' + n for n in d.get('notes', []))}
"""


if __name__ == "__main__":
    main()
