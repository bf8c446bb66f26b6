"""What ranking the candidates costs against fine-tuning them all, measured in one run.

One ``transferlab.run`` on Animal-MNIST's first five classes (bench/ranking_tasks.py, 460 items
before the split) with the five image candidates of bench/ranking.py, rungs frozen and finetune
(its learning-rate screen included, as a user runs it), a cold feature cache, and the audit off so
that every candidate's embedding is its own timed stage (with the audit on, the first candidate's
embeddings are made inside the audit and its ``embed:`` stage shows 0 s). Every number comes from
that run's results.json:

- ``plan.stages[*].actual_seconds``: ``embed:<backbone>`` (train, val and test embedded once and
  cached), ``ranking`` (every candidate's scores and its one-batch memory measure) and
  ``finetune:<backbone>`` (the whole rung: head warm-up, learning-rate screen, kept rate on);
- ``ranking[*]``: ``score_seconds`` (scores + label-free proximity), ``memory_seconds``,
  ``items_per_second`` (items embedded per second over the splits embedded).

Two ratios against fine-tuning all candidates:

- marginal: in a run whose frozen rung embeds the splits anyway, the ranking pays the ``ranking``
  stage only (scores + memory measure);
- standalone (``transferlab rank`` alone): embedding the training split (the embed stage minus the
  validation and test items at the stage's measured rate, so loading the encoder is counted) +
  the ``ranking`` stage.

Run: ``OMP_NUM_THREADS=1 python bench/ranking_cost.py [--epochs 2] [--text]``; results in
bench/results/ranking_cost.json (a list of runs per task and epochs budget; a re-run is appended).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from ranking import random_minilm, random_mobilenet, short  # noqa: E402
from ranking_tasks import IMAGE_TASKS, TEXT_TASKS  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "ranking_cost.json"


def candidates(modality: str, workdir: Path, only: int | None) -> tuple[list[str], dict]:
    if modality == "image":
        names = [
            "mobilenet_v2",
            "efficientnet_lite0",
            "efficientnet_lite1",
            "efficientnet_lite2",
            random_mobilenet(workdir / "random-mobilenet_v2.safetensors"),
        ]
        settings = {"image_size": 64, "batch_size": 32}
    else:
        names = ["minilm", random_minilm(workdir / "random-minilm")]
        settings = {"max_length": 128, "batch_size": 16}
    return names[:only] if only else names, settings


def measure(modality: str, epochs: int, n_items: int, only: int | None) -> dict:
    import transferlab
    from transferlab.data import from_arrays

    task_name = "animals 1-5" if modality == "image" else "reviews 5 stars"
    items, labels = (IMAGE_TASKS if modality == "image" else TEXT_TASKS)[task_name](n_items)
    with tempfile.TemporaryDirectory() as tmp:
        backbones, settings = candidates(modality, Path(tmp), only)
        load_before = os.getloadavg()
        start = time.perf_counter()
        transferlab.run(
            from_arrays(items, labels),
            backbones=backbones,
            rungs="frozen,finetune",
            out=str(Path(tmp) / "run"),
            cache_dir=str(Path(tmp) / "cache"),  # cold: every candidate embeds
            quiet=True,
            audit=False,
            corruptions=False,
            learning_curve=False,
            seeds=1,
            train_seeds=1,
            epochs=epochs,
            **settings,
        )
        wall = time.perf_counter() - start
        load_after = os.getloadavg()
        results = json.loads((Path(tmp) / "run" / "results.json").read_text())
    raw = Path(tempfile.gettempdir()) / f"ranking_cost_{modality}_{epochs}.json"
    raw.write_text(json.dumps(results, default=float))  # kept, to summarise again without a re-run
    return summarise(results, task_name, epochs, wall, load_before, load_after)


def embed_train_seconds(embed: float, items_per_second: float | None, n_train: int, n_all: int) -> float:
    """What embedding the training split alone costs (``transferlab rank``): the embed stage minus
    the other splits at the measured rate; the encoder's loading stays with the training split."""
    if not items_per_second:
        return embed * n_train / n_all
    return max(embed - (n_all - n_train) / items_per_second, n_train / items_per_second)


def summarise(results: dict, task_name: str, epochs: int, wall: float, load_before, load_after) -> dict:
    actual = {s["name"]: s.get("actual_seconds") for s in results["plan"]["stages"]}
    n_train = results["task"]["splits"]["train"]
    n_all = sum(results["task"]["splits"].values())
    rows = {}
    for c in results["ranking"]:
        b = c["backbone"]
        embed = actual.get(f"embed:{b}") or 0.0
        rows[short(b)] = {
            "embed_seconds": embed,  # train + val + test
            "embed_train_seconds": embed_train_seconds(embed, c.get("items_per_second"), n_train, n_all),
            "score_seconds": c["score_seconds"],
            "memory_seconds": c.get("memory_seconds", 0.0),
            "finetune_seconds": actual.get(f"finetune:{b}"),
            "frozen_seconds": actual.get(f"frozen:{b}"),
            "features_from_cache": c.get("features_from_cache"),
        }
    ranking_stage = actual["ranking"]
    finetune = sum(r["finetune_seconds"] or 0.0 for r in rows.values())
    embed_train = sum(r["embed_train_seconds"] or 0.0 for r in rows.values())
    rungs = {r["name"]: r for r in results["rungs"]}
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "task": task_name,
        "splits": results["task"]["splits"],
        "epochs": epochs,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "load_average_before": list(load_before),
        "load_average_after": list(load_after),
        "run_wall_seconds": wall,
        "candidates": rows,
        "finetune_epochs_run": {
            short(r["backbone"]): len(r.get("curves", {}).get("epoch", []))
            for r in rungs.values()
            if r["strategy"] == "finetune"
        },
        "totals": {
            "embed_seconds": sum(r["embed_seconds"] for r in rows.values()),
            "embed_train_seconds": embed_train,
            "score_seconds": sum(r["score_seconds"] for r in rows.values()),
            "memory_seconds": sum(r["memory_seconds"] for r in rows.values()),
            "ranking_stage_seconds": ranking_stage,
            "finetune_all_seconds": finetune,
        },
        "ratios": {
            "marginal": ranking_stage / finetune,
            "standalone": (embed_train + ranking_stage) / finetune,
        },
        "n_train": n_train,
        "n_all": n_all,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2, help="the finetune rung's epochs (the demo's budget is 2)")
    parser.add_argument("--n-items", type=int, default=460, help="items before the train/val/test split")
    parser.add_argument("--text", action="store_true", help="the reviews task with MiniLM and a random MiniLM")
    parser.add_argument("--only", type=int, default=None, help="the first N candidates only (a shorter run)")
    args = parser.parse_args()
    modality = "text" if args.text else "image"
    entry = measure(modality, args.epochs, args.n_items, args.only)
    key = f"{modality} epochs={args.epochs}" + (f" first {args.only}" if args.only else "")
    saved = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    saved.setdefault(key, []).append(entry)  # every run kept: the machine is shared, times vary
    RESULTS.write_text(json.dumps(saved, indent=2, default=float))
    print(json.dumps(entry, indent=2, default=float))


if __name__ == "__main__":
    main()
