"""Image near-duplicates: precision on real look-alikes, recall on planted edits, per method and set.

Five real image sets that pip packages ship (nothing synthetic, nothing downloaded):

* ``digits``: scikit-learn's 1,797 handwritten digits (8x8, 10 classes)
* ``lfw``: scikit-image's ``lfw_subset`` (200 images 25x25: 100 faces, 100 non-face patches, many
  nearly flat)
* ``textures``: 64-pixel tiles of scikit-image's ``brick``, ``grass`` and ``gravel`` (one class each)
* ``photos``: 96-pixel tiles of the photographs scikit-image and scikit-learn bundle (astronaut,
  chelsea, coffee, rocket, china, flower; one class per photograph)
* ``animal``: 4,000 Animal-MNIST silhouettes (28x28, 10 classes: centred objects on a plain
  background, the case that fooled the old confirmation)

Positives: for 150 random images of each set, five planted edits each (JPEG at quality 75,
rescaled 1.5x, a random crop to 90% of each side, a horizontal flip, brightness +20%); each copy
is added to the set and must be paired with its source. Hard negatives: every pair of distinct
images of one class that the perceptual-hash candidate search proposes (Hamming radius 10 over
the original, mirrored and cropped hashes): the look-alikes a detector actually has to reject.
Pairs whose pixels are identical, or identical once mirrored, are the same picture and are left
out of the negatives. Animal-MNIST also reuses silhouettes rescaled or shifted, which this
cannot exclude: some of its "negatives" are real copies (the JSON keeps the flagged pairs to
look at).

Methods: ``imagehash`` (the baseline: ``imagehash.phash`` of each image, Hamming distance <= 8),
``before`` (transferlab's previous confirmation: candidates as now, pixel correlation >= 0.95 in
the matched alignment at one crop size), ``after`` (the current one: the correlation threshold
calibrated per data set on random same-class pairs, crops re-aligned at several sizes, brightness
and contrast within an edit's reach). Precision = planted pairs found / all pairs flagged among
planted pairs and hard negatives. Writes bench/results/image_pairs.json.

    python bench/image_pairs.py [--per-set 150] [--animal 4000]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np

from transferlab.auditing.matching import Matcher, images
from transferlab.auditing.matching.hamming import hamming_join

RADIUS = 10  # the candidate search's Hamming radius (Matcher.image_phash_bits)
BASELINE_RADIUS = 8


# --- the sets ---------------------------------------------------------------------------------
def digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    return [(x * 255 / 16).astype(np.uint8) for x in d.images], d.target


def lfw():
    from skimage import data

    x = data.lfw_subset()
    return [(im * 255).astype(np.uint8) for im in x], np.array([0] * 100 + [1] * 100)


def _tiles(bigs: list[np.ndarray], side: int):
    imgs, labels = [], []
    for k, big in enumerate(bigs):
        for y in range(0, big.shape[0] - side + 1, side):
            for x in range(0, big.shape[1] - side + 1, side):
                imgs.append(np.ascontiguousarray(big[y : y + side, x : x + side]))
                labels.append(k)
    return imgs, np.array(labels)


def textures():
    from skimage import data

    return _tiles([data.brick(), data.grass(), data.gravel()], 64)


def photos():
    from skimage import data
    from sklearn.datasets import load_sample_images

    return _tiles([data.astronaut(), data.chelsea(), data.coffee(), data.rocket(), *load_sample_images().images], 96)


def animal(n: int):
    from transferlab.data.demo import animal_mnist

    ds = animal_mnist()
    classes = sorted(set(ds.labels))
    return list(ds.items[:n]), np.array([classes.index(label) for label in ds.labels[:n]])


# --- planted edits ----------------------------------------------------------------------------
def _pil(a):
    from PIL import Image

    return Image.fromarray(a)


def _jpeg(a, rng):
    from PIL import Image

    buf = io.BytesIO()
    _pil(a).convert("RGB").save(buf, format="JPEG", quality=75)
    out = Image.open(buf)
    return np.asarray(out if a.ndim == 3 else out.convert("L"))


def _crop(a, rng):
    h, w = a.shape[:2]
    ch, cw = max(1, round(h * 0.9)), max(1, round(w * 0.9))
    y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    return np.ascontiguousarray(a[y : y + ch, x : x + cw])


def _brightness(a, rng):
    from PIL import ImageEnhance

    return np.asarray(ImageEnhance.Brightness(_pil(a)).enhance(1.2))


EDITS = {
    "jpeg 75": _jpeg,
    "rescale 1.5x": lambda a, rng: np.asarray(_pil(a).resize((int(a.shape[1] * 1.5), int(a.shape[0] * 1.5)))),
    "crop 90%": _crop,
    "flip": lambda a, rng: np.ascontiguousarray(a[:, ::-1]),
    "brightness +20%": _brightness,
}


def planted(imgs: list, labels: np.ndarray, per_set: int, seed: int):
    """The set plus edited copies of ``per_set`` random sources: items, labels, [(source, copy, kind)]."""
    rng = np.random.default_rng(seed)
    sources = rng.choice(len(imgs), min(per_set, len(imgs)), replace=False)
    items, out_labels, pairs = list(imgs), list(labels), []
    for kind, edit in EDITS.items():
        for s in sources:
            items.append(edit(imgs[s], rng))
            out_labels.append(labels[s])
            pairs.append((int(s), len(items) - 1, kind))
    return items, np.array(out_labels), pairs


# --- methods ----------------------------------------------------------------------------------
def imagehash_baseline(items, phash):
    q, b, _ = hamming_join(phash[:, 0], phash[:, 0], BASELINE_RADIUS)
    keep = q < b
    return set(zip(q[keep].tolist(), b[keep].tolist()))


def transferlab_pairs(items, labels, phash, before: bool):
    """Confirmed pairs and the threshold used; ``before`` restores the previous confirmation."""
    saved = images.CROP_SIZES, images.MAX_PHOTOMETRIC
    try:
        if before:
            images.CROP_SIZES, images.MAX_PHOTOMETRIC = (round(images.BASE * images.CROP),), np.inf
            threshold = 0.95
        else:
            m = Matcher()
            threshold, _ = images.calibrated_threshold(
                items, labels, m.image_correlation_low, m.image_correlation_high, m.image_shape_reference
            )
        a, b, _, _ = images.near_pairs(items, phash, RADIUS, threshold)
    finally:
        images.CROP_SIZES, images.MAX_PHOTOMETRIC = saved
    return set(zip(a.tolist(), b.tolist())), threshold


def hard_negatives(items, labels, phash, n_originals: int, pixel_keys: list[str]) -> set:
    """Distinct same-class originals the candidate search proposes (what a detector must reject)."""
    n, k = phash.shape
    q, other, _ = hamming_join(phash.ravel(), phash[:, 0], RADIUS)
    item = q // k
    lo, hi = np.minimum(item, other), np.maximum(item, other)
    keep = (lo != hi) & (hi < n_originals)
    lo, hi = lo[keep], hi[keep]
    keep = labels[lo] == labels[hi]
    pairs = set(zip(lo[keep].tolist(), hi[keep].tolist()))
    mirror_keys = {i: _mirror_key(items[i]) for pair in pairs for i in pair}
    return {(a, b) for a, b in pairs if pixel_keys[a] != pixel_keys[b] and mirror_keys[a] != pixel_keys[b]}


def _mirror_key(item) -> str:
    import hashlib

    from transferlab.backbones.images import load_image

    img = load_image(np.ascontiguousarray(np.asarray(item)[:, ::-1]))
    return hashlib.sha256(repr(img.size).encode() + img.tobytes()).hexdigest()


def evaluate(found: set, positives: list, negatives: set) -> dict:
    tp = [(min(s, c), max(s, c)) in found for s, c, _ in positives]
    fp = sorted(negatives & found)
    kinds = sorted({kind for _, _, kind in positives})
    return {
        "recall": float(np.mean(tp)),
        "precision": sum(tp) / max(sum(tp) + len(fp), 1),
        "true_positives": int(sum(tp)),
        "false_positives": len(fp),
        "negatives": len(negatives),
        "recall_by_edit": {
            k: float(np.mean([t for t, (_, _, kind) in zip(tp, positives) if kind == k])) for k in kinds
        },
        "false_positive_pairs": [list(p) for p in fp[:50]],
    }


def run_set(name: str, imgs, labels, per_set: int, seed: int) -> dict:
    items, all_labels, positives = planted(imgs, labels, per_set, seed)
    start = time.perf_counter()
    pixel_keys, phash, _ = images.signatures(items)
    hash_seconds = time.perf_counter() - start
    negatives = hard_negatives(items, all_labels, phash, len(imgs), pixel_keys)
    out = {"set": name, "images": len(imgs), "planted": len(positives), "hash_seconds": hash_seconds, "methods": {}}
    found = imagehash_baseline(items, phash)
    out["methods"][f"imagehash (phash, Hamming <= {BASELINE_RADIUS})"] = evaluate(found, positives, negatives)
    for label, before in (("before", True), ("after", False)):
        start = time.perf_counter()
        found, threshold = transferlab_pairs(items, all_labels, phash, before)
        result = evaluate(found, positives, negatives)
        result.update(threshold=threshold, seconds=time.perf_counter() - start)
        out["methods"][label] = result
    return out


def section(d: dict) -> str:
    """This benchmark's part of bench/RESULTS.md."""
    lines = [
        "| set | images | hard negatives | method | precision | recall | false positives | "
        "recall by edit (JPEG, rescale, crop, flip, brightness) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in d["results"]:
        for method, m in r["methods"].items():
            edits = ", ".join(f"{m['recall_by_edit'][k]:.2f}" for k in EDITS)
            thr = f" (≥ {m['threshold']:.3f})" if "threshold" in m else ""
            lines.append(
                f"| {r['set']} | {r['images']} | {m['negatives']} | {method}{thr} | {m['precision']:.3f} | "
                f"{m['recall']:.3f} | {m['false_positives']} | {edits} |"
            )
    met = [
        r["set"]
        for r in d["results"]
        if r["methods"]["after"]["precision"] >= 0.99 and r["methods"]["after"]["recall"] >= 0.95
    ]
    missed = [
        f"{r['set']} (precision {r['methods']['after']['precision']:.3f}, recall {r['methods']['after']['recall']:.3f})"
        for r in d["results"]
        if r["set"] not in met
    ]
    verdict = (
        f"Target precision ≥ 0.99 with recall ≥ 0.95: met on {len(met)} of {len(d['results'])} sets "
        f"({', '.join(met)})"
        + (f"; missed on {', '.join(missed)}." if missed else ".")
        + " Recall is capped by the candidate search: an edit whose perceptual hash moves more than "
        f"{RADIUS} bits (JPEG or a crop of a 25-pixel, nearly flat patch) is never confirmed; the "
        "recall of `before` at its lower bar shows that cap."
    )
    return "\n".join(
        [
            "## Image near-duplicates: precision on real look-alikes, recall on planted edits",
            "",
            "`python bench/image_pairs.py` — five real image sets that packages ship; planted edits of 150 images "
            "each (positives) against every pair of distinct same-class images the hash search proposes (hard "
            "negatives). `before` is the previous confirmation (pixel correlation ≥ 0.95), `after` the current one "
            "(threshold calibrated per set on random same-class pairs, crops re-aligned at several sizes, brightness "
            "and contrast within an edit's reach). Animal-MNIST reuses silhouettes rescaled or shifted, so some of its "
            "negatives are real copies.",
            "",
            *lines,
            "",
            verdict,
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-set", type=int, default=150, help="Images per set that get the five planted edits.")
    parser.add_argument("--animal", type=int, default=4000, help="Animal-MNIST images used.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sets", nargs="+", default=["digits", "lfw", "textures", "photos", "animal"])
    args = parser.parse_args()
    loaders = {
        "digits": digits,
        "lfw": lfw,
        "textures": textures,
        "photos": photos,
        "animal": lambda: animal(args.animal),
    }
    results = []
    for name in args.sets:
        imgs, labels = loaders[name]()
        r = run_set(name, imgs, labels, args.per_set, args.seed)
        results.append(r)
        for method, m in r["methods"].items():
            print(
                f"{name:9s} {method:34s} precision {m['precision']:.3f} recall {m['recall']:.3f} "
                f"FP {m['false_positives']:5d} / {m['negatives']}",
                file=sys.stderr,
                flush=True,
            )
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run_all import save

    save("image_pairs", {"per_set": args.per_set, "results": results})
    print(section({"results": results}))


if __name__ == "__main__":
    main()
