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

from ranking import TFIDF, _train_split, setup, short, summarise  # noqa: E402

# measure -> +1 when higher means nearer the pretraining data, -1 when lower does
DIRECTION = {
    "source_information": 1,
    "source_confidence": 1,
    "source_classes": 1,
    "effective_rank": 1,
    "centroid_cosine": -1,
}


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
    """On how many tasks the random-weight candidate is below every pretrained one (``tasks`` as
    ``with_measures`` signs them, higher is nearer); the TF-IDF candidate is not pretrained either and is left out."""
    below = of = 0
    for t in tasks.values():
        c = t["candidates"]
        rand = [n for n in c if n.startswith("random") and measure in c[n]["scores"]]
        pre = [n for n in c if not n.startswith("random") and n != TFIDF and measure in c[n]["scores"]]
        if not rand or not pre:
            continue
        below += all(
            c[r]["scores"][measure] < c[p]["scores"][measure] for r in rand for p in pre
        )  # signed: higher is nearer
        of += 1
    return {"below_all_pretrained": below, "tasks": of}


def with_measures(ranking: dict, measured: dict) -> dict:
    """bench/ranking.py's tasks with each candidate's scores replaced by the measures, signed so
    that higher means nearer (so a positive tau means nearer data transferred better)."""
    tasks = {}
    for name, task in ranking["tasks"].items():
        cands = {}
        for cand, c in task["candidates"].items():
            m = measured[name].get(cand, {})
            scores = {k: DIRECTION[k] * v for k, v in m.items() if k in DIRECTION}
            cands[cand] = {"scores": scores, "achieved": c["achieved"]}
        tasks[name] = {"candidates": cands}
    return tasks


def print_tables(results: dict) -> None:
    print("\n| measure | images | text | pooled | random below every pretrained |\n|---|---|---|---|---|")
    for m in DIRECTION:
        cells = []
        for part in ("image", "text", "pooled"):
            v = results["summary"][part].get(m)
            cells.append(
                "n/a"
                if v is None
                else f"{v['mean_tau']:+.2f} [{v['ci'][0]:+.2f}, {v['ci'][1]:+.2f}] · {v['right']:g}/{v['tasks']} · "
                f"{v['mean_regret']:.3f}"
            )
        s = results["separation"][m]
        sign = "" if DIRECTION[m] > 0 else " (lower is nearer)"
        print(f"| {m}{sign} | {' | '.join(cells)} | {s['below_all_pretrained']}/{s['tasks']} |")
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
    results["summary"] = {
        part: {k: summarise(t, k) for k in DIRECTION}
        for part, t in (("image", tasks["image"]), ("text", tasks["text"]), ("pooled", both))
    }
    results["separation"] = {k: separates(both, k) for k in DIRECTION}
    path.write_text(json.dumps(results, indent=2, default=float))
    print_tables(results)


if __name__ == "__main__":
    main()
