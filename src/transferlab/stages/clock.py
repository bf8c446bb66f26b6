"""While the run runs: each planned stage timed, "stage k of n, elapsed, remaining" from the plan
corrected by what the finished stages took, and, with ``--time-limit``, the rungs fitted into
what is left of it once the ranking has chosen."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Iterator

from ..config import RunSpec
from ..formats import fmt_seconds
from ..progress import Progress
from .costplan import RunPlan, StagePlan, fit_plan_to_limit
from .plan import RungJob
from .timelimit import RungDeadlines, cheap_first, trains_once


class RunClock:
    """Times each planned stage as it runs and shows "stage k of n, elapsed, remaining": the plan's
    remaining seconds, scaled by how the finished stages compared with their prediction."""

    def __init__(self, plan: RunPlan, progress: Progress, began: float | None = None):
        self.plan, self.progress = plan, progress
        self.actual: dict[str, float] = {}
        self.started = time.perf_counter()
        self.began = time.time() if began is None else began  # wall clock, for the time limit
        self.limiter: Any = None  # with --time-limit: the costly rungs' deadlines (``timelimit.RungDeadlines``)

    def left(self, spec: RunSpec) -> float:
        """Seconds of the time limit still to spend (negative once it has passed)."""
        return (spec.limit_seconds() or 0.0) - (time.time() - self.began)

    def remaining(self, after: set[str]) -> float:
        """Predicted seconds of the stages not in ``after``, corrected by the finished ones' ratio."""
        done = [s for s in self.plan.stages if s.name in self.actual]
        predicted = sum(s.seconds for s in done)
        ratio = sum(self.actual[s.name] for s in done) / predicted if predicted > 1.0 else 1.0
        left = sum(s.seconds for s in self.plan.stages if s.name not in after)
        return left * min(max(ratio, 0.25), 4.0)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        names = [s.name for s in self.plan.stages]
        k = names.index(name) + 1 if name in names else None
        if k is not None:
            elapsed = time.perf_counter() - self.started
            left = self.remaining(set(self.actual))
            self.progress.log(
                f"[dim]stage {k} of {len(names)}: {name} - elapsed {fmt_seconds(elapsed)}, "
                f"remaining ~{fmt_seconds(left)}[/]"
            )
            self.progress.prefix = f"[{k}/{len(names)}] "
        start = time.perf_counter()
        try:
            yield
        finally:
            self.progress.prefix = ""
        self.actual[name] = self.actual.get(name, 0.0) + time.perf_counter() - start

    def record(self) -> dict:
        return self.plan.to_dict(self.actual)


def embed_planned(plan: RunPlan, features: dict, clock: RunClock) -> None:
    """Embed the splits each embed stage of the plan names, as its own timed stage (the stores
    would otherwise embed them lazily inside the ranking and the first rung that reads them)."""
    for s in plan.stages:
        if s.kind == "embed" and s.name.split(":", 1)[1] in features:
            with clock.stage(s.name):
                store = features[s.name.split(":", 1)[1]]
                for split in s.splits:
                    store(split)


def limit_rungs(clock, jobs: list[RungJob], task, spec: RunSpec, ready, progress, final: bool = True) -> list[RungJob]:
    """The jobs to run within what is left of the limit, cheap ones first, with the costly ones'
    cuts; the plan's stages of these rungs and the clock's deadlines to match (the stages of the
    rungs already run are kept). A rung ``ready(job)`` says is finished (in the rung cache, or read back by
    --resume) costs nothing. ``final``: the cuts the
    rungs will run with (after the cheap rungs ran), each rung left out named in the task's
    notes; otherwise a preview, for the plan the run shows before the cheap rungs."""
    assert spec.time_limit is not None
    jobs = cheap_first(jobs)
    done = [s for s in clock.plan.stages if s.kind == "rung" and s.name in clock.actual]
    reused = {j.name for j in jobs if ready(j)}
    left = clock.left(spec)
    todo = [j for j in jobs if j.name not in reused]
    kept = {j.name: j for j in fit_plan_to_limit(clock.plan, todo, task, spec, left, frozenset(clock.actual))}
    run = [kept.get(j.name, j) for j in jobs if j.name in reused or j.name in kept]
    planned = {s.name: s for s in clock.plan.stages if s.kind == "rung"}
    clock.plan.stages = (
        [s for s in clock.plan.stages if s.kind != "rung"]
        + done
        + [planned.get(j.name) or StagePlan(j.name, 0.0, 0, "already fitted") for j in run]
    )
    fitted = clock.plan.limit
    what = (
        "the trained rungs are cut to fit: " + "; ".join(fitted.cuts)
        if fitted.cuts
        else "no rung that trains a backbone fits"
        if fitted.skipped
        else "the rest fits without cuts"
    )
    if final:
        for name, why in fitted.skipped.items():
            task.notes.append(f"{name} was not run: {why}.")
            progress.log(f"[yellow]{name} is not run: {why}[/]")
        progress.log(
            f"time limit {fmt_seconds(spec.limit_seconds() or 0.0)}, {fmt_seconds(max(left, 0.0))} left: {what}"
        )
    else:
        progress.log(
            f"time limit {fmt_seconds(spec.limit_seconds() or 0.0)}, {fmt_seconds(max(left, 0.0))} left: as planned now, "
            f"{what} (decided once the cheap rungs have run)"
        )
    cheap = {  # the cheap rungs still to run, planned (the small control: the most it may take)
        s.name: s.seconds if s.upto is None else s.upto
        for s in clock.plan.stages
        if s.kind == "rung" and s.name not in fitted.planned and s.name not in clock.actual
    }
    clock.limiter = RungDeadlines(
        spec.limit_seconds() or 0.0, clock.began, fitted, {s.name: s.tail for s in clock.plan.stages}, spec, cheap
    )
    return run


RETIME_ABOVE = 0.5  # the trained rungs are re-timed when planned to use more than this share of the time left...
RETIME_SHARE = 0.1  # ...and re-timing costs less than this share of it


def retime(clock: RunClock, jobs: list[RungJob], task, spec: RunSpec, ready, progress) -> dict[str, float]:
    """Under the time limit, just before the costly rungs' cuts are decided: their backbones'
    training steps timed again, in the warm process and under the machine's load of now. The probe
    ran first thing, slow (MiniLM's steps 1.4x) and in other conditions, and scaling its steps by the
    embedding's speed misjudged them 1.5-1.8x on the full fine-food reviews (bench/time_limit.py).
    Skipped when the trained rungs fit with room to spare or re-timing would cost too much of what
    is left. Returns re-timed / planned step, by backbone (also in ``plan.retimed``).

    When the trained rungs will re-plan their steps as they run (one seed, no learning-curve refits:
    ``training.loop.Refill``), a re-timing slower than the plan is recorded but not used: an
    optimistic plan costs epochs the rungs then give up, a pessimistic one cuts what re-planning
    cannot give back (the screen of rates, the training share). In image runs 9-11 of
    bench/time_limit.py the re-timing came out 1.27-1.49x the plan's step, and the cuts it made
    left full and scratch to train 1.3-1.7x the planned steps in their share (part of it time an
    early-stopped finetune left)."""
    import dataclasses

    from ..training.probe import STRATA, TRAIN_STEPS, retime_training

    todo = [j for j in jobs if j.backbone is not None and not ready(j)]
    refills = trains_once(spec)
    names = {j.name for j in todo}
    planned = sum(s.seconds for s in clock.plan.stages if s.name in names)
    left = clock.left(spec)
    out: dict[str, float] = {}
    for backbone in {j.backbone.name: j.backbone for j in todo}.values():
        t = clock.plan.probes.get(backbone.name)
        if t is None or t.train_step is None:
            continue
        cost = (t.train_first_step or t.train_step) + (max(TRAIN_STEPS[0], STRATA) + 1) * t.train_step
        if planned < RETIME_ABOVE * left or cost > RETIME_SHARE * left:
            continue
        new = retime_training(backbone, task.part("train")[0], batch_size=spec.batch_size, seed=spec.seed)
        if not (refills and new.train_step > t.train_step):  # re-planning rungs: the lower estimate
            clock.plan.probes[backbone.name] = dataclasses.replace(
                t, train_step=new.train_step, train_first_step=new.train_first_step, train_forward=new.train_forward
            )
        out[backbone.name] = round(new.train_step / t.train_step, 3)
        progress.log(
            f"[dim]{backbone.name}: a training step re-timed at {new.train_step:.2f} s "
            f"(planned {t.train_step:.2f} s; {new.probe_seconds:.1f} s to measure)[/]"
        )
    clock.plan.retimed.update(out)
    return out


def mark_reused(plan: RunPlan, jobs: list[RungJob], ready) -> None:
    """The rung stages already fitted (``ready(job)``: the rung cache holds them, or --resume reads
    them back) cost nothing: their prediction becomes 0, so the
    remaining time a re-run shows is what it will really spend."""
    reused = {j.name for j in jobs if ready(j)}
    for s in plan.stages:
        if s.kind == "rung" and s.name in reused:
            s.seconds, s.peak_bytes, s.tail, s.how = 0.0, 0, 0.0, "already fitted (rung cache or --resume)"


# The embedding can run far faster than the probe's inference batch (0.26-0.85 of it in six full-size
# runs: the probe's batch pays its preprocessing in line, and the first calls of a process run slow),
# while the training steps really ran at 0.68-0.93 of the probe's (bench/time_limit.py, 2026-12-02):
# a faster embedding speeds the planned training steps up by this factor at most.
TRAIN_FASTER_AT_MOST = 0.7


def recalibrate(plan: RunPlan, features: dict) -> dict[str, float]:
    """The backbones' speeds from the embedding this run just did, in place of the probe's few
    batches: the probe may have caught the machine busier (or idler) than the run found it. Each
    backbone's timings scale by measured / probed seconds per item (clamped to 0.05-20x; its training
    steps by no less than ``TRAIN_FASTER_AT_MOST``); the rung stages must be planned again from
    them. Returns the factors, by backbone."""
    import dataclasses

    factors = {}
    for name, timing in list(plan.probes.items()):
        store = features.get(name)
        if store is None or store.from_cache or store.items < 64 or store.seconds <= 0:
            continue  # read from the cache, or too few items to time
        factor = min(max(store.seconds / store.items / timing.forward_per_item, 0.05), 20.0)
        train = max(factor, TRAIN_FASTER_AT_MOST)
        scaled = {
            k: getattr(timing, k) * train
            for k in ("train_step", "train_forward", "train_first_step")
            if getattr(timing, k) is not None
        }
        plan.probes[name] = dataclasses.replace(timing, forward_per_item=timing.forward_per_item * factor, **scaled)
        factors[name] = round(factor, 3)
    plan.recalibrated.update(factors)
    return factors
