"""How fast a backbone runs on this machine and this data: a few real batches, timed.

The run plan (``transferlab.stages.costplan``) extrapolates every stage from these figures, so
they are measured on the user's own items (their real lengths or image sizes), with the batch
sizes the run will use: one inference batch of ``eval_batch_size`` items of typical length (the
extraction sorts text by length, so its batches pad to about the typical length), and, for a
backbone some rung trains, a few training steps (forward, backward, AdamW) on random batches of
``batch_size``, as the loop draws them. Memory is the rise of this process's resident memory
over the warm-up and the first (longest) training step (weights, activations, gradients,
optimizer state), sampled by a thread; nothing is timed while it samples.
"""

from __future__ import annotations

import copy
import statistics
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .loop import adamw

MIN_REPEATS, MAX_REPEATS = 1, 3  # timed repeats of a probe; more only while they stay cheap
CHEAP_SECONDS = 0.5  # a probe faster than this is repeated (its first run is the noisiest)
# steady training steps timed (same-shape batches): at least, at most, stopping after the least once
# they have taken this long. One step of MobileNetV2 at 96 px is noisy: the median of 5 was 0.13 s in
# one run and 0.17 s in the next while the loop ran at 0.146-0.149 s both times (bench/time_limit.py).
TRAIN_STEPS = (2, 20)
TRAIN_STEPS_SECONDS = 2.0


@dataclass
class BackboneTiming:
    """One backbone's measured speed; seconds are per item (inference) or per step (training)."""

    backbone: str
    forward_per_item: float  # inference, batches of eval_batch_size typical-length items
    forward_peak_bytes: int  # weights + the rise while embedding one batch
    train_step: float | None = None  # forward + backward + AdamW step, one batch of batch_size
    train_forward: float | None = None  # the forward alone of that batch (no gradient): the rest is backward
    train_peak_bytes: int | None = None  # trainable copy + gradients + optimizer state + activations
    train_first_step: float | None = None  # a fresh model's first step (optimizer state allocated, caches cold)
    train_open_ratios: dict[int, float] | None = None  # top n groups trainable -> a step's share of the full step
    probe_seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def _rss() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class _PeakRise:
    """The largest rise of resident memory above its value at entry, sampled every millisecond.

    Nothing is timed while it samples: its thread wakes a thousand times a second and takes a core
    from torch's threads: it made a MobileNetV2 training step 1.14-1.15x slower (0.180 against 0.156 s,
    0.205 against 0.180 s) and an inference batch of 64 1.02-1.17x, in two and three runs, each in
    one process alternating with and without it."""

    def __enter__(self) -> "_PeakRise":
        self.base = _rss()
        self.peak = self.base
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, _rss())
            self._done.wait(0.001)

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())

    @property
    def rise(self) -> int:
        return max(self.peak - self.base, 0)


SETTLE_CALLS, SETTLE_SECONDS = 6, 5.0  # warm-up calls at most, and the time after which it stops anyway


def _settle(fn) -> None:
    """Call ``fn`` until two calls in a row take within 15% of each other (at most ``SETTLE_CALLS``
    calls, stopping once they have taken ``SETTLE_SECONDS``)."""
    times: list[float] = []
    while len(times) < SETTLE_CALLS and sum(times) < SETTLE_SECONDS:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        if len(times) >= 2 and abs(times[-1] - times[-2]) <= 0.15 * min(times[-2:]):
            return


def _timed(fn, repeats: int = MAX_REPEATS, least: int = MIN_REPEATS) -> tuple[float, float]:
    """(the first, the median) time of ``fn()``: run ``least`` times when slow, up to ``repeats`` times when cheap."""
    times: list[float] = []
    while True:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        if len(times) >= max(least, 1) and (len(times) >= repeats or sum(times) > CHEAP_SECONDS):
            return times[0], statistics.median(times)


def typical_batch(backbone, items: list, size: int) -> list:
    """``size`` items of typical length (nearest the mean length), as a sorted extraction batch has;
    without a length (images, audio) the first ones of the sample."""
    key = getattr(backbone, "sort_key", None)
    if key is None:
        return list(items[:size])
    lengths = np.array([key(x) for x in items], dtype=float)
    nearest = np.argsort(np.abs(lengths - lengths.mean()), kind="stable")[:size]
    return [items[i] for i in sorted(nearest)]


def probe_backbone(
    backbone, items: list, *, eval_batch_size: int, batch_size: int, train: bool, seed: int = 0, open_counts=()
) -> BackboneTiming:
    """Time one inference batch (and, with ``train``, training steps) of ``backbone`` on a sample of ``items``."""
    started = time.perf_counter()
    rng, sample = _sample(items, seed)
    encoder = backbone.encoder()
    weights = sum(p.numel() * p.element_size() for p in encoder.parameters())
    batch = typical_batch(backbone, sample, min(eval_batch_size, len(sample)))

    def embed() -> None:
        encoder(**backbone.preprocess(batch))

    with torch.inference_mode():
        # warm-up at the batch's own shape until it settles: the first calls at a new shape pay lazy
        # initialisation and allocation, which an extraction pays once, not per batch (MobileNetV2 at
        # 96 px, first in a fresh process: 1.39 s, 0.68 s, then 0.27-0.30 s a batch of 64); then two
        # timed calls at least, with the memory sampler stopped (see _PeakRise)
        with _PeakRise() as memory:
            _settle(embed)
        seconds = _timed(embed, least=2)[1]
    timing = BackboneTiming(backbone.name, seconds / len(batch), weights + memory.rise)
    if train:
        _probe_training(backbone, sample, batch_size, rng, timing, open_counts)
    timing.probe_seconds = time.perf_counter() - started
    return timing


def _sample(items: list, seed: int) -> tuple[np.random.Generator, list]:
    """The generator the probe draws from, and the (at most) 256 items it times on."""
    rng = np.random.default_rng(seed)
    return rng, [items[i] for i in rng.permutation(len(items))[:256]]


def retime_training(backbone, items: list, *, batch_size: int, seed: int = 0) -> BackboneTiming:
    """The training steps of ``probe_backbone`` again, later in the run: the first heavy work of a
    process runs slow (MiniLM's steps 1.4x, measured), and the machine's load has changed since."""
    timing = BackboneTiming(backbone.name, 0.0, 0)
    rng, sample = _sample(items, seed)
    started = time.perf_counter()
    _probe_training(backbone, sample, batch_size, rng, timing)
    timing.probe_seconds = time.perf_counter() - started
    return timing


def _probe_training(
    backbone, sample: list, batch_size: int, rng: np.random.Generator, timing: BackboneTiming, open_counts=()
) -> None:
    """Training steps as the loop takes them: random batches, augmentation on, the loop's AdamW over every weight.

    The first step, at the batch's full shape, is timed apart (``train_first_step``: optimizer
    state allocated, kernels chosen for the shape; 4-5x a steady step of MobileNetV2). Then the
    steady steps (``steady_batches``): for text, batches padded to the quantiles of the padded
    length the loop's random batches have, and their mean (a step grows faster than its length:
    MiniLM 0.6 s at 64 tokens, 4.6 s at 256, and the median random batch of the fine-food
    reviews pads to the 256 cap where the mean pads to 232, so the median step was 1.12x the
    mean); otherwise the mean of 2-20 random batches, as many as fit in 2 s. With ``open_counts`` (finetune's gradual
    unfreezing), one step with only the top n layer groups trainable, as a share of the full step
    on the same batch (``train_open_ratios``)."""
    with _PeakRise() as memory:
        model = copy.deepcopy(backbone.encoder()).train()
        for p in model.parameters():
            p.requires_grad_(True)
        head = nn.Linear(backbone.feature_dim or 1, 2)
        optimizer = adamw([{"params": list(model.parameters()) + list(head.parameters()), "lr": 1e-6}], 0.01)
        targets = torch.zeros(batch_size, dtype=torch.long)

        def step(rows: list) -> float:
            start = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            logits = head(model(**backbone.preprocess(rows, train=True)))
            nn.functional.cross_entropy(logits, targets[: len(rows)]).backward()
            optimizer.step()
            return time.perf_counter() - start

        first_rows, batches, stratified = steady_batches(backbone, sample, batch_size, rng)
        first = step(first_rows)  # the longest batch (text): the peak of memory a step reaches
    timing.train_peak_bytes = memory.rise
    steady: list[float] = []
    for rows in batches:
        steady.append(step(rows))
        if not stratified and len(steady) >= TRAIN_STEPS[0] and sum(steady) > TRAIN_STEPS_SECONDS:
            break
    timing.train_step = statistics.fmean(steady)  # the loop pays the mean, slow steps included
    timing.train_first_step = max(first, timing.train_step)
    middle = len(steady) // 2  # a typical batch: the median length stratum, or any random batch
    if open_counts:
        full = steady[middle] if stratified else timing.train_step  # same-shape batches: their mean
        timing.train_open_ratios = _open_ratios(backbone, model, step, batches[middle], full, open_counts)

    def forward() -> None:
        with torch.no_grad():
            head(model(**backbone.preprocess(batches[middle], train=True)))

    # the typical batch's forward, scaled as its step is to the mean step
    scale = timing.train_step / steady[middle] if stratified else 1.0
    timing.train_forward = min(_timed(forward)[1] * scale, timing.train_step)


STRATA = 3  # text: steady steps at the middles of this many quantile bands of the loop's padded length


def steady_batches(backbone, sample: list, batch_size: int, rng: np.random.Generator) -> tuple[list, list[list], bool]:
    """(the first step's batch, the steady steps' batches, whether they are length strata). Items
    with a length (text) give ``STRATA`` batches, each a random batch whose longest item is nearest
    the middle of a quantile band of the longest-item length of the loop's random batches (simulated
    on the sample's token lengths); the first batch is the longest. Others: random batches."""
    lengths = token_lengths(backbone, sample)
    if lengths is None or len(set(lengths.tolist())) == 1:
        rows = [[sample[i] for i in rng.permutation(len(sample))[:batch_size]] for _ in range(TRAIN_STEPS[1] + 1)]
        return rows[0], rows[1:], False
    pool = [rng.permutation(len(sample))[:batch_size] for _ in range(400)]
    longest = np.array([lengths[idx].max() for idx in pool])
    targets = np.quantile(longest, (np.arange(STRATA) + 0.5) / STRATA)
    chosen = [pool[int(np.argmin(np.abs(longest - t) + rng.random(len(pool)) * 1e-3))] for t in targets]
    first = pool[int(np.argmax(longest))]
    return [sample[i] for i in first], [[sample[i] for i in idx] for idx in chosen], True


def token_lengths(backbone, items: list) -> np.ndarray | None:
    """Each item's length as the backbone pads it (tokens, after truncation), or None where items
    have no length (images) or the inputs carry no attention mask."""
    if getattr(backbone, "sort_key", None) is None or not items:
        return None
    mask = backbone.preprocess(list(items)).get("attention_mask")
    return None if mask is None else mask.sum(1).numpy()


def _open_ratios(backbone, model: nn.Module, step, rows: list, full: float, open_counts) -> dict[int, float]:
    """Seconds of a step with only the top n layer groups trainable (the rest frozen: no gradient,
    no optimizer update, no backward below them) over the full step on the same batch: finetune's
    gradual unfreezing. Backward costs are far from equal per group (MobileNetV2's high-resolution
    stem takes about half its backward, MiniLM's word embeddings a quarter), so counting groups overstated
    its partly frozen steps by up to 1.5x."""
    groups = backbone.layer_groups(model)
    k = len(groups)
    counts = sorted({int(n) for n in open_counts if 0 <= n < k}, reverse=True)
    ratios: dict[int, list[float]] = {n: [] for n in counts}
    started = time.perf_counter()
    for repeat in range(MAX_REPEATS):  # more rounds only while cheap: one step is noisy (+-15%)
        if repeat:
            full = step(rows)
        for n in counts:
            for i, params in enumerate(groups):
                for p in params:
                    p.requires_grad_(i >= k - n)
            ratios[n].append(step(rows) / full)
        for p in model.parameters():
            p.requires_grad_(True)
        if time.perf_counter() - started > CHEAP_SECONDS:
            break
    return {n: round(min(statistics.median(r), 1.0), 4) for n, r in ratios.items()}
