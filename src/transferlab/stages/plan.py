"""Before anything is written: read and split the data, resolve the backbones, hear each rung's
objection to the data, make the run directory; and plan each rung's seeds."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import RunSpec, default_out
from ..data import Dataset, Task, load_data, make_task, subsample
from ..errors import BackboneError, ConfigError
from ..progress import Progress
from .store import STAGES


def prepare_task(data: Any, spec: RunSpec) -> Task:
    """Read and split the data; every data error surfaces here, before anything is written."""
    if isinstance(data, Dataset):
        dataset = data
    elif isinstance(data, Task):
        return data
    elif data is None:
        raise ConfigError("No data given. Pass a folder of images or a CSV/JSONL/Parquet file.")
    else:
        dataset = load_data(
            data,
            text_column=spec.text_column,
            label_column=spec.label_column,
            split_column=spec.split_column,
            group_column=spec.group_column,
            time_column=spec.time_column,
        )
    task = make_task(dataset, seed=spec.seed, val_fraction=spec.val_fraction, test_fraction=spec.test_fraction)
    return subsample(task, {"train": spec.max_train, "val": spec.max_val, "test": spec.max_test}, spec.seed)


def check_rung_data(task: Task, spec: RunSpec) -> None:
    """Each chosen rung's own objection to the data, before the run directory is created."""
    from ..rungs import RUNGS

    for name in spec.rungs:
        RUNGS.get(name)().check_data(task, spec)


def resolve_backbones(spec: RunSpec, modality: str) -> list:
    from ..backbones import resolve

    if spec.needs_backbone() and not spec.backbones:
        spec.backbones = [{"text": "minilm", "audio": "resemblyzer"}.get(modality, "mobilenet_v2")]
    backbones = []
    for name in spec.backbones if spec.needs_backbone() else []:
        options: dict[str, Any] = {"image_size": spec.image_size, "seed": spec.seed}
        if modality == "text":
            options = {"max_length": spec.max_length, "trust_remote_code": spec.trust_remote_code, "seed": spec.seed}
        elif modality == "audio":
            options = {
                "clip_seconds": spec.clip_seconds,
                "trust_remote_code": spec.trust_remote_code,
                "seed": spec.seed,
            }
        b = resolve(name, **options)
        if b.modality != modality:
            raise BackboneError(
                f"Backbone '{name}' is for {b.modality} data but the data is {modality}. "
                f"Pass a {modality} backbone with --backbone."
            )
        backbones.append(b)
    return backbones


def prepare_out(spec: RunSpec, data: Any, resume: bool = False) -> Path:
    out = Path(spec.out) if spec.out else default_out(spec, getattr(data, "description", None) or str(data))
    if (out / "results.json").exists():
        raise ConfigError(f"'{out}' already holds a finished run (results.json). Pass another --out or remove it.")
    if not resume and (out / STAGES).exists():
        raise ConfigError(
            f"'{out}' holds an unfinished run. Continue it with `transferlab run --resume {out}`, "
            "or pass another --out."
        )
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("error.txt", "report.html"):
        (out / stale).unlink(missing_ok=True)
    return out


@dataclass(frozen=True)
class RungJob:
    """One rung of the ladder on one backbone (None for the rungs that need none)."""

    strategy: str
    backbone: Any = None
    # settings the time limit changed for this rung ((name, value) pairs; see stages.timelimit)
    overrides: tuple = field(default=(), compare=False)

    def spec_for(self, spec: RunSpec) -> RunSpec:
        """The settings this rung runs with: the run's, with the time limit's cuts."""
        return dataclasses.replace(spec, **dict(self.overrides)) if self.overrides else spec

    @property
    def name(self) -> str:
        """How results.json, the stage files and the log call it: ``frozen:minilm``, ``majority``."""
        return f"{self.strategy}:{self.backbone.name}" if self.backbone else self.strategy


def plan_rungs(spec: RunSpec, backbones: list, task: Task, progress: Progress, rank_only: bool) -> list[RungJob]:
    """The ladder's jobs: the rungs without a backbone once, then per backbone (in ranking order)
    the cheap rungs and, for the ``--top-k`` best, the trained ones; a rung that cannot run on a
    backbone is left out with a note in ``task.notes``."""
    from ..ranking.scores import LEAD_SCORE
    from ..rungs import RUNGS

    trained = {b.name for b in backbones[: spec.top_k or len(backbones)]}
    plan = [RungJob(s) for s in spec.rungs if not RUNGS.get(s).needs_backbone]
    plan += [
        RungJob(s, b)
        for b in backbones
        for s in spec.rungs
        if RUNGS.get(s).needs_backbone and (RUNGS.get(s).cheap or b.name in trained)
    ]
    if rank_only:
        plan = []
    for job in [j for j in plan if j.backbone is not None]:
        reason = RUNGS.get(job.strategy)().applies_to(job.backbone, spec)
        if reason:  # e.g. lora on layers PEFT cannot adapt, zero_shot on an image model without a text tower
            progress.log(f"rung [bold]{job.name}[/] not applicable: {reason}")
            task.notes.append(f"{job.name} was not run: {reason}")
            plan.remove(job)
    if spec.top_k and len(backbones) > spec.top_k:
        cheap = [s for s in spec.rungs if RUNGS.get(s).needs_backbone and RUNGS.get(s).cheap]
        progress.log(
            f"--top-k {spec.top_k}: training only {', '.join(sorted(trained))} (best {LEAD_SCORE.replace('_', ' ')}); "
            f"the others get only {', '.join(cheap) or 'no backbone rung'}."
        )
    return plan


def seed_count(rung, spec: RunSpec) -> int:
    return {"none": 1, "cheap": spec.seeds, "train": spec.train_seeds}.get(rung.seeding, 1)


def seed_draws(
    rung, task: Task, spec: RunSpec, clusters: np.ndarray | None
) -> tuple[list[tuple[int, Task]], list[str]]:
    """The (seed offset, task) each run of a rung gets. Seed k > 0 redraws train/validation from the
    same pooled examples (test untouched) and, for trained rungs, reinitialises; a fixed split
    leaves the cheap, deterministic rungs one run, since every seed would give the same model."""
    from ..data import repartition

    n = seed_count(rung, spec)
    draws, notes = [], []
    for k in range(n):
        draw = task if k == 0 else repartition(task, spec.seed + k, clusters)
        if draw is None:
            if rung.seeding != "train":
                notes.append(
                    f"One seed, not {n}: the train/validation split is fixed (yours, or by time), and "
                    "this rung is deterministic given its split."
                )
                break
            draw = task  # another initialisation and batch order on the same split
        draws.append((k, draw))
    if on_subsample(rung, spec):
        draws = [(k, trained_subsample(draw, spec.trained_fraction, spec.seed + k)) for k, draw in draws]
        n_train = len(draws[0][1].indices("train"))
        notes.append(
            f"Trained on a stratified {spec.trained_fraction:.0%} of the training split ({n_train} of "
            f"{len(task.indices('train'))} examples); validation and test are whole."
        )
    if len(draws) > 1:
        how = "a new random train/validation draw" + (" and initialisation" if rung.seeding == "train" else "")
        seeds = [spec.seed + k for k, _ in draws]
        notes.append(
            f"{len(seeds)} seeds ({', '.join(map(str, seeds))}), each with {how}; test metrics are their "
            "mean, and the interval covers both test resampling and seed variation."
        )
    return draws, notes


def trains_network(rung) -> bool:
    """Whether ``rung`` trains a network on a backbone (fine-tuning, LoRA, the same architecture from
    scratch): the costly rungs, the ones ``trained_fraction`` and the time limit's cuts apply to."""
    return rung.seeding == "train" and rung.needs_backbone


def on_subsample(rung, spec: RunSpec) -> bool:
    """Whether ``rung`` trains on a ``trained_fraction`` of the training split."""
    return spec.trained_fraction < 1 and trains_network(rung)


def trained_subsample(task: Task, fraction: float, seed: int) -> Task:
    """``task`` with a stratified ``fraction`` of its training rows (at least two per class),
    validation and test whole and in their order."""
    train = task.indices("train")
    rng = np.random.default_rng(seed + 11)
    kept = [
        rng.permutation(rows)[: max(2, int(round(len(rows) * fraction)))]
        for rows in (train[task.y[train] == label] for label in np.unique(task.y[train]))
    ]
    keep = np.sort(np.concatenate(kept + [task.indices("val"), task.indices("test")]))
    return task.select(keep)


def duplicate_clusters(task: Task, pairs: list[tuple[str, str]]) -> np.ndarray | None:
    """A cluster id per example: exact copies (one content hash) and the examples the audit found
    to be near-duplicates (``pairs`` of content hashes) share one, so a redrawn train/validation
    split keeps them on one side. None when every example stands alone."""
    rows: dict[str, list[int]] = {}
    for i, h in enumerate(task.hashes):
        rows.setdefault(h, []).append(i)
    links = [(r[0], j) for r in rows.values() for j in r[1:]]
    links += [(rows[ha][0], rows[hb][0]) for ha, hb in pairs or [] if ha in rows and hb in rows]
    if not links:
        return None
    parent = list(range(len(task.items)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in links:
        parent[find(a)] = find(b)
    return np.array([find(i) for i in range(len(task.items))])
