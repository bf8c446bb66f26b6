"""The one training loop every trainable rung uses.

``fit`` trains ``model`` on (items, labels) batches made by ``make_batch``, with AdamW over
parameter groups that each carry their own learning rate, a short linear warm-up that restarts
for a group when it is unfrozen, the full rate, and a cosine decay to a floor over the tail of
the planned steps (``schedule.lr_scale``), gradient clipping, a validation pass per epoch (a
fractional ``epochs`` trains that share of the last epoch's batches, then validates),
early stopping on the validation metric and the best weights restored at the end. Which groups
train in which epoch is the caller's ``on_epoch`` hook, so head-only, gradual unfreezing, full
fine-tuning and from-scratch all share this code. ``fit_epochs`` is the same fit one epoch at a
time, so a caller can compare several runs after their first epoch and finish only the best.

Training runs on ``devices.device()`` (the GPU when there is one). Under a multi-process launch
(``accelerate launch`` / ``torchrun``) each global batch is split across the processes and
their gradients averaged before every step; see ``transferlab.devices``.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ..devices import average_buffers, average_gradients, from_main, processes, reduce_sum, shard, to_device
from ..evaluation.metrics import score
from . import deadline
from .batchnorm import reestimate_on_sample
from .schedule import ParamGroup, lr_scale


@dataclass
class LoopConfig:
    epochs: float = 10  # a fraction trains that share of the last epoch's batches (transformers' num_train_epochs)
    batch_size: int = 16
    patience: int = 3  # epochs without validation improvement before stopping
    warmup_fraction: float = 0.1  # of one epoch's steps, per newly unfrozen group
    decay_fraction: float = 0.2  # the last share of the planned steps, decayed by a cosine ...
    decay_floor: float = 0.1  # ... to this share of each group's rate
    # BatchNorm running statistics: frozen in every layer (True) or only in layers whose parameters
    # are frozen (False); their affine parameters train whenever their group does
    freeze_batchnorm_stats: bool = False
    # before each validation pass, the statistics of the BatchNorm layers that train are recomputed
    # on this many training items (0: the running averages are kept; see training/batchnorm.py)
    batchnorm_items: int = 0
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    metric: str = "accuracy"  # chosen on validation
    seed: int = 0
    eval_batch_size: int = 64
    # under a deadline: the most epochs the run may stretch to while its steps are re-planned from
    # their measured speed to end at the deadline (``Refill``; None: ``epochs`` as given)
    fill_epochs: float | None = None


@dataclass
class FitResult:
    curves: dict = field(default_factory=dict)
    best_epoch: int = 0
    best_val: float = -math.inf
    seconds: float = 0.0
    stopped_early: bool = False
    stopped_at_limit: bool = False  # the run's time limit ended training (``deadline``)
    batchnorm_layers: int = 0  # BatchNorm layers whose statistics were re-estimated before validation
    planned_steps: int = 0  # training steps as ``epochs`` planned them
    replanned_steps: int = 0  # the steps ``fill_epochs`` re-planned them to (else ``planned_steps``)
    steps: int = 0  # training steps taken (fewer when stopped early or at the deadline)


MakeBatch = Callable[[Sequence, bool], dict]  # (items, train) -> encoder inputs


def predict_logits(
    model: nn.Module, make_batch: MakeBatch, items: Sequence, batch_size: int = 64, order: Sequence[int] | None = None
) -> np.ndarray:
    """(N, C) logits in eval mode; ``order`` lets text be batched by length."""
    model.eval()
    order = list(order) if order is not None else list(range(len(items)))
    out: np.ndarray | None = None
    dev = next(model.parameters()).device
    with torch.inference_mode():
        for lo in range(0, len(order), batch_size):
            idx = order[lo : lo + batch_size]
            logits = model(**to_device(make_batch([items[i] for i in idx], False), dev)).float().cpu().numpy()
            if out is None:
                out = np.empty((len(items), logits.shape[1]), dtype=np.float32)
            out[idx] = logits
    return out


def _freeze_frozen_batchnorm(model: nn.Module, every_layer: bool = False) -> None:
    """A frozen layer must not drift: BatchNorm with no trainable parameters keeps its statistics
    (with ``every_layer``, every BatchNorm keeps them: see LoopConfig.freeze_batchnorm_stats)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and (
            every_layer or not any(p.requires_grad for p in m.parameters())
        ):
            m.eval()


def set_trainable(groups: list[ParamGroup], trainable: set[int]) -> None:
    for i, g in enumerate(groups):
        for p in g.params:
            p.requires_grad_(i in trainable)


def adamw(param_groups: list[dict], weight_decay: float) -> torch.optim.AdamW:
    """AdamW with its fused kernel where the parameters' device has one (CPU and CUDA in current
    torch), as ``transformers.Trainer`` uses by default: the same update, one kernel per parameter
    instead of a dozen elementwise ops. On MiniLM's 22.7M parameters, one CPU thread, a step of
    the optimizer takes 19 ms fused against 119 ms (bench/RESULTS.md, fine-tuning)."""
    if all(p.is_floating_point() for g in param_groups for p in g["params"]):  # not complex: no kernel
        try:
            return torch.optim.AdamW(param_groups, weight_decay=weight_decay, fused=True)
        except RuntimeError:  # a device without the kernel (or an older torch): the per-parameter loop
            pass
    return torch.optim.AdamW(param_groups, weight_decay=weight_decay)


def batch_starts(n: int, batch_size: int, processes: int = 1) -> list[int]:
    """Where each training batch starts. A last batch too small to give every process two
    examples joins the one before: BatchNorm cannot train on a single example."""
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] < 2 * processes:
        starts.pop()
    return starts


class Refill:
    """The training steps re-planned as they run, so the run ends at its deadline: at each tenth of
    an epoch, from the mean time of the last ``WINDOW`` steps in the current phase (a partly frozen
    epoch's steps are cheaper than the next one's) and of a validation pass, as many steps as fit
    before the deadline, at most ``fill_epochs`` worth and at least one epoch. Once the learning
    rate's decay has begun the count may only shrink, so the decay ends before the deadline.

    Until the first validation pass is timed, a pass is reckoned from the steps: its items (and
    BatchNorm's re-estimation sample) at ``FORWARD_SHARE`` of a training step's time per item. So
    a rung planned at one epoch, as a tight limit leaves many, re-plans in its first epoch too
    (waiting for the pass, it never re-planned: two such rungs ended 11 s early each of their 42 s)."""

    MIN_STEPS, WINDOW = 5, 100  # steps timed in this phase before they are trusted; the most averaged
    # a forward pass without gradients, per item, against a training step's (forward + backward +
    # update): 0.32 (MobileNetV2) to 0.6 (MiniLM) as the probes time them; the pass is timed after
    # the first epoch and replaces this
    FORWARD_SHARE = 0.6
    MARGIN = 0.98  # share of the time left planned for: the steps' speed still drifts ...
    SLACK_STEPS, SLACK_SECONDS = 3, 0.25  # ... and this many steps' time and seconds, for a pause near the end

    def __init__(self, steps_per_epoch: int, total_steps: int, cfg: LoopConfig, validation_items: int = 0):
        self.per_epoch, self.cfg = max(steps_per_epoch, 1), cfg
        self.validation_items = validation_items  # items a validation pass predicts (and re-estimates on)
        self.most = max(total_steps, round(self.per_epoch * (cfg.fill_epochs or 0)))
        self.every = max(1, self.per_epoch // 10)
        self.times: list[float] = []  # the steps of the current phase
        self.phase: str | None = None
        self.validation: float | None = None

    def epoch_began(self, phase: str) -> None:
        """A new phase (finetune opening more layer groups) makes different steps: time them anew."""
        if phase != self.phase:
            self.phase, self.times = phase, []

    def step_took(self, seconds: float) -> None:
        self.times = self.times[-(self.WINDOW - 1) :] + [seconds]

    def validation_took(self, seconds: float) -> None:
        self.validation = seconds if self.validation is None else max(self.validation, seconds)

    def due(self, batch: int) -> bool:
        return len(self.times) >= self.MIN_STEPS and batch % self.every == 0

    def validation_seconds(self, per_step: float) -> float:
        """The validation pass as timed, or before it is, reckoned from the training steps."""
        if self.validation is not None:
            return self.validation
        return per_step / max(self.cfg.batch_size, 1) * self.FORWARD_SHARE * self.validation_items

    def total(self, step: int, epoch: int, total: int) -> int:
        """The new number of steps, planned at ``step`` (in ``epoch``, 1-based; when ``due``), or ``total`` unchanged."""
        left = deadline.seconds_left()
        if left is None:
            return total
        per_step = sum(self.times) / len(self.times)
        budget, extra = left * self.MARGIN - self.SLACK_STEPS * per_step - self.SLACK_SECONDS, 0
        validation = self.validation_seconds(per_step)
        for _ in range(3):  # the validation passes still to come depend on where the steps end
            passes = math.ceil((step + extra) / self.per_epoch) - epoch + 1
            extra = max(int((budget - passes * validation) / per_step), 0)
        new = min(max(step + extra, self.per_epoch, step + 1), self.most)
        if step >= total * (1 - self.cfg.decay_fraction) and new > total:
            return total  # the decay has begun: it may end sooner (further down its curve), not later
        return new if abs(new - total) >= max(2, 0.01 * total) else total


def _partial(at_limit: bool, steps: int, steps_per_epoch: int) -> str:
    if at_limit:
        return " (stopped at the time limit)"
    return f" ({steps} of {steps_per_epoch} batches)" if steps < steps_per_epoch else ""


def fit(
    model: nn.Module,
    make_batch: MakeBatch,
    train: tuple[Sequence, np.ndarray],
    val: tuple[Sequence, np.ndarray],
    groups: list[ParamGroup],
    cfg: LoopConfig,
    **kwargs,
) -> FitResult:
    """Train, validate each epoch, stop early, restore the best epoch's weights (``fit_epochs`` to the end)."""
    result = FitResult()
    for result in fit_epochs(model, make_batch, train, val, groups, cfg, **kwargs):
        pass
    return result


def fit_epochs(
    model: nn.Module,
    make_batch: MakeBatch,
    train: tuple[Sequence, np.ndarray],
    val: tuple[Sequence, np.ndarray],
    groups: list[ParamGroup],
    cfg: LoopConfig,
    *,
    on_epoch: Callable[[int], str] | None = None,
    val_order: Sequence[int] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    start_score: float | None = None,
) -> Iterator[FitResult]:
    """``fit``, yielding its (growing) result after every epoch; the best weights are restored
    when the generator is run to its end, not when it is closed early.

    ``start_score`` is the validation score of the weights as given (epoch 0); when no epoch
    beats it, those weights are what is restored.
    """
    train_items, y_train = train
    val_items, y_val = val
    procs = processes()
    dev = procs.device
    model.to(dev)
    n = len(train_items)
    starts = batch_starts(n, cfg.batch_size, procs.count)
    steps_per_epoch = len(starts)
    total_steps = max(1, round(steps_per_epoch * cfg.epochs))
    n_epochs = math.ceil(total_steps / max(steps_per_epoch, 1))  # the last one may stop at total_steps
    warmup = max(1, int(cfg.warmup_fraction * steps_per_epoch))
    optimizer = adamw([{"params": g.params, "lr": g.lr, "base_lr": g.lr} for g in groups], cfg.weight_decay)
    started_at: dict[int, int] = {}  # group -> step at which it was first trainable
    rng = np.random.default_rng(cfg.seed)
    loss_fn = nn.CrossEntropyLoss()
    curves: dict[str, list] = {
        k: [] for k in ("epoch", "phase", "train_loss", "train_metric", "val_loss", "val_metric")
    }
    result = FitResult(curves=curves)
    if start_score is not None:
        result.best_val = start_score
    best_state = copy.deepcopy(model.state_dict())
    stale, step, start = 0, 0, time.perf_counter()
    # with a deadline and ``fill_epochs``: the number of steps re-planned from their measured speed
    fill = None
    if cfg.fill_epochs and deadline.current() is not None:
        has_batchnorm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
        fill = Refill(steps_per_epoch, total_steps, cfg, len(val_items) + (cfg.batchnorm_items if has_batchnorm else 0))
    result.planned_steps = result.replanned_steps = total_steps

    epoch = 0
    while epoch < n_epochs:
        epoch += 1
        phase = on_epoch(epoch) if on_epoch else "train"
        if fill is not None:
            fill.epoch_began(phase)
        model.train()
        _freeze_frozen_batchnorm(model, cfg.freeze_batchnorm_stats)
        loss_sum, correct, seen = 0.0, 0, 0
        perm = rng.permutation(n)  # the same on every process: each takes its share of each batch
        before = step
        for b, (lo, hi) in enumerate(zip(starts, starts[1:] + [n])):
            if fill is not None and fill.due(b):
                total_steps = int(from_main(float(fill.total(step, epoch, total_steps)), procs))
                n_epochs = math.ceil(total_steps / max(steps_per_epoch, 1))
            if step >= total_steps:  # a fractional last epoch: its share of the batches, then validation
                break
            began_step = time.perf_counter()
            idx = perm[lo:hi]
            local = shard(idx, procs)
            optimizer.zero_grad(set_to_none=True)
            if len(local):
                targets = torch.as_tensor(y_train[local], device=dev)
                logits = model(**to_device(make_batch([train_items[i] for i in local], True), dev))  # (B, C)
                loss = loss_fn(logits, targets)
                # weighted so the average over processes is the mean over the whole batch
                (loss * (len(local) * procs.count / len(idx)) if procs.distributed else loss).backward()
                loss_sum += loss.item() * len(local)
                correct += int((logits.argmax(1) == targets).sum())
                seen += len(local)
            trainable = [p for g in groups for p in g.params if p.requires_grad]
            average_gradients(trainable, procs)
            torch.nn.utils.clip_grad_norm_(trainable, cfg.grad_clip)
            for gi, pg in enumerate(optimizer.param_groups):
                if any(p.requires_grad for p in groups[gi].params):
                    began = started_at.setdefault(gi, step)
                    pg["lr"] = pg["base_lr"] * lr_scale(
                        step, total_steps, began, warmup, cfg.decay_fraction, cfg.decay_floor
                    )
            optimizer.step()
            step += 1
            if fill is not None:
                fill.step_took(time.perf_counter() - began_step)
            if progress:
                progress(f"epoch {epoch}/{n_epochs} {phase}", b + 1, min(steps_per_epoch, total_steps - before))
            # decided on the first process, so all stop in step (and no broadcast without a limit)
            if deadline.current() is not None and from_main(float(deadline.passed()), procs):
                result.stopped_at_limit = True
                break

        if result.stopped_at_limit and curves["epoch"]:
            break  # a part-trained epoch is not scored: the best finished epoch is kept (a first one is scored)
        validating = time.perf_counter()
        average_buffers(model, procs)  # BatchNorm statistics saw only this process's shares
        # every process, on the same items: the statistics of the weights about to be evaluated
        result.batchnorm_layers = reestimate_on_sample(
            model, make_batch, train_items, cfg.batchnorm_items, cfg.seed, cfg.eval_batch_size
        )
        loss_sum, correct, seen = reduce_sum([loss_sum, correct, seen], procs)
        val_logits = predict_logits(model, make_batch, val_items, cfg.eval_batch_size, val_order)
        val_metric = from_main(score(cfg.metric, y_val, val_logits.argmax(1)), procs)
        val_loss = float(loss_fn(torch.from_numpy(val_logits), torch.as_tensor(y_val)))
        for key, value in (
            ("epoch", epoch),
            ("phase", phase + _partial(result.stopped_at_limit, step - before, steps_per_epoch)),
            ("train_loss", loss_sum / seen),
            ("train_metric", correct / seen),
            ("val_loss", val_loss),
            ("val_metric", val_metric),
        ):
            curves[key].append(value)
        if val_metric > result.best_val:
            result.best_val, result.best_epoch, stale = val_metric, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
        result.seconds = time.perf_counter() - start
        result.steps, result.replanned_steps = step, total_steps
        if fill is not None:
            fill.validation_took(time.perf_counter() - validating)
        yield result
        if result.stopped_at_limit:
            break
        if stale >= cfg.patience:
            result.stopped_early = epoch < n_epochs
            break

    model.load_state_dict(best_state)
    model.eval()
    result.seconds = time.perf_counter() - start
    curves["best_epoch"] = result.best_epoch
    curves["metric"] = cfg.metric
    yield result
