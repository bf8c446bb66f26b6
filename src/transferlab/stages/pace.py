"""How fast this machine does the cheap work of a run today, measured when the run is planned.

The backbones are timed on the user's own items (``training.probe``). The cheap stages (the
audit's checks, the ranking scores, the logistic regressions of ``classical`` and ``frozen``,
``scratch_small``'s small model) are priced by per-item rates in ``stages.costplan``, measured at
full size on an idle machine. Those rates alone missed by 1.7-2.5x on the same data five hours
apart (bench/RESULTS.md, "The cheap stages' rates and the machine they run on"), and the
backbone's speed did not follow them (text: 47 and 48 reviews/s). So each kind of cheap work is
timed here on a fixed problem of its own, and the plan scales the rates by measured / reference:

* ``numeric`` and ``dense``: ``fit_logreg`` (with its choice of C) on a fixed, seeded problem, on
  one BLAS thread and on as many as the run has. Beside one busy core the first ran 1.0-1.3x
  slow and the second 2.3-4x, and so did the stages: the ranking and the classical rung on
  TF-IDF's sparse rows slowed 1.2-1.7x, the logistic regressions on dense features (frozen's
  embeddings, the classical rung's HOG) about 3-4x (bench/cheap_stages.py --busy 1). ``numeric``
  prices the audit's checks, the ranking's scores and the majority class; ``dense`` the fits on
  dense features;
* ``tfidf``: the classical rung's text fit, TF-IDF learnt and a logistic regression on its sparse
  rows, on 300 seeded texts. The one-thread ``numeric`` workload (dense) stood for it before and
  read 1.31-1.68 of its reference in plans where the fit itself ran 0.85-1.13 of its rate;
* ``small``: a few training steps of this modality's small model (``scratch_small``) on a fixed
  batch: a small CNN (images, audio) or a bag of n-gram embeddings (text);
* ``small_epoch``: for images and audio, the small CNN itself as ``scratch_small`` builds it for
  the user's data (its width from the number of training items, its input side and channels, or
  spectrogram frames, from a sample of them), timed on a few of the user's own items: decoding
  an item, a training step (with the rung's augmentation) and a forward pass, per item. The
  fixed workload's factor times one per-item rate missed its epoch by 1.75x on 3,000
  Animal-MNIST images: the network's size and input follow the data, and a fixed rate cannot;
* ``features_per_item``: the classical rung's hand-made features (HOG, MFCC statistics) of 64 of
  the user's own training items, in seconds per item: a direct measure, with no reference (24
  items read 1.4e-3 s an image where the whole split took 1.8e-3);
* ``image_search``: when the run audits images, the audit's own decoding and hashing on a random
  sample of the user's images (up to 400, or a second), and the share of pairs among them the
  hash search proposes for pixel confirmation (``auditing.matching.image_search_cost``). Those
  hits grow with the square of the images, and on sets of look-alikes they are most of the
  audit: a per-image rate planned 10,000 Animal-MNIST images at 0.77 of what they took.

``REFERENCE_SECONDS`` are these workloads' times on the idle machine the per-item rates were
measured on, in the same session (``bench/cheap_stages.py``). Measuring takes about a second.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass

import numpy as np

# the workloads' seconds on the idle machine the per-item rates of ``costplan`` were measured on
# (numeric, dense and tfidf run fit_logreg: when its overheads were cut, 2026-12-03, each was scaled by
# its workload's time after / before, 0.93 for all three, the median of 7 pairs run alternately)
REFERENCE_SECONDS = {
    "numeric": 0.074,
    "dense": 0.063,
    "tfidf": 0.121,  # measured later than the others (2026-12-03, 0.125-0.146), beside the text classical rate
    "small:text": 0.125,
    "small:cnn": 0.136,
}
REPEATS = 5  # each workload timed this many times, the median kept: one run of it varies by +-15% (0.93-1.30x)
FACTOR_RANGE = (0.25, 8.0)  # a measured factor outside this is a glitch of the measurement, not the machine
AUDIT_SAMPLE_SECONDS = 1.0  # the image audit's hashing is timed on a sample for at most this long
FEATURE_ITEMS = 64  # the user's items whose hand-made features are timed, spread over the training split
SMALL_ITEMS = 32  # the user's training items the small CNN is timed on (images, audio)
SMALL_STEPS = 3  # its training steps timed, after one that is not


@dataclass
class CheapPace:
    """measured / reference seconds of each kind of cheap work (above 1: slower than the rates assume)."""

    numeric: float = 1.0
    dense: float = 1.0
    tfidf: float = 1.0
    small: float = 1.0
    features_per_item: float | None = None  # seconds per item of the classical rung's features, measured
    image_search: dict | None = None  # the image audit's hashing and hits on a sample (auditing.matching)
    small_epoch: dict | None = None  # the user's own small CNN timed on their items (``small_epoch``)
    seconds: float = 0.0  # what measuring took

    def to_dict(self) -> dict:
        def rounded(v):
            return round(v, 5) if isinstance(v, float) else v

        return {
            k: {a: rounded(b) for a, b in v.items()} if isinstance(v, dict) else rounded(v)
            for k, v in asdict(self).items()
        }


def _median_seconds(fn, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _factor(seconds: float, reference: float) -> float:
    return float(min(max(seconds / reference, FACTOR_RANGE[0]), FACTOR_RANGE[1]))


def numeric_workload(threads: int | None = 1):
    """``fit_logreg`` with its choice of C on 3,200 seeded examples of 384 features in 4 classes, on
    ``threads`` BLAS threads (None: as many as the process has)."""
    from threadpoolctl import threadpool_limits

    from ..rungs.linear import fit_logreg

    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 4000)
    X = (rng.normal(size=(4, 384))[y] * 0.1 + rng.normal(size=(4000, 384))).astype(np.float32)

    def run() -> None:
        with threadpool_limits(threads):
            fit_logreg(X[:3200], y[:3200], X[3200:], y[3200:], metric="accuracy", seed=0)

    return run


def tfidf_workload():
    """The classical rung's text fit on 300 seeded texts of 40 words (a vocabulary of 3,000 made-up
    words drawn by a power law, as words are, and 2 classes): TF-IDF with the rung's settings, then
    ``fit_logreg`` with its choice of C on the sparse rows, on one BLAS thread as the rung's is."""
    from threadpoolctl import threadpool_limits

    from ..rungs.classical import tfidf_vectoriser
    from ..rungs.linear import fit_logreg

    rng = np.random.default_rng(0)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocabulary = ["".join(rng.choice(letters, rng.integers(3, 10))) for _ in range(3000)]
    weights = 1.0 / np.arange(1, 3001)
    y = rng.integers(0, 2, 300)
    words = np.empty((300, 40), np.int64)
    for label in (0, 1):
        p = weights * np.where(np.arange(3000) % 2 == label, 1.5, 1.0)  # each class prefers half the words
        words[y == label] = rng.choice(3000, (int((y == label).sum()), 40), p=p / p.sum())
    texts = [" ".join(vocabulary[i] for i in row) for row in words]

    def run() -> None:
        with threadpool_limits(1):
            X = tfidf_vectoriser(2).fit_transform(texts)
            fit_logreg(X, y, X[:0], y[:0], metric="accuracy", seed=0, scale=False)

    return run


def small_workload(modality: str):
    """Training steps (forward, backward, AdamW) of the small model on one fixed batch of 32."""
    import torch

    from ..rungs.small_models import TEXT_DIM, BagOfNgrams, SmallCNN
    from ..training.loop import adamw

    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    y = torch.randint(0, 4, (32,), generator=gen)
    if modality == "text":  # 32 texts of 120 n-grams each, from a vocabulary of 20,000
        model: torch.nn.Module = BagOfNgrams(20_000, TEXT_DIM, 4)
        ids = torch.randint(0, 20_000, (32 * 120,), generator=gen)
        inputs: tuple[torch.Tensor, ...] = (ids, torch.arange(0, 32 * 120, 120), torch.full((32 * 120,), 1 / 120))
        steps = 40
    else:  # 32 colour images of 32 x 32 px, the CNN at width 32
        model = SmallCNN(3, 32, 4)
        inputs = (torch.randn(32, 3, 32, 32, generator=gen),)
        steps = 4
    opt = adamw([{"params": list(model.parameters()), "lr": 1e-3}], weight_decay=0.01)
    model.train()

    def run() -> None:
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(*inputs), y).backward()
            opt.step()

    run()  # optimizer state allocated, kernels chosen: not timed
    return run


def small_epoch(
    modality: str, items: list, n_train: int, n_classes: int, batch_size: int, clip_seconds: float, flip: bool
) -> dict:
    """The small CNN ``scratch_small`` would train on ``n_train`` items like ``items`` (images or
    audio clips of the training split), timed on up to ``SMALL_ITEMS`` of them: seconds per item
    to decode and encode one, per training item and epoch (the training steps on the rows that
    train, a forward pass on the rows that decide when to stop), and per item predicted."""
    import torch

    from ..rungs.small import MIN_BATCH, STOP_FRACTION
    from ..rungs.small_models import AudioPrep, ImagePrep, SmallCNN, cnn_width
    from ..training.loop import adamw

    sample = [items[i] for i in np.linspace(0, len(items) - 1, min(SMALL_ITEMS, len(items))).astype(int)]
    start = time.perf_counter()
    prep, X = AudioPrep.learn(sample, clip_seconds) if modality == "audio" else ImagePrep.learn(sample, flip)
    reads = 1 if modality == "audio" else 2  # ImagePrep.learn reads each image twice: its size, then its pixels
    encode = (time.perf_counter() - start) / (reads * len(sample))
    width, classes = cnn_width(n_train), max(n_classes, 2)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = SmallCNN(X.shape[1], width, classes)
    opt = adamw([{"params": list(model.parameters()), "lr": 1e-3}], weight_decay=0.01)
    batch = max(batch_size, MIN_BATCH)
    rows = (np.arange(batch) % len(X)).tolist()
    y = torch.arange(batch) % classes

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(**prep.batch(X, rows, True, gen)), y).backward()
        opt.step()

    model.train()
    step()  # optimizer state allocated, kernels chosen: not timed
    train = _median_seconds(step, SMALL_STEPS) / batch
    model.eval()
    with torch.no_grad():
        forward = _median_seconds(lambda: model(**prep.batch(X, rows, False)), SMALL_STEPS) / batch
    return {
        "encode_per_item": encode,  # one read of an item; the training items are read ``training_reads`` times
        "training_reads": reads,
        "per_item_epoch": (1 - STOP_FRACTION) * train + STOP_FRACTION * forward,
        "forward_per_item": forward,
        "input": list(X.shape[1:]),
        "width": width,
        "items": len(sample),
    }


def small_reference(modality: str) -> float:
    return REFERENCE_SECONDS["small:text" if modality == "text" else "small:cnn"]


def measure_pace(
    modality: str,
    items: list,
    clip_seconds: float = 3.0,
    *,
    small: bool = True,
    features: bool = True,
    audit_items: list | None = None,
    n_classes: int = 2,
    batch_size: int = 32,
    flip: bool = True,
) -> CheapPace:
    """Time the cheap workloads now: always the numeric ones; the small model's when ``small`` (the
    run trains it; for images and audio also the small CNN it would build for ``items``, with
    ``n_classes``, ``batch_size`` and ``flip`` as the run sets them); when ``features`` (the run
    fits ``classical``), the text fit (text) or the hand-made features of a few of ``items``, the
    user's training items (images, audio); the image audit's search on a sample of
    ``audit_items`` (all the images the audit checks), if given."""
    start = time.perf_counter()
    numeric = _factor(_median_seconds(numeric_workload(1)), REFERENCE_SECONDS["numeric"])
    dense = _factor(_median_seconds(numeric_workload(None)), REFERENCE_SECONDS["dense"])
    tfidf = 1.0
    if features and modality == "text":
        tfidf = _factor(_median_seconds(tfidf_workload(), repeats=3), REFERENCE_SECONDS["tfidf"])
    own_cnn = small and bool(items) and modality in ("image", "audio")  # timed as the user's own small CNN below
    small_factor = (
        _factor(_median_seconds(small_workload(modality)), small_reference(modality)) if small and not own_cnn else 1.0
    )
    per_item = None
    if features and items and modality in ("image", "audio"):
        from ..rungs.classical import audio_features, image_features

        def compute(xs: list) -> None:
            image_features(xs) if modality == "image" else audio_features(xs, clip_seconds)

        sample = [items[i] for i in np.linspace(0, len(items) - 1, min(FEATURE_ITEMS, len(items))).astype(int)]
        compute(sample[:4])  # the decoders' first calls (imports, caches): not timed
        per_item = _median_seconds(lambda: compute(sample), repeats=1) / len(sample)
    search = None
    if audit_items and modality == "image":
        from ..auditing.matching import image_search_cost

        search = image_search_cost(audit_items, AUDIT_SAMPLE_SECONDS)
    epoch = None
    if own_cnn:
        epoch = small_epoch(modality, items, len(items), n_classes, batch_size, clip_seconds, flip)
    return CheapPace(numeric, dense, tfidf, small_factor, per_item, search, epoch, seconds=time.perf_counter() - start)
