"""Does a label-free domain-proximity measure predict transfer? The measures of
``transferlab.ranking.proximity`` for every (task, candidate) of bench/ranking.py, against the
frozen test accuracies that benchmark measured (bench/results/ranking.json), summarised the same
way: mean weighted Kendall tau over tasks with a bootstrap interval, top pick was best, regret.

Only the features are recomputed, not the ladder: each task's training split is rebuilt exactly
as the benchmark's run made it (same data, settings and seed), every candidate embeds it (the
random-weight candidates are re-created from the same seed) and the measures are computed from
those features and, for the ImageNet models, their source classifier's softmax. The TF-IDF
candidate gets the feature measures on the same 384 SVD components its other scores used.

Also: whether each measure puts the random-weight candidate (an honest negative: it was
pretrained on nothing) below every pretrained candidate of the same modality.

    OMP_NUM_THREADS=1 python bench/proximity.py [--cache DIR]
Writes bench/results/proximity.json and prints Markdown tables (about 5 minutes on 2 busy cores
with a cold cache).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from ranking import LOWER_IS_BETTER, TFIDF, _train_split, setup, short, summarise  # noqa: E402

from transferlab.ranking.proximity import PROXIMITY  # noqa: E402


def candidate_features(data, backbones: list[str], settings: dict) -> tuple[dict, dict]:
    """Each candidate's training-split features (and source softmax where it has a head)."""
    from transferlab.config import RunSpec
    from transferlab.features import extract
    from transferlab.ranking.cost import source_probabilities
    from transferlab.runner import resolve_backbones

    task = _train_split(data, settings)
    items, _ = task.part("train")
    spec = RunSpec(backbones=list(backbones), audit=False, **settings)
    feats, probs = {}, {}
    for b in resolve_backbones(spec, task.modality):
        f = np.asarray(
            extract(
                b, items, task.part_hashes("train"), cache_dir=settings["cache_dir"], batch_size=spec.extract_batch_size
            ).features
        )
        feats[short(b.name)] = f
        probs[short(b.name)] = source_probabilities(b, f)[0]
    return feats, probs


def tfidf_features(data, settings: dict) -> np.ndarray:
    """The TF-IDF candidate's 384 SVD components, as bench/ranking.py's ``tfidf_candidate`` makes them."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    items, _ = _train_split(data, settings).part("train")
    tfidf = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2).fit_transform(items)
    return TruncatedSVD(min(384, tfidf.shape[1] - 1), random_state=0).fit_transform(tfidf)


def measure_task(modality: str, name: str, build, n_items: int, backbones: list[str], settings: dict) -> dict:
    from transferlab.data import from_arrays
    from transferlab.ranking.proximity import domain_proximity

    data = from_arrays(*build(n_items))
    start = time.perf_counter()
    feats, probs = candidate_features(data, backbones, settings)
    if modality == "text":
        feats[TFIDF], probs[TFIDF] = tfidf_features(data, settings), None
    out = {}
    for cand, f in feats.items():
        t0 = time.perf_counter()
        out[cand] = domain_proximity(f, source_probs=probs[cand])
        out[cand]["_seconds"] = time.perf_counter() - t0
    print(f"{modality} {name}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return out


def separates(tasks: dict, measure: str) -> dict:
    """On how many tasks the random-weight candidate is farther than every pretrained one by the
    measure; the TF-IDF candidate is not pretrained either and is left out."""
    below = of = 0
    for t in tasks.values():
        c = t["candidates"]
        rand = [n for n in c if n.startswith("random") and measure in c[n]["scores"]]
        pre = [n for n in c if not n.startswith("random") and n != TFIDF and measure in c[n]["scores"]]
        if not rand or not pre:
            continue
        sign = -1 if measure in LOWER_IS_BETTER else 1
        below += all(sign * c[r]["scores"][measure] < sign * c[p]["scores"][measure] for r in rand for p in pre)
        of += 1
    return {"random_farthest": below, "tasks": of}


def gain_correlation(ranking: dict, measured: dict, random: str) -> dict:
    """Per pretrained candidate, across the tasks: Spearman correlation between the measure and
    the candidate's frozen accuracy minus the random-weight copy's (does nearer data mean
    pretraining helped more?). Five tasks make five points: read it as a direction, not a test."""
    from scipy.stats import spearmanr

    tasks = ranking["tasks"]
    out = {}
    for cand in next(iter(measured.values())):
        if cand == random or cand == TFIDF:
            continue
        gain = [
            tasks[n]["candidates"][cand]["achieved"]["frozen"] - tasks[n]["candidates"][random]["achieved"]["frozen"]
            for n in tasks
        ]
        sign = {m: -1 if m in LOWER_IS_BETTER else 1 for m in PROXIMITY}
        out[cand] = {
            m: float(spearmanr([sign[m] * measured[n][cand][m] for n in tasks], gain).statistic)
            for m in PROXIMITY
            if m in measured[next(iter(tasks))][cand]
        }
        out[cand]["gains"] = gain
    return out


def with_measures(ranking: dict, measured: dict) -> dict:
    """bench/ranking.py's tasks with each candidate's scores replaced by the measures (``summarise``
    flips the sign of those where lower is nearer, so a positive tau means nearer data transferred
    better)."""
    tasks = {}
    for name, task in ranking["tasks"].items():
        cands = {}
        for cand, c in task["candidates"].items():
            m = measured[name].get(cand, {})
            scores = {k: v for k, v in m.items() if k in PROXIMITY}
            cands[cand] = {"scores": scores, "achieved": c["achieved"]}
        tasks[name] = {"candidates": cands}
    return tasks


def print_tables(results: dict) -> None:
    print(
        "\n| measure | images | text | pooled | images, pretrained only | random weights farthest |\n"
        "|---|---|---|---|---|---|"
    )
    for m in PROXIMITY:
        cells = []
        for part in ("image", "text", "pooled", "image pretrained"):
            v = results["summary"][part].get(m)
            cells.append(
                "n/a"
                if v is None
                else f"{v['mean_tau']:+.2f} [{v['ci'][0]:+.2f}, {v['ci'][1]:+.2f}] · {v['right']:g}/{v['tasks']} · "
                f"{v['mean_regret']:.3f}"
            )
        s = results["separation"][m]
        sign = "" if m not in LOWER_IS_BETTER else " (lower is nearer)"
        print(f"| {m}{sign} | {' | '.join(cells)} | {s['random_farthest']}/{s['tasks']} |")
    print("\nSpearman across tasks of the measure (nearer = higher) vs the gain over random weights:")
    for modality, per in results["gain_correlation"].items():
        for cand, r in per.items():
            print(f"  {modality} {cand}: " + ", ".join(f"{m} {v:+.1f}" for m, v in r.items() if m != "gains"))
    for modality in ("image", "text"):
        for task, cands in results[modality].items():
            print(f"\n{modality} {task}:")
            for cand, m in cands.items():
                vals = ", ".join(f"{k} {v:.3f}" for k, v in m.items() if not k.startswith("_"))
                print(f"  {cand}: {vals}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default="/tmp/transferlab-proximity-bench", help="feature cache and random models")
    parser.add_argument("--summarise", action="store_true", help="only recompute the summaries from proximity.json")
    args = parser.parse_args()
    here = Path(__file__).parent / "results"
    ranking = json.loads((here / "ranking.json").read_text())
    n_items = ranking["settings"]["n_items"]
    path = here / "proximity.json"
    if args.summarise:
        results = json.loads(path.read_text())
    else:
        workdir = Path(args.cache)
        workdir.mkdir(parents=True, exist_ok=True)
        results = {"date": time.strftime("%Y-%m-%d"), "n_items": n_items}
        for modality in ("image", "text"):
            if modality == "text" and (workdir / "random-minilm").exists():  # made again from the same seed
                import shutil

                shutil.rmtree(workdir / "random-minilm")
            backbones, settings, builders = setup(modality, workdir)
            results[modality] = {
                name: measure_task(modality, name, build, n_items, backbones, settings)
                for name, build in builders.items()
            }
    tasks = {m: with_measures(ranking[m], results[m]) for m in ("image", "text")}
    both = {f"{m}: {n}": t for m in ("image", "text") for n, t in tasks[m].items()}
    # among real models only: do the measures rank the pretrained image candidates too, or only
    # tell them from random weights? (text has one pretrained candidate: nothing to rank)
    pretrained = {
        n: {"candidates": {c: v for c, v in t["candidates"].items() if not c.startswith("random")}}
        for n, t in tasks["image"].items()
    }
    parts = (("image", tasks["image"]), ("text", tasks["text"]), ("pooled", both), ("image pretrained", pretrained))
    results["summary"] = {part: {k: summarise(t, k) for k in PROXIMITY} for part, t in parts}
    results["separation"] = {k: separates(both, k) for k in PROXIMITY}
    results["gain_correlation"] = {
        "image": gain_correlation(ranking["image"], results["image"], "random mobilenet_v2"),
        "text": gain_correlation(ranking["text"], results["text"], "random MiniLM"),
    }
    path.write_text(json.dumps(results, indent=2, default=float))
    print_tables(results)


if __name__ == "__main__":
    main()
