"""A run, top to bottom: data -> split -> features -> ladder -> held-out evaluation -> results.

Everything the user could get wrong (settings, data, backbone names) is checked before the run
directory is created; results.json and report.html are written last, atomically, so a run
directory that has them is complete and one that failed says so in ``error.txt``. Each stage
lives in ``transferlab.stages``; this module is the public API and the order the stages run in.
"""

from __future__ import annotations

import time
import traceback
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from .config import RunSpec
from .data import Dataset, Task
from .errors import ConfigError, TransferlabError
from .features.store import FeatureStore
from .progress import Progress
from .results import RunResults
from .stages import (
    AuditOutcome,
    RunClock,
    RungCache,
    RungJob,
    RungStage,
    RunPlan,
    StageStore,
    check_rung_data,
    costly,
    duplicate_clusters,
    embed_planned,
    feature_stores,
    fit_rung,
    judge,
    limit_rungs,
    limit_summary,
    make_plan,
    mark_reused,
    ood_item_count,
    ood_sets,
    plan_run,
    plan_rungs,
    prepare_out,
    prepare_task,
    rank_stage,
    read_run_state,
    recalibrate,
    replan_rungs,
    resolve_backbones,
    retime,
    run_audit_stage,
    safe_name,
    task_block,
    with_achieved,
    write_results,
    write_run_state,
)


def run(data: Any = None, *, quiet: bool = False, spec: RunSpec | None = None, **settings: Any) -> RunResults:
    """Run the ladder; see :class:`RunSpec` for ``settings``."""
    return _start(data, spec or RunSpec(**settings), quiet, rank_only=False)


def audit(data: Any = None, *, quiet: bool = False, spec: RunSpec | None = None, **settings: Any) -> RunResults:
    """Audit the data alone (duplicates, leakage, label conflicts, imbalance, shifts); no rung is run.

    With ``backbones``, the first one embeds the examples for the embedding-based near-duplicate search.
    """
    settings.setdefault("rungs", ["frozen"] if settings.get("backbones") else ["majority"])
    settings.setdefault("on_leakage", "warn")  # the audit alone reports; it has nothing to protect
    spec = spec or RunSpec(**settings)
    return _start(data, spec, quiet, rank_only=True, audit_only=True)


def rank(data: Any = None, *, quiet: bool = False, spec: RunSpec | None = None, **settings: Any) -> RunResults:
    """Score candidate backbones on the training split without training any; same results.json."""
    settings.setdefault("rungs", ["frozen"])  # needs a backbone; no rung is run
    spec = spec or RunSpec(**settings)
    if not spec.backbones:
        raise ConfigError("rank needs candidates: pass --backbone at least once (e.g. --backbone minilm).")
    return _start(data, spec, quiet, rank_only=True)


def plan(data: Any = None, *, spec: RunSpec | None = None, **settings: Any) -> RunPlan:
    """What :func:`run` with these settings will cost, stage by stage, measured on this machine;
    nothing is trained and no run directory is made."""
    return plan_run(data, spec or RunSpec(**settings))


def resume(run_dir: str | Path, data: Any = None, *, quiet: bool = False) -> RunResults:
    """Continue a run that stopped (crash, kill, power cut) where it stopped.

    The settings come from the run directory's spec.json; the data from ``data`` or, when the run
    read a file or folder, from the path it recorded. Finished stages (audit, ranking, each rung)
    are read back, never redone; the rest runs with the same seeds, so the results equal those of
    an uninterrupted run.
    """
    out = Path(run_dir)
    spec, recorded, mode = read_run_state(out)
    if data is None:
        data = recorded
        if data is None:
            raise ConfigError(
                f"'{out}' was run on in-memory data; pass the same data again: transferlab.resume(run_dir, data)."
            )
        if data.startswith("demo:"):
            from .demo import demo_data

            data = demo_data(data.split(":", 1)[1])
    for leftover in out.rglob(".*.tmp"):  # half-written files of the process that stopped
        leftover.unlink(missing_ok=True)
    return _start(data, spec, quiet, rank_only=mode != "run", audit_only=mode == "audit", resume=True)


def _start(
    data: Any, spec: RunSpec, quiet: bool, rank_only: bool, audit_only: bool = False, resume: bool = False
) -> RunResults:
    from .devices import processes

    procs = processes()
    if procs.distributed:
        return _start_launched(data, spec, quiet, rank_only, audit_only, resume, procs)
    return _start_here(data, spec, quiet, rank_only, audit_only, resume)


def _start_launched(
    data: Any, spec: RunSpec, quiet: bool, rank_only: bool, audit_only: bool, resume: bool, procs
) -> RunResults:
    """One of N processes of ``accelerate launch`` / ``torchrun``: every process runs the same run
    (the trainable rungs train data-parallel across them); the first writes the run directory, the
    others a private temporary one that is removed at the end."""
    import dataclasses
    import shutil
    import tempfile

    if resume:
        raise ConfigError(
            "--resume runs in a single process: run `transferlab run --resume RUN_DIR` without "
            "accelerate launch or torchrun (the finished stages are read back; the rest trains "
            "on one device)."
        )
    if spec.executor != "local":
        raise ConfigError(
            "executor ray and a multi-process launch (accelerate launch / torchrun) do not combine: "
            "use one or the other."
        )
    if procs.main:
        return _start_here(data, spec, quiet, rank_only, audit_only, resume)
    private = tempfile.mkdtemp(prefix=f"transferlab-process{procs.index}-")
    try:
        return _start_here(
            data, dataclasses.replace(spec, out=private, mlflow=None), True, rank_only, audit_only, resume
        )
    finally:
        shutil.rmtree(private, ignore_errors=True)


def _start_here(
    data: Any, spec: RunSpec, quiet: bool, rank_only: bool, audit_only: bool = False, resume: bool = False
) -> RunResults:
    """The run in this process. Library warnings are kept out of the terminal, in warnings.txt."""
    from .library_warnings import captured

    progress = Progress(quiet)
    began = time.time()  # the time limit counts from here, the measuring of the plan included
    with captured(progress.log) as caught:
        task = prepare_task(data, spec)
        backbones = resolve_backbones(spec, task.modality)
        ood = {} if rank_only or audit_only else ood_sets(task, spec)
        if not rank_only:
            check_rung_data(task, spec)
        plan = make_plan(
            task,
            backbones,
            spec,
            rank_only=rank_only,
            audit_only=audit_only,
            ood_items=ood_item_count(task, spec, rank_only or audit_only, ood, backbones),
        )
        progress.log(plan.table(), soft_wrap=True)
        clock = RunClock(plan, progress, began)
        out = caught.out = prepare_out(spec, data, resume)
        stages = StageStore(out)
        if not resume:
            path = getattr(data, "reference", None) if isinstance(data, (Dataset, Task)) else str(Path(data).resolve())
            write_run_state(out, path, "audit" if audit_only else "rank" if rank_only else "run", spec)
        (out / "error.txt").unlink(missing_ok=True)
        try:
            with clock.stage("audit"):
                audit = run_audit_stage(task, backbones, spec, progress, stages, rank_only)
            if audit_only:
                return write_results(
                    {
                        "task": task_block(audit.task),
                        "audit": audit.record,
                        "ranking": [],
                        "rungs": [],
                        "plan": clock.record(),
                    },
                    audit.task,
                    spec,
                    out,
                    time.perf_counter(),
                )
            return _run(audit, backbones, spec, out, progress, rank_only, ood, stages, clock)
        except BaseException as exc:
            (out / "error.txt").write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
            raise


def _run(
    audit: AuditOutcome,
    backbones: list,
    spec: RunSpec,
    out: Path,
    progress: Progress,
    rank_only: bool,
    ood: dict[str, dict],
    stages: StageStore,
    clock: RunClock,
) -> RunResults:
    """After the audit: rank the candidates, fit the ladder on the best, judge it, write the results."""
    import torch

    from .devices import processes

    if spec.threads:
        torch.set_num_threads(spec.threads)
    started = time.perf_counter()
    task, sizes = audit.task, audit.task.sizes()
    progress.log(
        f"[bold]transferlab[/] {task.description}: {task.modality}, {len(task.classes)} classes, "
        f"train {sizes['train']} / val {sizes['val']} / test {sizes['test']}"
    )
    features = feature_stores(backbones, task, spec, progress, audit.embedded)
    embed_planned(clock.plan, features, clock)
    recalibrate(clock.plan, features)  # the rung stages are planned again below, from the measured speeds
    with clock.stage("ranking"):
        ranking = rank_stage(backbones, features, task, spec, progress, stages)
    order = [c.backbone for c in ranking]
    jobs = plan_rungs(spec, sorted(backbones, key=lambda b: order.index(b.name)), task, progress, rank_only)
    clusters = duplicate_clusters(task, audit.pairs)
    cache = RungCache(task, spec, out, clusters, ood, progress, enabled=not processes().distributed)
    resumed = {j.name for j in jobs if stages.path(f"rungs/{safe_name(j.name)}").exists()}

    def ready(job: RungJob) -> bool:  # fitted already: costs no time
        return job.name in resumed or cache.has(job)

    if spec.time_limit is not None:
        # the cheap rungs always run, first; the costly ones are then cut to the time really left
        cheap = [j for j in limit_rungs(clock, jobs, task, spec, ready, progress, final=False) if not costly(j)]
        fitted = _fit_rungs(cheap, features, task, spec, out, progress, ood, clusters, stages, clock, cache)
        retime(clock, [j for j in jobs if costly(j)], task, spec, ready, progress)
        trained = limit_rungs(clock, [j for j in jobs if costly(j)], task, spec, ready, progress)
        fitted.update(_fit_rungs(trained, features, task, spec, out, progress, ood, clusters, stages, clock, cache))
        jobs = cheap + trained
    else:  # the jobs the ranking chose (--top-k), at the speeds the embedding measured
        replan_rungs(clock.plan, jobs, task, spec)
        mark_reused(clock.plan, jobs, ready)
        fitted = _fit_rungs(jobs, features, task, spec, out, progress, ood, clusters, stages, clock, cache)
    records = [fitted[job.name].record for job in jobs]
    curves = {job.name: fitted[job.name].learning_curve for job in jobs if fitted[job.name].learning_curve}
    plan_record = clock.record()
    judgement = judge(records, task, spec, audit.record, plan_record.get("time_limit"))
    if spec.time_limit is not None:
        task.notes.extend(limit_summary(spec, plan_record, records, curves, time.time() - clock.began))
    return write_results(
        {
            "task": task_block(task),
            "audit": audit.record,
            "ranking": with_achieved(ranking, records),
            "rungs": records,
            "verdicts": judgement.verdicts,
            "learning_curve": {"metric": spec.metric, "target": spec.target, "rungs": curves} if curves else {},
            "recommendation": judgement.recommendation,
            "plan": plan_record,
        },
        task,
        spec,
        out,
        started,
    )


def _fit_rungs(
    jobs: list[RungJob],
    features: dict[str, FeatureStore],
    task: Task,
    spec: RunSpec,
    out: Path,
    progress: Progress,
    ood: dict[str, dict],
    clusters: np.ndarray | None,
    stages: StageStore,
    clock: RunClock,
    cache: RungCache,
) -> dict[str, RungStage]:
    """Each job's finished stage: read back from an unfinished run, reused from an earlier run
    (the rung cache), or fitted here or on Ray."""
    fitted: dict[str, RungStage] = {}
    pending = []
    for job in jobs:
        saved = stages.load(f"rungs/{safe_name(job.name)}")
        if saved is not None:
            progress.log(f"rung [bold]{job.name}[/]: read back from the unfinished run")
            fitted[job.name] = RungStage.from_dict(saved)
        elif (reused := cache.reuse(job)) is not None:
            fitted[job.name] = RungStage.from_dict(stages.save(f"rungs/{safe_name(job.name)}", reused.to_dict()))
        else:
            pending.append(job)

    def done(job: RungJob, stage: RungStage) -> None:
        fitted[job.name] = RungStage.from_dict(stages.save(f"rungs/{safe_name(job.name)}", stage.to_dict()))
        cache.keep(job, fitted[job.name])

    deadlines = clock.limiter
    if spec.executor == "ray" and pending:
        from .executors import run_rungs_on_ray

        used = {job.backbone.name for job in pending if job.backbone is not None}
        run_rungs_on_ray(
            pending,
            task,
            spec,
            out,
            {n: f for n, f in features.items() if n in used},
            progress,
            ood,
            clusters,
            done,
            stop_at=deadlines.end if deadlines else None,
        )
    else:
        for job in pending:
            with clock.stage(job.name), deadlines.rung(job) if deadlines else nullcontext():
                done(job, fit_rung(job, features, task, spec, out, progress, ood, clusters))
    return fitted


__all__ = ["run", "rank", "audit", "plan", "resume", "prepare_task", "resolve_backbones", "TransferlabError"]
