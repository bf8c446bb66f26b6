"""Near-duplicate images: perceptual hashes to find candidates, pixel correlation to confirm them.

The pixel hash makes a re-saved identical image (other PNG compression, other metadata) an
exact duplicate. Candidates for near-duplicates come from 64-bit perceptual hashes
(``imagehash.phash``, a thresholded low-frequency DCT), which survive rescaling, re-encoding and
brightness changes. Each image is also hashed mirrored (horizontal flips) and as nine crops to
90% of its sides on a 3x3 grid of offsets, because a crop moves the hash far. Candidates are
joined by multi-index hashing (see ``hamming``), so the search is not quadratic.

Hashes alone are not discriminating enough: on small, simple images (28-pixel animal silhouettes)
unrelated images of one class share most of their hash bits. So each candidate is confirmed on
32x32 grayscale thumbnails, in the alignment whose hash matched (original, mirrored, or cropped
and re-aligned to the pixel on a 64-pixel copy): their correlation must reach
``min_correlation``. Correlation ignores brightness and contrast changes. The grey copies the
confirmation compares are made in the pass that decodes each image for its hashes, and kept
(``Grays``): an image is a candidate in about 20 hits on a set of small look-alike pictures, and
decoding it again for each was half the audit's time (10,000 Animal-MNIST images).
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np

from ...backbones.images import load_image
from .hamming import hamming_join

SHRINK = 128  # hash a copy at most this many pixels a side: fast, and phash looks at 32 at most
CROP, GRID = 0.9, 3
VARIANTS = ["original", "mirrored"] + ["cropped"] * (GRID * GRID)
BASE, THUMB = 64, 32  # confirmation: crops are cut from a BASE-pixel copy, compared at THUMB pixels
CROP_SIZES = (54, 56, 58, 60)  # crop sides tried on the BASE copy: 84% to 94%, around CROP
REFINE_MARGIN = 0.05  # crops this far below the threshold at CROP are tried at the other sizes
MAX_PHOTOMETRIC = 1.5  # an edited copy keeps its mean brightness and contrast within this factor
CHUNK = 20_000  # candidate pairs confirmed at a time, to bound memory
GRAY_BYTES = 512 * 2**20  # grey copies kept from the decoding pass (4 KiB an image: 131,072 images)


class Grays:
    """Each image's BASE x BASE grey copy, the pixels confirmation compares: kept (uint8) when
    ``signatures`` made them, else decoded from the items when asked."""

    def __init__(self, items: list, kept: np.ndarray | None = None):
        self.items, self.kept = items, kept

    def __len__(self) -> int:
        return len(self.items)

    def take(self, index) -> np.ndarray:
        """(n, BASE, BASE) float32 grey copies of the images at ``index``."""
        index = np.asarray(index, np.int64)
        if self.kept is not None:
            return self.kept[index].astype(np.float32)
        return np.stack([_gray(self.items[i]) for i in index])

    def subset(self, index) -> Grays:
        index = np.asarray(index, np.int64)
        return Grays([self.items[i] for i in index], None if self.kept is None else self.kept[index])


def _grays(items) -> Grays:
    return items if isinstance(items, Grays) else Grays(items)


def signatures(items: list) -> tuple[list[str], np.ndarray, Grays]:
    """Per image: the pixel hash, the (N, len(VARIANTS)) perceptual hashes and the grey copy
    confirmation compares (kept up to GRAY_BYTES). Decodes each image once."""
    import imagehash

    keys, phash = [], np.empty((len(items), len(VARIANTS)), np.uint64)
    kept = np.empty((len(items), BASE, BASE), np.uint8) if len(items) * BASE * BASE <= GRAY_BYTES else None
    for i, item in enumerate(items):
        img = load_image(item)
        keys.append(hashlib.sha256(repr(img.size).encode() + img.tobytes()).hexdigest())
        if kept is not None:
            kept[i] = _gray_of(img)
        img.thumbnail((SHRINK, SHRINK))
        for v, variant in enumerate(_variants(img)):
            phash[i, v] = np.uint64(int(str(imagehash.phash(variant)), 16))
    return keys, phash, Grays(items, kept)


def search_cost(items: list, radius: int, seconds: float = 1.0, most: int = 400, seed: int = 0) -> dict:
    """What the near-duplicate search will cost on these images, from a random sample of them.

    The sample is decoded and hashed as the audit does (``signatures``) until ``most`` images or
    ``seconds`` have passed, and searched among itself. Returns ``{"images": m, "per_image":
    seconds of the decoding and hashing an image, "hit_share": candidate hits per ordered pair of
    distinct images}``. The hits are what the pixel confirmation pays for, and they grow with the
    square of the images: on sets of look-alikes (silhouettes of one class share most of their
    hash bits) they outgrow the per-image cost (10,000 Animal-MNIST images: 917,567 hits)."""
    import time

    order = np.random.default_rng(seed).permutation(len(items))[:most]
    if not len(order):
        return {"images": 0, "per_image": 0.0, "hit_share": 0.0}
    signatures([items[order[0]]])  # the decoders' and the hash's first call (imports, caches): not timed
    phash, done, spent = [], 0, 0.0
    while done < len(order) and spent < seconds:
        chunk = [items[i] for i in order[done : done + 16]]
        start = time.perf_counter()
        phash.append(signatures(chunk)[1])
        spent += time.perf_counter() - start
        done += len(chunk)
    hits = len(candidate_hits(np.concatenate(phash), radius)[0])
    return {"images": done, "per_image": spent / done, "hit_share": hits / max(done * (done - 1), 1)}


def _variants(img) -> list:
    """The image, its mirror image, and its crops to CROP of each side on a GRID x GRID grid."""
    from PIL import Image

    w, h = img.size
    cw, ch = max(1, round(w * CROP)), max(1, round(h * CROP))
    out = [img, img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    for fy in np.linspace(0, 1, GRID):
        for fx in np.linspace(0, 1, GRID):
            x, y = round(fx * (w - cw)), round(fy * (h - ch))
            out.append(img.crop((x, y, x + cw, y + ch)))
    return out


def near_pairs(items: list | Grays, phash: np.ndarray, radius: int, min_correlation: float):
    """Pairs (a < b) of near-duplicate images, with their thumbnail correlation and how they match.

    Every variant of every image is looked up among the original hashes; each hit is confirmed
    in the alignment its variant suggests. Returns (a, b, correlation, how) where ``how`` is
    "original", "mirrored" or "cropped".
    """
    return _best_confirmed(items, *candidate_hits(phash, radius), min_correlation)


def candidate_hits(phash: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The hash search's candidates: (image, its variant, other image) for every variant hash of
    one image within ``radius`` bits of another image's original hash."""
    k = phash.shape[1]
    q, other, _ = hamming_join(phash.ravel(), phash[:, 0], radius)
    item, variant = q // k, q % k
    hit = item != other
    return item[hit], variant[hit], other[hit]


def confirm_pairs(items: list | Grays, a: np.ndarray, b: np.ndarray, min_correlation: float):
    """Confirm candidate pairs found another way (embeddings) on the pixels, in every alignment:
    each side as itself, mirrored and cropped on the grid, against the other's original."""
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    k = len(VARIANTS)
    item = np.concatenate([np.repeat(a, k), np.repeat(b, k)])
    other = np.concatenate([np.repeat(b, k), np.repeat(a, k)])
    variant = np.tile(np.arange(k), 2 * len(a))
    return _best_confirmed(items, item, variant, other, min_correlation)


def _best_confirmed(
    items: list | Grays, item: np.ndarray, variant: np.ndarray, other: np.ndarray, min_correlation: float
):
    """Per unordered pair, the best-aligned of its hits; the pairs that reach ``min_correlation``."""
    refine, grays = min_correlation - REFINE_MARGIN, _grays(items)
    corr = np.concatenate(
        [
            _confirm(grays, item[s : s + CHUNK], variant[s : s + CHUNK], other[s : s + CHUNK], refine)
            for s in range(0, len(item), CHUNK)
        ]
        or [np.empty(0)]
    )
    n = max(len(items), 1)
    lo, hi = np.minimum(item, other), np.maximum(item, other)
    order = np.lexsort((-corr, hi, lo))  # per pair, the best-aligned hit first
    lo, hi, corr, variant = lo[order], hi[order], corr[order], variant[order]
    _, first = np.unique(lo * n + hi, return_index=True)
    keep = first[corr[first] >= min_correlation]
    return lo[keep], hi[keep], corr[keep], np.array([VARIANTS[v] for v in variant[keep]], dtype=object)


def _confirm(
    grays: Grays, item: np.ndarray, variant: np.ndarray, other: np.ndarray, refine_above: float = -1.0
) -> np.ndarray:
    """Thumbnail correlation of each hit: ``item`` (as ``variant``) against ``other``'s original,
    or -1 where the two could not be one picture edited (see ``_photometric_ok``).

    A crop variant only says which grid cell matched; the crop is re-aligned on the BASE-pixel
    copy within two pixels of that cell, first at CROP of the side, then, for the hits that
    already reach ``refine_above`` there, at the other CROP_SIZES (a crop to 88% of a 25-pixel
    image is not a crop to 90% of a 64-pixel one); the best alignment counts.
    """
    involved, local = np.unique(np.concatenate([item, other]), return_inverse=True)
    li, lo = local[: len(item)], local[len(item) :]
    base = grays.take(involved)  # (n, BASE, BASE)
    whole = _normalise(_shrink(base))
    corr = np.full(len(item), -1.0, dtype=np.float32)
    for v, view in ((0, whole), (1, _normalise(_shrink(base[:, :, ::-1])))):
        at = variant == v
        corr[at] = np.einsum("ij,ij->i", view[li[at]], whole[lo[at]])
    cell_row, cell_col = (variant - 2) // GRID, (variant - 2) % GRID
    first = round(BASE * CROP)
    for size in [first] + [z for z in CROP_SIZES if z != first]:
        hits = np.flatnonzero((variant >= 2) & ((size == first) | (corr >= refine_above)))
        for at, dy, dx in _alignments(hits, cell_row[hits], cell_col[hits], BASE - size):
            needed, where = np.unique(li[at], return_inverse=True)
            crops = _normalise(_shrink(base[needed, dy : dy + size, dx : dx + size]))
            corr[at] = np.maximum(corr[at], np.einsum("ij,ij->i", crops[where], whole[lo[at]]))
    corr[~_photometric_ok(base, li, lo)] = -1.0
    return corr


def _alignments(hits: np.ndarray, row: np.ndarray, col: np.ndarray, span: int):
    """The crop offsets to try for each hit: every (dy, dx) in [0, span] within two pixels of its
    grid cell's offset. Yields (the hits, dy, dx) per offset, each offset once."""
    cells = np.linspace(0, span, GRID)
    steps = np.arange(5)  # the integers within two of an offset: at most five

    def near(cell: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # (hits, 5) candidate offsets, and which hold
        d = np.ceil(cell - 2)[:, None] + steps
        return d.astype(np.int64), (d <= cell[:, None] + 2) & (d >= 0) & (d <= span)

    ys, y_ok = near(cells[row])
    xs, x_ok = near(cells[col])
    ok = (y_ok[:, :, None] & x_ok[:, None, :]).ravel()
    hit = np.repeat(hits, 25)[ok]
    dy = np.broadcast_to(ys[:, :, None], (len(hits), 5, 5)).ravel()[ok]
    dx = np.broadcast_to(xs[:, None, :], (len(hits), 5, 5)).ravel()[ok]
    key = dy * (span + 1) + dx
    order = np.argsort(key, kind="stable")
    if not len(order):
        return
    starts = np.flatnonzero(np.r_[True, np.diff(key[order]) != 0])
    for s, e in zip(starts, np.r_[starts[1:], len(order)]):
        group = order[s:e]
        yield hit[group], int(dy[group[0]]), int(dx[group[0]])


def _photometric_ok(base: np.ndarray, li: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Whether brightness and contrast of the two images are within what an edit changes.

    Correlation ignores brightness and contrast, which is what lets a brightened copy match; but
    it also lets two nearly flat pictures (a dark and a light patch of wall with one edge) match
    perfectly. An edited copy keeps its mean level and contrast within a factor MAX_PHOTOMETRIC.
    """
    mean, std = base.mean(axis=(1, 2)) + 8.0, base.std(axis=(1, 2)) + 2.0  # (n,); offsets tame near-black
    mean_ratio = np.maximum(mean[li], mean[lo]) / np.minimum(mean[li], mean[lo])
    std_ratio = np.maximum(std[li], std[lo]) / np.minimum(std[li], std[lo])
    return (mean_ratio <= MAX_PHOTOMETRIC) & (std_ratio <= MAX_PHOTOMETRIC)


def calibrated_threshold(
    items: list | Grays,
    labels: np.ndarray,
    low: float,
    high: float,
    reference: float,
    seed: int = 0,
    n_images: int = 1000,
    n_pairs: int = 4000,
) -> tuple[float, float]:
    """The correlation a pair must reach on this data, and the typical same-class correlation it rests on.

    How alike two *different* pictures can get depends on the data. Photographs of one class
    share little pixel structure (random same-class pairs correlate near 0), so an edited copy
    stands far above every distinct pair and ``low`` is strict enough. Centred objects on a
    plain background, handwritten digits and silhouettes share their whole shape (random
    same-class pairs correlate 0.5-0.8), and their closest distinct pairs reach 0.98-0.99; there
    only ``high`` separates an edited copy from another object of the same kind. The threshold
    moves from ``low`` to ``high`` with the median correlation of random same-class pairs,
    reaching ``high`` at ``reference`` (bench/image_pairs.py measured these on five real sets).
    """
    rng, grays = np.random.default_rng(seed), _grays(items)
    labels = np.asarray(labels)
    sample = np.sort(rng.choice(len(grays), min(len(grays), n_images), replace=False))
    if len(sample) < 2:
        return high, float("nan")
    thumbs = _normalise(_shrink(grays.take(sample)))
    a, b = rng.integers(0, len(sample), (2, n_pairs))
    same = (a != b) & (labels[sample][a] == labels[sample][b])
    if same.sum() < 20:  # too few same-class pairs in the sample: any pairs
        same = a != b
    median = float(np.median(np.einsum("ij,ij->i", thumbs[a[same]], thumbs[b[same]])))
    share = float(np.clip(median / reference, 0.0, 1.0))
    return round(low + (high - low) * share, 4), median


def _gray(item) -> np.ndarray:
    return _gray_of(load_image(item)).astype(np.float32)


def _gray_of(img) -> np.ndarray:
    """(BASE, BASE) uint8: the decoded image in grey, resized."""
    from PIL import Image

    return np.asarray(img.convert("L").resize((BASE, BASE), Image.Resampling.BILINEAR))


def _shrink(images: np.ndarray) -> np.ndarray:
    """(n, h, w) -> (n, THUMB * THUMB) by area averaging, a linear map so crops batch as matrix products."""
    rows, cols = _area_matrix(images.shape[1]), _area_matrix(images.shape[2])
    return (rows @ images @ cols.T).reshape(len(images), -1)


@functools.lru_cache(maxsize=None)
def _area_matrix(n_in: int) -> np.ndarray:
    """(THUMB, n_in): output pixel o averages the input span [o * n_in / THUMB, (o + 1) * n_in / THUMB)."""
    edges = np.linspace(0, n_in, THUMB + 1)
    pixel = np.arange(n_in)
    overlap = np.clip(np.minimum(edges[1:, None], pixel + 1) - np.maximum(edges[:-1, None], pixel), 0, None)
    return (overlap / overlap.sum(axis=1, keepdims=True)).astype(np.float32)


def _normalise(x: np.ndarray) -> np.ndarray:
    """Zero mean, unit norm per row, so a dot product is a correlation (0 for a flat image)."""
    x = x - x.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 1e-6)
