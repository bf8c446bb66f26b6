"""A run inside ``--time-limit``: what the costly rungs give up, in which order, and when each stops.

The cheap rungs (majority, classical, frozen features, zero-shot, the small from-scratch
control) always run, first: they are the baselines and controls every verdict needs, and cost
seconds to minutes. The rungs that train a network on a backbone (``finetune``, ``full``,
``lora``, ``scratch``) share what the limit leaves. When the plan says they do not fit,
``fit_to_limit`` cuts, for all of them at once (so they stay comparable with each other), one
step at a time, until the plan fits:

1. their learning-curve refits (``learning_curve_trained``): extra training runs, and the cheap
   rungs' learning curves still answer "how much data do I need";
2. their extra seeds (``train_seeds`` to 1): the interval then covers the test sample only;
3. their scores on the out-of-distribution sets (``ood_trained``): predicting the corrupted
   copies costs as much as predicting the test split again, per set; the cheap rungs keep theirs;
4. epochs, down to 3 (early stopping often ends a run about there anyway);
5. the learning-rate screen (``lr_factors`` to [1]): the recipe's own rate only, and a
   forgetting verdict then says one rate was tried;
6. a stratified training subsample (``trained_fraction`` 0.5, then 0.25, then 0.1): validation
   and test stay whole, and a cheap rung's learning curve estimates what it costs;
7. epochs down to 2, then 1;
8. rungs, costliest first, each skipped with its reason.

The steps that made the plan fit may cut more than it needs, so the cuts are then given back,
the last first, as far as the plan still fits: epochs one at a time, the training share to the
percent, any other cut (the scores out of distribution, the screen, the seeds, the refits) whole.
Last, while epochs are still cut, a share of one more epoch (to the tenth: the last epoch trains
that share of its batches) fills what whole epochs leave.

The cuts are decided once the cheap rungs have run, with the time really left then (the plan
shown at the start already makes them, from its predictions).

The sequence length and the image size are not cut: they change what every rung and the
ranking see, so cutting them for the costly rungs alone would compare rungs on different
inputs; the plan shows their cost, and ``--max-length`` / ``--image-size`` set them for all.

While the rungs run, ``RungDeadlines`` gives each costly rung its share of the time left, in
proportion to its planned cost, so a rung that runs long cannot eat its successors' time; the
training loop stops at the deadline keeping the best epoch (``training.deadline``). A rung that
trains once (one seed, no learning-curve refits) re-plans its steps as it measures them
(``training.loop.Refill``): a training step's speed drifts 10% and more over minutes on a shared
machine, more than the plan's probe can foresee, so a fixed number of steps ended runs at
0.78-0.91 of their limit or stopped them part-way. It trains as many steps as fit in its share,
at most the epochs asked for before any cut, and its learning-rate decay ends before the deadline. The
time a rung leaves (one stopped early) goes to the rungs after it, in proportion to their plan.

A cheap rung that trains a network (``scratch_small``, to early stopping) has a deadline too: its
share of the time left, in proportion to the most it may take (all ``small_epochs``, where its plan
expects fewer) among the plans of every rung still to run. Without one, on a machine that had
slowed to half its speed, it trained 399 s where its plan said 228 and carried the run to 1.2
times its limit; with a share of its expected epochs only, it stopped at 54 of 60 epochs while
still improving. Stopped at its deadline, it keeps its best epoch and says so; stopped early, it
leaves the time to the trained rungs, whose cuts are decided after it.
"""

from __future__ import annotations

import dataclasses
import math
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from ..config import RunSpec
from ..formats import fmt_epochs, fmt_seconds
from ..training import deadline
from .plan import RungJob, trains_network

WRITE_RESERVE = 5.0  # seconds kept for the verdicts, results.json and the report
WRITE_SHARE = 0.01  # ... plus this share of the limit
FRACTIONS = (0.5, 0.25, 0.1)


def costly(job: RungJob) -> bool:
    from ..rungs import RUNGS

    return trains_network(RUNGS.get(job.strategy))


def trains_small(job: RungJob) -> bool:
    """A cheap rung that trains a network from random weights (``scratch_small``): it can be stopped
    at a deadline, keeping its best epoch, where a logistic regression cannot."""
    from ..rungs import RUNGS

    rung = RUNGS.get(job.strategy)
    return rung.seeding == "train" and not rung.needs_backbone


def trains_once(spec: RunSpec) -> bool:
    """Whether a trained rung runs one training run with these settings (one seed, no learning-curve
    refits): then its deadline is all that run has, and it re-plans its steps to fill it."""
    return spec.train_seeds == 1 and not (spec.learning_curve and spec.learning_curve_trained)


def reserve(limit: float) -> float:
    """Seconds the run keeps at the end for judging and writing."""
    return WRITE_RESERVE + WRITE_SHARE * limit


def cheap_first(jobs: list[RungJob]) -> list[RungJob]:
    """The cheap rungs before the costly ones (each group in its own order): they always run."""
    return [j for j in jobs if not costly(j)] + [j for j in jobs if costly(j)]


def _epoch_steps(epochs: float) -> list[int]:
    out: list[int] = []
    e = epochs
    while e > 3:
        e = max(3, int(e * 0.7))
        out.append(int(e))
    return out


def _epochs_cut(e: float, spec: RunSpec) -> str:
    return f"{fmt_epochs(e)} instead of {spec.epochs:g}"


def cut_steps(spec: RunSpec) -> list[tuple[str, dict[str, Any]]]:
    """The cuts in the order they are made, each (what it is, the settings it sets)."""
    steps: list[tuple[str, dict[str, Any]]] = []
    if spec.learning_curve and spec.learning_curve_trained:
        steps.append(("no learning-curve refits for the trained rungs", {"learning_curve_trained": False}))
    if spec.train_seeds > 1:
        steps.append((f"1 seed instead of {spec.train_seeds}", {"train_seeds": 1}))
    if spec.ood_trained and (spec.corruptions or spec.ood):
        steps.append(("no out-of-distribution scores for the trained rungs", {"ood_trained": False}))
    steps += [(_epochs_cut(e, spec), {"epochs": e}) for e in _epoch_steps(spec.epochs)]
    if len(spec.lr_factors) > 1:
        steps.append(
            ("the recipe's learning rate only, no screen of " + str(len(spec.lr_factors)), {"lr_factors": [1.0]})
        )
    steps += [
        (f"trained on {f:.0%} of the training split", {"trained_fraction": f})
        for f in FRACTIONS
        if f < spec.trained_fraction
    ]
    steps += [(_epochs_cut(e, spec), {"epochs": e}) for e in (2, 1) if e < min(spec.epochs, 3)]
    return steps


@dataclasses.dataclass
class Fit:
    """What ``fit_to_limit`` decided: the jobs with their cuts, the cuts in order, the skipped rungs."""

    jobs: list[RungJob]
    cuts: list[str]
    overrides: dict[str, Any]
    skipped: dict[str, str]  # job name -> reason
    planned: dict[str, float]  # job name -> planned seconds with the cuts
    available: float

    def to_dict(self) -> dict:
        return {
            "cuts": list(self.cuts),
            "settings": dict(self.overrides),
            "skipped": [{"rung": k, "reason": v} for k, v in self.skipped.items()],
            "available_seconds": round(self.available, 1),
            "planned_seconds": {k: round(v, 1) for k, v in self.planned.items()},
        }


def fit_to_limit(
    jobs: list[RungJob], spec: RunSpec, available: float, plan: Callable[[list[RungJob]], list[Any]]
) -> Fit:
    """Cut the costly jobs until ``plan(jobs)`` (their stages) fits in ``available`` seconds."""
    costly_jobs = [j for j in jobs if costly(j)]

    def with_overrides(over: dict) -> list[RungJob]:
        items = tuple(sorted(over.items()))
        return [dataclasses.replace(j, overrides=items) if costly(j) and over else j for j in jobs]

    def seconds(js: list[RungJob]) -> dict[str, float]:
        return {s.name: s.seconds for s in plan([j for j in js if costly(j)])}

    over: dict[str, Any] = {}
    described: dict[str, str] = {}  # setting -> its cut, in the order first cut (epochs: its last value)
    planned = seconds(jobs) if costly_jobs else {}
    applied: list[str] = []  # the settings each step cut, in the order the steps came
    for what, change in [("", {})] + cut_steps(spec):
        if change:
            over = {**over, **change}
            described.update({name: what for name in change})
            applied += list(change)
            planned = seconds(with_overrides(over))
        if sum(planned.values()) <= available:
            if change:  # the steps that fitted may have cut more than needed: give back what still fits
                last_first = list(dict.fromkeys(reversed(applied)))
                over, planned, given = _give_back(
                    spec, over, last_first, available, lambda o: seconds(with_overrides(o))
                )
                for name, text in given.items():  # a new description, or None: undone
                    if text is None:
                        del described[name]
                    else:
                        described[name] = text
            break
    cuts = list(described.values())
    current = with_overrides(over)
    skipped: dict[str, str] = {}
    for job in sorted([j for j in current if costly(j)], key=lambda j: -planned.get(j.name, 0.0)):
        total = sum(v for k, v in planned.items() if k not in skipped)
        if total <= available:
            break
        skipped[job.name] = (
            f"the time limit: it needs {fmt_seconds(planned[job.name])} even with every cut, and what always "
            "runs (audit, embeddings, ranking, the cheap rungs) is planned to use the whole limit"
            if available <= 0
            else f"the time limit: it needs {fmt_seconds(planned[job.name])} even with every cut, and "
            f"{fmt_seconds(available)} is left for all the trained rungs ({fmt_seconds(total)} planned)"
        )
    kept = [j for j in current if j.name not in skipped]
    if not any(costly(j) for j in kept):  # nothing left to cut: the cuts would describe no rung
        kept, cuts, over = [j for j in jobs if j.name not in skipped], [], {}
    return Fit(kept, cuts, over, skipped, {k: v for k, v in planned.items() if k not in skipped}, available)


def _give_back(
    spec: RunSpec, over: dict, order: list[str], available: float, seconds: Callable[[dict], dict[str, float]]
) -> tuple[dict, dict[str, float], dict[str, str | None]]:
    """The cuts made as small as still fits, the last cut first (``order``): epochs raised one by one, the training share by bisection (to the percent), up to what they were before the limit; any other
    cut (the out-of-distribution scores, the learning-rate screen, the seeds, the learning-curve
    refits) undone whole where that still fits; last, while epochs are still cut, a share of one more
    epoch (to the tenth) fills what is left. Returns the settings, their planned seconds and the
    new descriptions of the cuts that changed (None: undone)."""
    fits = lambda o: sum(seconds(o).values()) <= available  # noqa: E731
    given: dict[str, str | None] = {}
    for name in order:
        if name not in ("epochs", "trained_fraction"):
            undone = {k: v for k, v in over.items() if k != name}
            if fits(undone):
                over, given[name] = undone, None
            continue
        if name == "epochs":
            e = over["epochs"]
            while e + 1 <= spec.epochs and fits({**over, "epochs": e + 1}):
                e += 1
            if e == spec.epochs:  # all of them fit again
                over, given["epochs"] = {k: v for k, v in over.items() if k != "epochs"}, None
            elif e != over["epochs"]:
                over = {**over, "epochs": e}
                given["epochs"] = _epochs_cut(e, spec)
        elif name == "trained_fraction":
            lo, hi = over["trained_fraction"], spec.trained_fraction
            for _ in range(7):  # bisection on the share: the plan grows with it
                mid = (lo + hi) / 2
                lo, hi = (mid, hi) if fits({**over, "trained_fraction": mid}) else (lo, mid)
            share = float(int(lo * 100)) / 100
            if share > over["trained_fraction"]:
                over = {**over, "trained_fraction": share}
                given["trained_fraction"] = f"trained on {share:.0%} of the training split"
    e = over.get("epochs")
    if e is not None and e < spec.epochs:  # last, what is left: a share of one more epoch's batches, to the tenth
        lo, hi = e, min(math.floor(e) + 1, spec.epochs)
        for _ in range(7):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if fits({**over, "epochs": mid}) else (lo, mid)
        share = math.floor(lo * 10 + 1e-9) / 10
        if share > e:
            over = {**over, "epochs": share}
            given["epochs"] = _epochs_cut(share, spec)
    return over, seconds(over), given


class RungDeadlines:
    """When each costly rung must stop: the time left before the run's end (less the reserve for
    writing and each rung's own predictions), shared among the costly rungs still to run in
    proportion to their planned training time. The small control (``trains_small``) gets its
    share among every rung still to run, cheap or costly, by the most it may take
    (``_small_deadline``)."""

    def __init__(
        self,
        limit: float,
        started: float,
        fitted: Fit,
        tails: dict[str, float],
        spec: RunSpec,
        cheap: dict[str, float] | None = None,
    ):
        self.end = started + limit - reserve(limit)  # time.time() seconds
        self.fit, self.tails, self.spec = fitted, tails, spec
        self.cheap = dict(cheap or {})  # the cheap rungs' planned seconds (they always run; the small control's most)
        self.done: set[str] = set()

    def fill_epochs(self, job: RungJob) -> float | None:
        """Most epochs the rung's training may stretch to while it fills its deadline (the epochs
        before any cut), when its one training run is all the deadline holds (``trains_once``).
        None otherwise (the steps stay as the plan set them)."""
        return self.spec.epochs if costly(job) and trains_once(job.spec_for(self.spec)) else None

    def deadline_for(self, job: RungJob) -> float | None:
        planned = self.fit.planned
        if trains_small(job) and job.name in self.cheap:
            return self._small_deadline(job)
        if not costly(job) or job.name not in planned:
            return None
        left = [n for n in planned if n not in self.done]
        train = {n: max(planned[n] - self.tails.get(n, 0.0), 1e-3) for n in left}
        share = train.get(job.name, 0.0) / max(sum(train.values()), 1e-9)
        now = time.time()
        remaining_tails = sum(self.tails.get(n, 0.0) for n in left)
        return now + max(self.end - now - remaining_tails, 0.0) * share

    def _small_deadline(self, job: RungJob) -> float:
        """A cheap rung's share of the time left, in proportion to its seconds in ``cheap`` among the
        plans of every rung still to run (the cheap ones and the costly ones as cut), less its own
        predictions."""
        left = {n: s for n, s in {**self.cheap, **self.fit.planned}.items() if n not in self.done}
        share = self.cheap[job.name] / max(sum(left.values()), 1e-9)
        now = time.time()
        return now + max((self.end - now) * share - self.tails.get(job.name, 0.0), 0.0)

    @contextmanager
    def rung(self, job: RungJob) -> Iterator[None]:
        at = self.deadline_for(job)
        with deadline.deadline(at), deadline.filling(self.fill_epochs(job) if at is not None else None):
            yield
        self.done.add(job.name)


def summary(spec: RunSpec, plan: dict, rungs: list[dict], curves: dict, elapsed: float) -> list[str]:
    """The time limit's lines for the top of the report: what was cut, what stopped, and what the
    cuts likely cost where the run measured it."""
    limit = plan.get("time_limit") or {}
    lines = [
        f"Run under a time limit of {fmt_seconds(spec.limit_seconds() or 0.0)}; it took {fmt_seconds(elapsed)}."
        + (
            " To fit, the rungs that train a backbone ran with: " + "; ".join(limit["cuts"]) + "."
            if limit.get("cuts")
            else " No rung that trains a backbone fitted in it (see the notes on each)."
            if limit.get("skipped")
            else " Nothing was cut."
        )
    ]
    stopped = [r["name"] for r in rungs if r.get("stopped_at_limit")]
    if stopped:
        lines.append(
            "Stopped at the time limit, keeping what they had finished (see each rung's notes): "
            + ", ".join(stopped)
            + "."
        )
    fraction = (limit.get("settings") or {}).get("trained_fraction")
    if fraction:
        lines.append(_subsample_cost(fraction, rungs, curves))
    epochs = (limit.get("settings") or {}).get("epochs")
    planned_epochs = epochs or spec.epochs
    refilled = {
        r["name"]: planned_epochs * r["chosen"]["steps"]["replanned"] / r["chosen"]["steps"]["planned"]
        for r in rungs
        if isinstance(r.get("chosen"), dict) and r["chosen"].get("steps", {}).get("planned")
    }
    if refilled:
        lines.append(
            f"Planned at {fmt_epochs(planned_epochs)}, these re-planned their steps from the speed they really ran "
            "at, to end at their share of the limit: "
            + ", ".join(f"{name} {fmt_epochs(e)}" for name, e in refilled.items())
            + "."
        )
    if epochs:
        rising = [
            r["name"]
            for r in rungs
            if isinstance(r.get("curves"), dict)
            and r["curves"].get("val_metric")
            and r["curves"].get("best_epoch") == max(r["curves"].get("epoch") or [0])
            and r["curves"].get("best_epoch", 0) > 0
        ]
        if rising:
            lines.append(
                f"Still improving on validation at their last epoch, so the cut from {spec.epochs:g} epochs likely cost "
                f"them accuracy: {', '.join(rising)}."
            )
    return lines


def _subsample_cost(fraction: float, rungs: list[dict], curves: dict) -> str:
    """What training on ``fraction`` of the data cost, from a cheap rung's learning curve (the trained
    rungs' own curves are not measured under a cut): its score at all the data against at ``fraction``."""
    import numpy as np

    for name, curve in curves.items():
        sizes, scores = curve.get("n_per_class") or [], curve.get("score_mean") or []
        if len(sizes) >= 2 and not any(r["name"] == name and r.get("stopped_at_limit") for r in rungs):
            at = float(np.interp(np.log(sizes[-1] * fraction), np.log(sizes), scores))
            return (
                f"Trained on {fraction:.0%} of the training split. On {name}'s learning curve that much data "
                f"scores {at:.3f} against {scores[-1]:.3f} with all of it ({at - scores[-1]:+.3f}); expect a "
                "loss of about that size for the subsampled rungs, which this run did not measure."
            )
    return f"Trained on {fraction:.0%} of the training split; no learning curve here estimates what that cost."
