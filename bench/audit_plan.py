"""The image audit's plan against what the audit took, at several sizes of real image sets.

The plan prices the image audit from a sample of the user's images (``pace.image_search``): their
decoding and hashing timed, and the share of pairs the hash search proposes for the pixel
confirmation, scaled by the square of the images. This runs ``transferlab.audit`` (no backbone:
the checks alone) on random subsets of Animal-MNIST (28-pixel silhouettes, look-alikes whose hits
grow fastest), all of scikit-learn's digits (8x8) and scikit-image's faces (``lfw_subset``,
25x25), and reports per set: the planned and actual seconds of the audit stage, their ratio, and
the hits the sample predicted against the hits the search really found.

    python bench/audit_plan.py [--sizes 1000 2500 5000 10000]
Writes bench/results/audit_plan.json. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
from run_all import save

import transferlab
from transferlab.auditing.matching import Matcher
from transferlab.auditing.matching import images as im
from transferlab.data.sources import Dataset
from transferlab.demo import demo_data


def subset(ds: Dataset, n: int, seed: int = 0) -> Dataset:
    keep = np.sort(np.random.default_rng(seed).permutation(len(ds.items))[:n])
    pick = lambda xs: None if xs is None else [xs[i] for i in keep]  # noqa: E731
    return Dataset(ds.modality, pick(ds.items), pick(ds.labels), pick(ds.origins), pick(ds.splits))


def sklearn_sets() -> dict[str, Dataset]:
    from skimage.data import lfw_subset
    from sklearn.datasets import load_digits

    d = load_digits()
    digits = [(x * 16).clip(0, 255).astype(np.uint8) for x in d.images]
    faces = [(x * 255).clip(0, 255).astype(np.uint8) for x in lfw_subset()]
    return {
        "digits (8x8)": Dataset(
            "image", digits, [str(t) for t in d.target], [f"digit {i}" for i in range(len(digits))]
        ),
        # lfw_subset: 100 faces, then 100 non-faces
        "faces (lfw_subset, 25x25)": Dataset(
            "image", faces, ["face"] * 100 + ["other"] * 100, [f"lfw {i}" for i in range(200)]
        ),
    }


def true_hits(items: list) -> int:
    return len(im.candidate_hits(im.signatures(items)[1], Matcher.image_phash_bits)[0])


def bench(name: str, ds: Dataset) -> dict:
    with tempfile.TemporaryDirectory() as work:
        start = time.perf_counter()
        r = transferlab.audit(ds, out=f"{work}/a", quiet=True)
        wall = time.perf_counter() - start
    stage = next(s for s in r["plan"]["stages"] if s["name"] == "audit")
    search = r["plan"]["pace"].get("image_search") or {}
    n = len(ds.items)
    hits = true_hits(ds.items)
    predicted_hits = (search.get("hit_share") or 0.0) * n * (n - 1)
    row = {
        "set": name,
        "images": n,
        "planned": round(stage["seconds"], 1),
        "actual": stage.get("actual_seconds"),
        "ratio": round(stage["seconds"] / stage["actual_seconds"], 2) if stage.get("actual_seconds") else None,
        "wall_seconds": round(wall, 1),
        "sample": search,
        "hits": hits,
        "hits_predicted": round(predicted_hits),
        "numeric_pace": r["plan"]["pace"]["numeric"],
        "how": stage["how"],
    }
    print(row, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 2500, 5000, 10000])
    args = parser.parse_args()
    animals = demo_data("image")
    rows = [bench(name, ds) for name, ds in sklearn_sets().items()]
    rows += [bench(f"Animal-MNIST, {n:,} of 10,000", subset(animals, n)) for n in args.sizes]
    save("audit_plan", {"runs": rows})


if __name__ == "__main__":
    main()
