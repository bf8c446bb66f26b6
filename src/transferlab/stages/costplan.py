"""What a run will cost before it is paid: the time and peak memory of every stage, predicted.

The backbones dominate a run, so their cost is measured, not guessed: ``training.probe`` times
a few real inference batches of each backbone (and training steps for the backbones a rung
trains) on a sample of the user's own items, and the plan extrapolates by items, steps, epochs,
learning-rate candidates, seeds, learning-curve refits and out-of-distribution sets, following
the order the run takes them in. The cheap parts (the audit's checks, the ranking scores, the
rungs that fit on cached features, the small model) take per-item rates measured at full size on
the text and image demos (``bench/cheap_stages.py``), scaled by how fast this machine does each
kind of that work when the plan is made (``stages.pace``: the same data took 1.7-2.5x as long
five hours apart); the plan says which figure is measured and which is such a rate.

``RunPlan`` is plain data: ``transferlab plan`` prints it, a run shows it first, records it in
results.json next to what each stage really took (``stages.clock``), and uses it for the remaining
time of the whole run. With ``--time-limit`` the plan's rung stages are the ones cut to fit
(``fit_plan_to_limit``, by the rules of ``stages.timelimit``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from ..config import RunSpec
from ..data import Task
from ..formats import fmt_bytes, fmt_epochs, fmt_seconds
from ..progress import Progress
from .pace import CheapPace, measure_pace
from .plan import on_subsample, trains_network

# Per-item rates of the cheap parts (seconds) on this kind of machine (2 CPU cores), at the pace
# of ``stages.pace.REFERENCE_SECONDS``: a plan scales them by the pace it measures. Measured at full
# size on an idle machine (all 4,985 fine-food reviews; 4,500 Animal-MNIST images at 96 px) in the
# same session as those references (bench/cheap_stages.py; bench/RESULTS.md, "A run under
# --time-limit", has the runs that check them).
AUDIT_PER_ITEM = {"text": 2e-3, "image": 4e-3, "audio": 4e-3}  # hashing, near-duplicate search, label checks
# images, when the plan sampled the audit's hashing (pace.image_search): the hashing as timed on the
# sample, and at the pace's numeric factor these per image (the threshold's calibration, the other
# checks) and per candidate hit of the hash search (its pixel confirmation)
AUDIT_IMAGE_OTHER_PER_ITEM = 2.5e-4
AUDIT_CONFIRM_PER_HIT = 3.5e-5
RANK_PER_CANDIDATE = 0.2  # the ranking's scores per candidate: fixed ...
RANK_PER_ITEM_DIM_CLASS = 1.2e-7  # ... + per training item x feature dimension x class (LogME, H-score, kNN, probe)
# the memory figure embeds the longest batch: for text about 3x a typical batch (256 tokens against ~90)
LONGEST_BATCH = {"text": 3.0}
# per item of train + val + test, per fit (seed or learning-curve refit): the logistic regression
# with its choice of C (and, for text, the TF-IDF learnt again)
CHEAP_FIT_PER_ITEM = {
    "majority": {"any": 1e-6},
    # images: HOG + pixels, 2,020 dense columns (28 fits on 4,500 Animal-MNIST items took 10.1-10.7 s)
    "classical": {"text": 3.6e-4, "image": 1.9e-4, "any": 1e-4},
    "frozen": {"any": 7e-5},
    "zero_shot": {"any": 2e-4},
}
# the classical rung's hand-made features, computed once an item for all its seeds (HOG + pixels,
# MFCC statistics, per second of clip; TF-IDF is learnt again with each fit, inside the fit's rate)
FEATURES_PER_ITEM = {"text": 0.0, "image": 2.0e-3, "audio": 5e-3}
OTHER_FIT_PER_ITEM = 2e-4  # a cheap rung not listed above
HEAD_PER_ITEM_EPOCH = 3e-5  # finetune's head warm-up on cached features
# scratch_small's small model, per training item and epoch: a bag of word embeddings (text) is
# far cheaper than a small CNN (images, spectrograms)
SMALL_PER_ITEM_EPOCH = {"text": 1e-4, "image": 1.55e-3, "audio": 1.55e-3}
SMALL_CNN_EPOCH_SHARE = 0.85  # the share of small_epochs a small CNN is expected to train (small_epochs_expected)
LORA_BACKWARD_SHARE = 0.7  # LoRA backpropagates through every layer but computes no frozen weight's gradient
CURVE_REFITS = 3 * (0.1 + 0.2 + 0.4 + 0.7 + 1.0)  # cheap rungs: 3 subsamples x the learning curve's fractions
TRAINED_CURVE_SHARE = 0.25 + 0.5  # trained rungs: refits on 25% and 50% of the training set
PER_FIT_OVERHEAD = 0.3  # each seed's scoring (bootstrap intervals) and record, whatever the rung


@dataclass
class StagePlan:
    """One stage of the run: its predicted seconds and peak memory (bytes), and how they were reached."""

    name: str  # "audit", "embed:minilm", "ranking", or a rung's name ("finetune:minilm")
    seconds: float
    peak_bytes: int
    how: str
    kind: str = "rung"  # audit | embed | ranking | rung
    splits: tuple[str, ...] = ()  # embed stages: the splits embedded
    tail: float = 0.0  # rung stages: the seconds after training (predictions, OOD sets, learning curve)
    upto: float | None = None  # a rung that stops early when it stops improving: its seconds if it never does

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "seconds": round(self.seconds, 2),
            "peak_bytes": int(self.peak_bytes),
            "how": self.how,
        }


@dataclass
class RunPlan:
    """Every stage a run will take, in order, with the rungs it will not run and the probes behind it."""

    stages: list[StagePlan]
    skipped: list[str] = field(default_factory=list)  # "lora:efficientnet_lite0: <reason>"
    probes: dict[str, Any] = field(default_factory=dict)  # backbone -> BackboneTiming
    probe_seconds: float = 0.0
    limit: Any = None  # with --time-limit: what it cut (``timelimit.Fit``)
    recalibrated: dict[str, float] = field(default_factory=dict)  # backbone -> measured / probed speed
    retimed: dict[str, float] = field(default_factory=dict)  # backbone -> training step re-timed / as planned
    pace: CheapPace = field(default_factory=CheapPace)  # the cheap work's speed today against its per-item rates
    ood_items: float = 0.0  # out-of-distribution items each fitted rung predicts (text: at the training length)

    def all_skipped(self) -> list[str]:
        """The rungs that will not run: those that cannot, and those the time limit left out."""
        limited = [f"{n}: {why}" for n, why in self.limit.skipped.items()] if self.limit is not None else []
        return list(self.skipped) + limited

    @property
    def total_seconds(self) -> float:
        return float(sum(s.seconds for s in self.stages))

    @property
    def peak_bytes(self) -> int:
        return max((s.peak_bytes for s in self.stages), default=0)

    def stage(self, name: str) -> StagePlan | None:
        return next((s for s in self.stages if s.name == name), None)

    def to_dict(self, actual: dict[str, float] | None = None) -> dict:
        """The results.json ``plan`` section; ``actual`` adds what each stage really took."""
        stages = [s.to_dict() for s in self.stages]
        out: dict[str, Any] = {
            "stages": stages,
            "total_seconds": round(self.total_seconds, 2),
            "peak_bytes": self.peak_bytes,
            "skipped": self.all_skipped(),
            "probe_seconds": round(self.probe_seconds, 2),
            "probes": {k: v.to_dict() for k, v in self.probes.items()},
            "pace": self.pace.to_dict(),
        }
        if self.limit is not None:
            out["time_limit"] = self.limit.to_dict()
        if self.recalibrated:
            out["recalibrated"] = dict(self.recalibrated)
        if self.retimed:
            out["retimed"] = dict(self.retimed)
        if actual is not None:
            for s in stages:
                if s["name"] in actual:
                    s["actual_seconds"] = round(actual[s["name"]], 2)
            out["actual_total_seconds"] = round(sum(v for k, v in actual.items() if self.stage(k)), 2)
        return out

    def table(self) -> str:
        """The plan as a text table, one line per stage, then the total and the skipped rungs."""
        width = max([len(s.name) for s in self.stages] + [5])
        lines = [f"{'stage':<{width}}  {'time':>9}  {'memory':>9}  how"]
        lines += [
            f"{s.name:<{width}}  {fmt_seconds(s.seconds):>9}  {fmt_bytes(s.peak_bytes):>9}  {s.how}"
            for s in self.stages
        ]
        lines.append(
            f"{'total':<{width}}  {fmt_seconds(self.total_seconds):>9}  {fmt_bytes(self.peak_bytes):>9}  "
            f"(measuring took {self.probe_seconds:.1f} s)"
        )
        lines += [f"not run: {s}" for s in self.all_skipped()]
        if self.limit is not None:
            if self.limit.cuts:
                lines.append(f"time limit: the trained rungs were cut to fit: {'; '.join(self.limit.cuts)}")
            elif not self.limit.skipped:
                lines.append("time limit: the plan fits without cuts")
        return "\n".join(lines)


# --- probing --------------------------------------------------------------------------------------
def probe_backbones(backbones: list, task: Task, spec: RunSpec, trained: set[str]) -> dict[str, Any]:
    """Each backbone timed on a sample of the training items; training steps for those in ``trained``."""
    from ..training.probe import probe_backbone

    items = task.part("train")[0] or task.items
    return {
        b.name: probe_backbone(
            b,
            items,
            eval_batch_size=spec.extract_batch_size,
            batch_size=spec.batch_size,
            train=b.name in trained,
            seed=spec.seed,
            open_counts=unfreeze_counts(b, spec) if "finetune" in spec.rungs else (),
        )
        for b in backbones
    }


def unfreeze_counts(backbone, spec: RunSpec) -> list[int]:
    """How many layer groups finetune trains in its epochs before every group is open (gradual unfreezing)."""
    k, open_at = _unfreezing(backbone, spec)
    return sorted({open_at(e) for e in range(1, spec.unfreeze_stages + 1)} - {k})


def _unfreezing(backbone, spec: RunSpec):
    """(the backbone's layer groups, epoch -> how many of them finetune trains in it)."""
    from ..training.schedule import unfrozen_groups

    k = len(backbone.layer_groups(backbone.encoder()))
    stages = min(spec.unfreeze_stages, k)
    return k, lambda epoch: len(unfrozen_groups(k, stages, epoch)) - 1


def _jobs(task: Task, backbones: list, spec: RunSpec, rank_only: bool):
    """The rung jobs ``plan_rungs`` will make (trained rungs on the first ``top_k`` backbones: the
    ranking picks which, at about the same cost), and the skipped ones, without touching ``task``."""
    from .plan import plan_rungs

    scratch = dataclasses.replace(task, notes=[])
    jobs = plan_rungs(spec, backbones, scratch, Progress(quiet=True), rank_only)
    return jobs, list(scratch.notes)


def make_plan(
    task: Task,
    backbones: list,
    spec: RunSpec,
    *,
    rank_only: bool = False,
    audit_only: bool = False,
    ood_items: float = 0.0,
    probes: dict[str, Any] | None = None,
    pace: CheapPace | None = None,
) -> RunPlan:
    """Probe the backbones (unless ``probes`` are given), time the cheap work (unless ``pace`` is
    given) and plan every stage of the run."""
    from ..rungs import RUNGS

    jobs, skipped = _jobs(task, backbones, spec, rank_only or audit_only)
    if spec.time_limit is not None:
        from .timelimit import cheap_first

        jobs = cheap_first(jobs)
    if probes is None:
        trained = {j.backbone.name for j in jobs if j.backbone is not None and trains_network(RUNGS.get(j.strategy))}
        if trained and spec.top_k:  # the ranking, later, picks which backbones train: probe every candidate
            trained = {b.name for b in backbones}
        probes = probe_backbones(backbones, task, spec, trained)
    if pace is None:
        cheap = set() if rank_only or audit_only else {j.strategy for j in jobs}
        pace = measure_pace(
            task.modality,
            task.part("train")[0] or task.items,
            spec.clip_seconds,
            small="scratch_small" in cheap,
            features="classical" in cheap,
            audit_items=task.items if spec.audit else None,  # sampled for images (pace.measure_pace)
            n_classes=len(task.classes),
            batch_size=spec.batch_size,
            flip=spec.small_flip,
        )
    measured = float(sum(p.probe_seconds for p in probes.values())) + pace.seconds
    plan = RunPlan([], skipped, probes, measured, pace=pace, ood_items=ood_items)
    if spec.audit:
        plan.stages.append(_audit_stage(task, backbones, spec, probes, pace))
    if not audit_only:
        plan.stages += [
            _embed_stage(b, task, spec, probes[b.name], rank_only, first=i == 0) for i, b in enumerate(backbones)
        ]
        if backbones:
            plan.stages.append(_ranking_stage(task, backbones, spec, probes, pace))
        plan.stages += _rung_stages(plan, jobs, task, spec)
    if spec.time_limit is not None and not audit_only and not rank_only:
        fit_plan_to_limit(plan, jobs, task, spec, (spec.limit_seconds() or 0.0) - plan.probe_seconds)
    return plan


def fit_plan_to_limit(
    plan: RunPlan,
    jobs: list,
    task: Task,
    spec: RunSpec,
    left: float,
    finished: frozenset[str] = frozenset(),
) -> list:
    """Cut the costly rungs so the stages still to run (not ``finished``) fit in ``left`` seconds
    (``stages.timelimit``); the plan's rung stages become the cut ones, in the order ``jobs`` run.
    Returns the jobs to run, with their cuts."""
    from .timelimit import costly, fit_to_limit, reserve

    assert spec.time_limit is not None
    stages = _rung_stages(plan, jobs, task, spec)
    done_or_fixed = [s for s in plan.stages if s.kind != "rung"]
    fixed = sum(s.seconds for s in done_or_fixed if s.name not in finished)
    cheap = sum(s.seconds for s, j in zip(stages, jobs) if not costly(j))
    available = left - fixed - cheap - reserve(spec.limit_seconds() or 0.0)
    plan.limit = fit_to_limit(jobs, spec, available, lambda js: _rung_stages(plan, js, task, spec))
    plan.stages = done_or_fixed + _rung_stages(plan, plan.limit.jobs, task, spec)
    return plan.limit.jobs


def replan_rungs(plan: RunPlan, jobs: list, task: Task, spec: RunSpec) -> None:
    """After the ranking: the rung stages of the jobs that will really run (``--top-k`` trains the
    backbones the ranking put first, which the plan made before it could only guess), from the same
    probes; the stages before the rungs stay as they were."""
    head = [s for s in plan.stages if s.kind != "rung"]
    plan.stages = head + _rung_stages(plan, jobs, task, spec)


def _rung_stages(plan: RunPlan, jobs: list, task: Task, spec: RunSpec) -> list[StagePlan]:
    """One stage per rung job, in run order, from the plan's probes, pace and OOD count (the first
    frozen-feature rung of a backbone embeds the OOD items; later ones read them from the cache)."""
    embedded_ood: set[str] = set()  # backbones whose frozen features of the OOD items are cached by then
    return [_rung_stage(job, task, spec, plan, embedded_ood) for job in jobs]


def _sizes(task: Task) -> tuple[int, int, int]:
    s = task.sizes()
    return s["train"], s["val"], s["test"]


def _cached(backbone, hashes: list[str], spec: RunSpec) -> bool:
    """Whether the feature cache already holds these items' features (a later run reads them back)."""
    import re
    from pathlib import Path

    from ..features import cache_key, default_cache_dir

    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", backbone.name)[-60:]
    return (Path(spec.cache_dir or default_cache_dir()) / f"{safe}-{cache_key(backbone, hashes)}.npy").exists()


def _audit_stage(task: Task, backbones: list, spec: RunSpec, probes: dict, pace: CheapPace) -> StagePlan:
    n, search, peak = len(task.items), pace.image_search, 0
    if task.modality == "image" and search and search["images"] >= 2:
        hits = search["hit_share"] * n * (n - 1)
        seconds = (
            search["per_image"] * n + (AUDIT_IMAGE_OTHER_PER_ITEM * n + AUDIT_CONFIRM_PER_HIT * hits) * pace.numeric
        )
        how = (
            f"decode and hash {n} images at {1 / max(search['per_image'], 1e-9):.0f}/s (measured on {search['images']}); "
            f"confirm ~{hits:,.0f} candidate pairs (their share in the sample), other checks {_paced(pace.numeric)}"
        )
    else:
        seconds = AUDIT_PER_ITEM.get(task.modality, 4e-3) * n * pace.numeric
        how = f"checks on {n} examples {_paced(pace.numeric)}"
    if backbones:
        b, t = backbones[0], probes[backbones[0].name]
        peak = t.forward_peak_bytes
        if _cached(b, task.hashes, spec):
            how += f"; {b.name} embeddings from the cache"
        else:
            seconds += t.forward_per_item * n
            how += f"; embed {n} with {b.name} at {1 / t.forward_per_item:.0f}/s (measured)"
    return StagePlan("audit", seconds, peak, how, kind="audit")


def _embed_stage(backbone, task: Task, spec: RunSpec, t, rank_only: bool, first: bool) -> StagePlan:
    """The splits the ranking and the rungs read, embedded once (the audit's backbone already has them)."""
    from ..rungs import RUNGS

    features_read = not rank_only and any(RUNGS.get(r).needs_features for r in spec.rungs)
    splits = ("train", "val", "test") if features_read else ("train",)
    name = f"embed:{backbone.name}"
    if first and spec.audit:
        return StagePlan(name, 0.0, 0, "from the audit's embeddings", kind="embed", splits=splits)
    todo = [s for s in splits if not _cached(backbone, task.part_hashes(s), spec)]
    n = sum(len(task.part_hashes(s)) for s in todo)
    how = f"{n} items ({', '.join(todo)}) at {1 / t.forward_per_item:.0f}/s (measured)" if todo else "from the cache"
    return StagePlan(
        name, t.forward_per_item * n, t.forward_peak_bytes if todo else 0, how, kind="embed", splits=splits
    )


def _ranking_stage(task: Task, backbones: list, spec: RunSpec, probes: dict, pace: CheapPace) -> StagePlan:
    n_train = _sizes(task)[0]
    batch = min(spec.extract_batch_size, n_train)
    # per candidate: the scores on the training features, and one batch embedded for the memory figure
    longest = LONGEST_BATCH.get(task.modality, 1.0)
    classes = max(len(task.classes), 2)
    seconds = sum(
        (RANK_PER_CANDIDATE + RANK_PER_ITEM_DIM_CLASS * n_train * (b.feature_dim or 768) * classes) * pace.numeric
        + longest * probes[b.name].forward_per_item * batch
        for b in backbones
    )
    return StagePlan(
        "ranking",
        seconds,
        max(p.forward_peak_bytes for p in probes.values()),
        f"{len(backbones)} candidate(s): scores on {n_train} training features {_paced(pace.numeric)}, "
        "one batch each for memory",
        kind="ranking",
    )


def _rung_stage(job, task: Task, spec: RunSpec, plan: RunPlan, embedded_ood: set[str]) -> StagePlan:
    from ..rungs import RUNGS
    from .plan import seed_count

    probes, pace, ood_items = plan.probes, plan.pace, plan.ood_items

    rung = RUNGS.get(job.strategy)
    spec = job.spec_for(spec)  # with the time limit's cuts, if any
    seeds = seed_count(rung, spec) if task.resplittable or rung.seeding == "train" else 1
    t = probes.get(job.backbone.name) if job.backbone is not None else None
    if trains_network(rung) and t is not None and t.train_step is not None and job.strategy != "scratch_small":
        one, peak, how = _trained_seed(rung, job, task, spec, t)
    else:
        one, peak, how = _cheap_seed(rung, task, spec, pace)
    seconds, parts = (one + PER_FIT_OVERHEAD) * seeds, [how] + ([f"x {seeds} seeds"] if seeds > 1 else [])
    tail = PER_FIT_OVERHEAD * seeds
    if t is not None and trains_network(rung):
        n_train, n_val, n_test = _sizes(task)
        tail += (n_val + n_test) * t.forward_per_item * seeds
    runs = float(seeds)  # whole fits, for the small control's longest case below
    if spec.learning_curve and rung.seeding == "cheap":
        seconds += one * CURVE_REFITS
        runs += CURVE_REFITS
        parts.append(f"+ learning curve ({CURVE_REFITS:.1f} refits)")
    elif spec.learning_curve and spec.learning_curve_trained and rung.trained_learning_curve:
        seconds += one * TRAINED_CURVE_SHARE
        tail += one * TRAINED_CURVE_SHARE
        runs += TRAINED_CURVE_SHARE
        parts.append(f"+ learning curve ({TRAINED_CURVE_SHARE:g} of a run)")
    upto = None
    if rung.strategy == "scratch_small":  # it may train to its last epoch: the most it may take
        upto = seconds + (small_seed(task, spec, pace, spec.small_epochs)[0] - one) * runs
        if pace.small_epoch:  # its predictions of validation and test, after training
            tail += _small_predictions(task, pace.small_epoch) * seeds
    if rung.strategy == "classical" and FEATURES_PER_ITEM.get(task.modality):
        n = sum(_sizes(task)) + ood_items
        if pace.features_per_item is not None:
            seconds += pace.features_per_item * n
            parts.append(f"+ features of {n} items, once, at {1 / pace.features_per_item:.0f}/s (measured)")
        else:
            seconds += FEATURES_PER_ITEM[task.modality] * n * (spec.clip_seconds if task.modality == "audio" else 1.0)
            parts.append(f"+ features of {n} items, once (per-item rate)")
    own_model = rung.trains_backbone or rung.seeding == "train"  # predicts through its own trained copy
    if (
        ood_items
        and t is not None
        and (own_model or rung.needs_features)
        and (spec.ood_trained or not trains_network(rung))
    ):
        if own_model or job.backbone.name not in embedded_ood:
            seconds += ood_items * t.forward_per_item
            tail += ood_items * t.forward_per_item
            at = " (at the training items' length)" if task.modality == "text" else ""
            parts.append(f"+ {ood_items:.0f} out-of-distribution items{at}")
        if not own_model:  # the frozen features of the OOD items are cached by content: the next rung reads them
            embedded_ood.add(job.backbone.name)
    return StagePlan(job.name, seconds, peak, " ".join(parts), tail=tail, upto=upto)


def _cheap_seed(rung, task: Task, spec: RunSpec, pace: CheapPace) -> tuple[float, int, str]:
    n_train, n_val, n_test = _sizes(task)
    if rung.strategy == "scratch_small":
        return small_seed(task, spec, pace, small_epochs_expected(task, spec))
    rates = CHEAP_FIT_PER_ITEM.get(rung.strategy, {"any": OTHER_FIT_PER_ITEM})
    # a logistic regression on dense features (embeddings, HOG) runs its BLAS on every thread; the
    # text fit learns TF-IDF and fits its sparse rows on one; the majority class is numeric work
    dense = rung.needs_features or (rung.strategy == "classical" and task.modality != "text")
    text_fit = rung.strategy == "classical" and task.modality == "text"
    factor = pace.dense if dense else pace.tfidf if text_fit else pace.numeric
    seconds = rates.get(task.modality, rates["any"]) * (n_train + n_val + n_test) * factor
    return seconds, 0, f"{'fit on cached features' if rung.needs_features else 'fit'} {_paced(factor)}"


def small_epochs_expected(task: Task, spec: RunSpec) -> float:
    """The epochs ``scratch_small`` is expected to train before early stopping ends it. The text
    model (a bag of n-gram embeddings at a high rate) peaks early: its best epochs on the text demo
    were 1, 6 and 9, so it stopped after 16-24 of 60. The small CNN's rate decays over all
    ``small_epochs`` and it improves almost to the end: on Animal-MNIST it trained 42, 48, 60 and
    60 of 60 epochs."""
    early = min(spec.small_epochs, spec.small_patience + 15)
    if task.modality == "text":
        return float(early)
    return float(max(early, min(spec.small_epochs, SMALL_CNN_EPOCH_SHARE * spec.small_epochs)))


def small_seed(task: Task, spec: RunSpec, pace: CheapPace, epochs: float) -> tuple[float, int, str]:
    """One fit of ``scratch_small`` at ``epochs``: for a CNN timed on the user's items
    (``pace.small_epoch``), decoding every item (each training image twice: once for its size),
    the epochs, and predicting validation and test; otherwise the per-item rate at the pace of the
    fixed small-model workload."""
    n_train, n_val, _ = _sizes(task)
    timed = pace.small_epoch
    if timed:
        seconds = (
            timed["encode_per_item"] * (timed["training_reads"] * n_train + n_val)
            + timed["per_item_epoch"] * n_train * epochs
            + _small_predictions(task, timed)
        )
        shape = "x".join(str(v) for v in timed["input"])
        return (
            seconds,
            0,
            (
                f"small CNN (width {timed['width']}, input {shape}), ~{epochs:.0f} epochs of up to "
                f"{spec.small_epochs}, timed on {timed['items']} of the training items"
            ),
        )
    rate = SMALL_PER_ITEM_EPOCH.get(task.modality, max(SMALL_PER_ITEM_EPOCH.values())) * pace.small
    return (
        rate * n_train * epochs,
        0,
        f"small model, ~{epochs:.0f} epochs of up to {spec.small_epochs} {_paced(pace.small)}",
    )


def _small_predictions(task: Task, timed: dict) -> float:
    """The timed small CNN's predictions after training: validation (already decoded) and test
    (decoded then)."""
    _, n_val, n_test = _sizes(task)
    return timed["encode_per_item"] * n_test + timed["forward_per_item"] * (n_val + n_test)


def _paced(factor: float) -> str:
    """A per-item rate, scaled to this machine's speed at that kind of work today (``stages.pace``)."""
    return f"(per-item rate x {factor:.2f}, this machine's pace today)" if factor != 1.0 else "(per-item rate)"


def _trained_seed(rung, job, task: Task, spec: RunSpec, t) -> tuple[float, int, str]:
    """One training run: the learning-rate screen (each factor one epoch), the kept rate's further
    epochs (all of them: early stopping may end sooner), a validation pass per epoch, and the
    validation and test predictions."""
    from ..rungs.trainable import SCREEN_EPOCHS
    from ..training.loop import batch_starts

    n_train, n_val, n_test = _sizes(task)
    subsample = on_subsample(rung, spec)
    if subsample:
        n_train = max(2 * len(task.classes), int(round(n_train * spec.trained_fraction)))
    steps = len(batch_starts(n_train, spec.batch_size)) if n_train else 0
    factors = 1 if job.strategy in ("scratch", "lora") else len(spec.lr_factors)
    share = _step_shares(job, spec, t)
    total = max(1, round(steps * spec.epochs))  # as the loop counts them: a fraction of the last epoch's batches
    epoch_seconds = [
        min(steps, total - (e - 1) * steps) * t.train_step * share(e) + n_val * t.forward_per_item
        for e in range(1, math.ceil(total / max(steps, 1)) + 1)
    ]
    screened = min(SCREEN_EPOCHS, len(epoch_seconds))
    seconds = factors * sum(epoch_seconds[:screened]) + sum(epoch_seconds[screened:])
    seconds += (n_val + n_test) * t.forward_per_item
    # every model the rung builds (one per rate screened) pays a cold first step once
    seconds += factors * max((t.train_first_step or t.train_step) - t.train_step, 0.0)
    how = f"{steps} steps/epoch x {fmt_epochs(spec.epochs)} at {t.train_step:.2f} s/step (measured)"
    if subsample:
        how += f" on {n_train} training items ({spec.trained_fraction:.0%})"
    if factors > 1:
        how += f", {factors} rates screened {screened} epoch each"
    if job.strategy == "finetune":
        seconds += HEAD_PER_ITEM_EPOCH * n_train * spec.head_epochs
        how += ", gradual unfreezing"
    return seconds, int(t.train_peak_bytes or 0), how


def _step_shares(job, spec: RunSpec, t):
    """epoch -> its training step's share of a full step. finetune opens its layer groups top first
    (no gradient, update or backward below the lowest open one): the probe timed a step at each
    opening (``train_open_ratios``), else its backward is shared out by the count of open groups;
    lora computes no gradient for a frozen weight; the others train everything."""
    backward = max(t.train_step - (t.train_forward or 0.0), 0.0) / t.train_step

    def with_backward(part: float) -> float:  # the forward whole, this part of the backward
        return 1.0 - backward * (1.0 - part)

    if job.strategy == "lora":
        return lambda epoch: with_backward(LORA_BACKWARD_SHARE)
    if job.strategy != "finetune":
        return lambda epoch: 1.0
    k, open_at = _unfreezing(job.backbone, spec)
    measured = t.train_open_ratios or {}

    def share(epoch: int) -> float:
        n = open_at(epoch)
        if n >= k:
            return 1.0
        return measured[n] if n in measured else with_backward(n / max(k, 1))

    return share


# --- the plan of a run from its data and settings -------------------------------------------------
def plan_run(data: Any, spec: RunSpec, *, rank_only: bool = False, audit_only: bool = False) -> RunPlan:
    """The plan of ``transferlab run`` with these settings, without running or writing anything."""
    from .oodcount import ood_item_count
    from .plan import check_rung_data, prepare_task, resolve_backbones

    task = prepare_task(data, spec)
    backbones = resolve_backbones(spec, task.modality)
    if not rank_only and not audit_only:
        check_rung_data(task, spec)
    return make_plan(
        task,
        backbones,
        spec,
        rank_only=rank_only,
        audit_only=audit_only,
        ood_items=ood_item_count(task, spec, rank_only or audit_only, backbones=backbones),
    )
