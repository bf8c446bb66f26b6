"""A run, top to bottom: data -> split -> features -> ladder -> held-out evaluation -> results.

Everything the user could get wrong (settings, data, backbone names) is checked before the run
directory is created; results.json and report.html are written last, atomically, so a run
directory that has them is complete and one that failed says so in ``error.txt``. Each stage
lives in ``transferlab.stages``; this module is the public API and the order the stages run in.
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path
from typing import Any

from .config import RunSpec
from .data import Dataset, Task
from .errors import ConfigError, TransferlabError
from .progress import Progress
from .results import RunResults
from .stages import (
    CachedFeatures,
    StageStore,
    check_rung_data,
    duplicate_clusters,
    fit_rung,
    ood_sets,
    prepare_out,
    prepare_task,
    rank_candidate,
    read_run_state,
    resolve_backbones,
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
            raise ConfigError(f"'{out}' was run on in-memory data; pass the same data again: "
                              "transferlab.resume(run_dir, data).")
        if data.startswith("demo:"):
            from .demo import demo_data

            data = demo_data(data.split(":", 1)[1])
    for leftover in out.rglob(".*.tmp"):  # half-written files of the process that stopped
        leftover.unlink(missing_ok=True)
    return _start(data, spec, quiet, rank_only=mode != "run", audit_only=mode == "audit", resume=True)


def _start(data: Any, spec: RunSpec, quiet: bool, rank_only: bool, audit_only: bool = False,
           resume: bool = False) -> RunResults:
    from .devices import processes

    procs = processes()
    if procs.distributed:
        return _start_launched(data, spec, quiet, rank_only, audit_only, resume, procs)
    return _start_here(data, spec, quiet, rank_only, audit_only, resume)


def _start_launched(data: Any, spec: RunSpec, quiet: bool, rank_only: bool, audit_only: bool, resume: bool,
                    procs) -> RunResults:
    """One of N processes of ``accelerate launch`` / ``torchrun``: every process runs the same run
    (the trainable rungs train data-parallel across them); the first writes the run directory, the
    others a private temporary one that is removed at the end."""
    import dataclasses
    import shutil
    import tempfile

    if resume:
        raise ConfigError("--resume runs in a single process: run `transferlab run --resume RUN_DIR` without "
                          "accelerate launch or torchrun (the finished stages are read back; the rest trains "
                          "on one device).")
    if spec.executor != "local":
        raise ConfigError("executor ray and a multi-process launch (accelerate launch / torchrun) do not combine: "
                          "use one or the other.")
    if procs.main:
        return _start_here(data, spec, quiet, rank_only, audit_only, resume)
    private = tempfile.mkdtemp(prefix=f"transferlab-process{procs.index}-")
    try:
        return _start_here(data, dataclasses.replace(spec, out=private, mlflow=None), True, rank_only, audit_only,
                           resume)
    finally:
        shutil.rmtree(private, ignore_errors=True)


def _start_here(data: Any, spec: RunSpec, quiet: bool, rank_only: bool, audit_only: bool = False,
                resume: bool = False) -> RunResults:
    """The run in this process. Library warnings are kept out of the terminal, in warnings.txt."""
    from .library_warnings import captured

    progress = Progress(quiet)
    with captured(progress.log) as caught:
        task = prepare_task(data, spec)
        backbones = resolve_backbones(spec, task.modality)
        ood = {} if rank_only or audit_only else ood_sets(task, spec)
        if not rank_only:
            check_rung_data(task, spec)
        out = caught.out = prepare_out(spec, data, resume)
        stages = StageStore(out)
        if not resume:
            path = getattr(data, "reference", None) if isinstance(data, (Dataset, Task)) else str(Path(data).resolve())
            write_run_state(out, path, "audit" if audit_only else "rank" if rank_only else "run", spec)
        (out / "error.txt").unlink(missing_ok=True)
        try:
            task, audit, embedded = run_audit_stage(task, backbones, spec, progress, stages, rank_only)
            if audit_only:
                return write_results({"task": task_block(task), "audit": audit, "ranking": [], "rungs": []},
                                     task, spec, out, time.perf_counter())
            return _run(task, backbones, spec, out, progress, rank_only, ood, audit, embedded, stages)
        except BaseException as exc:
            (out / "error.txt").write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
            raise


def _run(task: Task, backbones: list, spec: RunSpec, out: Path, progress: Progress, rank_only: bool,
         ood: dict[str, dict], audit: dict, embedded: dict | None, stages: StageStore | None = None) -> RunResults:
    import torch

    from .rungs import RUNGS

    if spec.threads:
        torch.set_num_threads(spec.threads)
    started = time.perf_counter()
    sizes = task.sizes()
    progress.log(f"[bold]transferlab[/] {task.description}: {task.modality}, {len(task.classes)} classes, "
                 f"train {sizes['train']} / val {sizes['val']} / test {sizes['test']}")
    features = {b.name: CachedFeatures(b, task, spec, progress, embedded if embedded and embedded["backbone"] == b.name
                                       else None) for b in backbones}
    stages = stages or StageStore(out, enabled=False)
    saved = stages.load("ranking")
    if saved is not None and [c["backbone"] for c in saved["ranking"]] and \
            sorted(c["backbone"] for c in saved["ranking"]) == sorted(b.name for b in backbones):
        ranking = saved["ranking"]
    else:
        ranking = [rank_candidate(b, features[b.name], task, spec, progress) for b in backbones]
        ranking = stages.save("ranking", {"ranking": ranking})["ranking"]
    from .ranking.scores import LEAD_SCORE

    ranking.sort(key=lambda c: c["scores"].get(LEAD_SCORE, float("-inf")), reverse=True)
    order = {c["backbone"]: i for i, c in enumerate(ranking)}
    backbones = sorted(backbones, key=lambda b: order[b.name])
    trained = {b.name for b in backbones[: spec.top_k or len(backbones)]}

    plan = [(s, None) for s in spec.rungs if not RUNGS.get(s).needs_backbone]
    plan += [(s, b) for b in backbones for s in spec.rungs
             if RUNGS.get(s).needs_backbone and (RUNGS.get(s).cheap or b.name in trained)]
    if rank_only:
        plan = []
    for strategy, backbone in [p for p in plan if p[1] is not None]:
        reason = RUNGS.get(strategy)().applies_to(backbone, spec)
        if reason:  # e.g. lora on layers PEFT cannot adapt, zero_shot on an image model without a text tower
            progress.log(f"rung [bold]{strategy}:{backbone.name}[/] not applicable: {reason}")
            task.notes.append(f"{strategy}:{backbone.name} was not run: {reason}")
            plan.remove((strategy, backbone))
    if spec.top_k and len(backbones) > spec.top_k:
        cheap = [s for s in spec.rungs if RUNGS.get(s).needs_backbone and RUNGS.get(s).cheap]
        progress.log(f"--top-k {spec.top_k}: training only {', '.join(sorted(trained))} (best {LEAD_SCORE.replace('_', ' ')}); "
                     f"the others get only {', '.join(cheap) or 'no backbone rung'}.")
    clusters = duplicate_clusters(task, audit)
    stage_of, pending = {}, []
    for strategy, backbone in plan:
        name = f"{strategy}:{backbone.name}" if backbone else strategy
        saved = stages.load(f"rungs/{safe_name(name)}")
        if saved is None:
            pending.append((strategy, backbone))
        else:
            progress.log(f"rung [bold]{name}[/]: read back from the unfinished run")
            stage_of[name] = saved

    def done(strategy: str, backbone, stage: dict) -> None:
        name = f"{strategy}:{backbone.name}" if backbone else strategy
        stage_of[name] = stages.save(f"rungs/{safe_name(name)}", stage)

    if spec.executor == "ray" and pending:
        from .executors import run_rungs_on_ray

        used = {b.name for _, b in pending if b is not None}
        run_rungs_on_ray(pending, task, spec, out, {n: f for n, f in features.items() if n in used}, progress, ood,
                         clusters, done)
    else:
        for strategy, backbone in pending:
            done(strategy, backbone, fit_rung(strategy, backbone, features, task, spec, out, progress, ood, clusters))
    records, curves = [], {}
    for strategy, backbone in plan:
        name = f"{strategy}:{backbone.name}" if backbone else strategy
        records.append(stage_of[name]["record"])
        if stage_of[name].get("learning_curve"):
            curves[name] = stage_of[name]["learning_curve"]

    from .verdicts import VerdictContext, run_verdicts
    from .verdicts.recommendation import recommend

    ctx = VerdictContext(records, task.part("test")[1], task.part("train")[1], task.classes, spec.metric,
                         audit["findings"], audit.get("policy", ""), y_val=task.part("val")[1],
                         split_by="time" if task.times is not None else "group" if task.groups is not None else "",
                         dedupe=audit.get("dedupe") or {})
    verdicts = run_verdicts(ctx)
    return write_results({
        "task": task_block(task),
        "audit": audit,
        "ranking": with_achieved(ranking, records),
        "rungs": records,
        "verdicts": verdicts,
        "learning_curve": {"metric": spec.metric, "target": spec.target, "rungs": curves} if curves else {},
        "recommendation": recommend(ctx) if records else None,
    }, task, spec, out, started)

__all__ = ["run", "rank", "audit", "resume", "prepare_task", "resolve_backbones", "TransferlabError"]
