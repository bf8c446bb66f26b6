"""Where the ladder's work runs: in this process (``local``), or as Ray tasks (``ray``).

With Ray, each run of a rung (one rung, one candidate, one seed) is a task that requests
``threads`` CPUs (default 1); a task that trains a backbone also requests ``ray_gpus`` GPUs, and
trains on the GPU Ray gives it. A request no node of the cluster can meet is refused before any
task is submitted (Ray would otherwise wait for it forever). The driver extracts every
candidate's features first, so tasks share them through Ray's object store instead of
re-embedding; the first seed of each rung also saves its model, scores the out-of-distribution
sets and fits its learning curve, because those need the fitted model, which lives in the task. The run directory must therefore be reachable
from every node (a local Ray, or a shared filesystem on a cluster).

Results equal the local executor's for the same seeds and the same ``threads`` (each task sets
torch to that many threads; the local executor uses ``threads`` too when it is set).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from .errors import ConfigError, MissingDependencyError
from .features.store import FeatureStore
from .stages import RungJob, RungStage, assemble_rung, seed_draws


def _strip(result):
    """A rung's output without its fitted model and the closure over it (they stay in the task)."""
    result.model = result.refit_predict = None
    return result


def _seed_task(
    strategy: str,
    backbone_name: str | None,
    k: int,
    n: int,
    draw,
    task,
    spec,
    features: dict | None,
    out: str,
    ood: dict,
    stop_at: float | None = None,
) -> tuple[Any, dict | None]:
    import torch

    from .progress import Progress
    from .rungs import RUNGS
    from .stages import PreloadedFeatures, first_seed_extras, fit_seed, resolve_backbones
    from .training.deadline import deadline

    torch.set_num_threads(spec.threads or 1)
    progress = Progress(quiet=True)
    rung = RUNGS.get(strategy)()
    backbone = None
    if backbone_name is not None:
        one = type(spec)(**{**spec.to_dict(), "backbones": [backbone_name]})
        backbone = resolve_backbones(one, task.modality)[0]
    feats = None
    if features is not None:  # the driver's arrays, shared through Ray's object store
        feats = PreloadedFeatures(features["arrays"], features["seconds"], features["items"], task)
    name = f"{strategy}:{backbone_name}" if backbone_name else strategy
    with deadline(stop_at):  # the run's time limit: training stops there, keeping its best epoch
        result = fit_seed(rung, name, k, n, draw, spec, backbone, feats, progress)
        extras = first_seed_extras(result, rung, name, task, spec, feats, Path(out), ood, progress) if k == 0 else None
    return _strip(result), extras


def _check_reachable(address: str | None, timeout: float = 5.0) -> None:
    """Fail fast on a cluster address nothing answers at (Ray itself retries for minutes)."""
    import socket

    if not address or address == "auto":
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--ray-address {address!r} is not host:port, ray://host:port or auto.")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ConfigError(
            f"Could not reach the Ray cluster at {address!r} ({exc}). Check the address (e.g. auto, "
            "or ray://head:10001), or leave --ray-address out for a local Ray."
        ) from None


def _check_gpus(per_task: float, nodes: list[dict]) -> None:
    """Refuse a GPU request no live node can meet."""
    most = max((n.get("Resources", {}).get("GPU", 0) for n in nodes if n.get("Alive", True)), default=0)
    if most < per_task:
        raise ConfigError(
            f"--ray-gpus {per_task:g}: no node of the Ray cluster has {per_task:g} GPU"
            f"{'s' if per_task != 1 else ''} (the most on one node: {most:g}). Lower --ray-gpus, "
            "use 0 to train on CPUs, or add GPU nodes to the cluster."
        )


def run_rungs_on_ray(
    plan: list[RungJob],
    task,
    spec,
    out: Path,
    features: dict[str, FeatureStore],
    progress,
    ood: dict,
    clusters,
    on_done: Callable[[RungJob, RungStage], None],
    stop_at: float | None = None,
) -> None:
    """Run every job of ``plan`` with all its seeds as Ray tasks; call ``on_done(job, stage)`` as
    each rung's last seed finishes, in plan order. ``stop_at`` (``time.time()``): where the run's
    time limit stops the rungs that train (they run side by side, so they share one deadline)."""
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("--executor ray needs Ray: pip install 'transferlab[distributed]'.") from None
    from .rungs import RUNGS

    if not ray.is_initialized():
        _check_reachable(spec.ray_address)
        try:
            ray.init(
                address=spec.ray_address,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
                ignore_reinit_error=True,
            )
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise ConfigError(
                f"Could not reach the Ray cluster at {spec.ray_address!r}: {exc}. Check the address "
                "(e.g. auto, or ray://head:10001), or leave --ray-address out for a local Ray."
            ) from None
    remote = ray.remote(num_cpus=spec.threads or 1, max_retries=0)(_seed_task)
    trains = remote.options(num_gpus=spec.ray_gpus)  # the rungs that train a backbone
    if spec.ray_gpus and any(RUNGS.get(job.strategy).seeding == "train" for job in plan):
        _check_gpus(spec.ray_gpus, ray.nodes())
    shared = {"task": ray.put(task), "spec": ray.put(spec), "ood": ray.put(ood)}
    feature_refs = {}
    for name, feats in features.items():
        arrays = {s: np.ascontiguousarray(feats(s)) for s in ("train", "val", "test")}
        feature_refs[name] = ray.put({"arrays": arrays, "seconds": feats.seconds, "items": feats.items})

    jobs = []  # per rung: (job, rung, draws, notes, [refs])
    for job in plan:
        rung = RUNGS.get(job.strategy)()
        job_spec = job.spec_for(spec)  # the time limit's cuts, if any
        draws, notes = seed_draws(rung, task, job_spec, clusters)
        bname = job.backbone.name if job.backbone else None
        submit = trains if rung.seeding == "train" else remote
        refs = [
            submit.remote(
                job.strategy,
                bname,
                k,
                len(draws),
                ray.put(draw) if draw is not task else shared["task"],
                shared["task"],
                shared["spec"] if job_spec is spec else ray.put(job_spec),
                feature_refs.get(bname) if bname else None,
                str(out),
                shared["ood"],
                stop_at if rung.seeding == "train" else None,
            )
            for k, draw in draws
        ]
        jobs.append((job, rung, draws, notes, refs))
    progress.log(
        f"Ray: {sum(len(j[-1]) for j in jobs)} tasks for {len(jobs)} rungs on "
        f"{int(ray.cluster_resources().get('CPU', 0))} CPUs"
    )
    with progress.task("rungs on Ray", len(jobs)) as update:
        for job, rung, draws, notes, refs in jobs:
            outputs = ray.get(refs)
            results = [r for r, _ in outputs]
            extras = outputs[0][1] or {}
            stage = assemble_rung(
                job.name, rung, job.backbone, results, [spec.seed + k for k, _ in draws], notes, extras, task, progress
            )
            on_done(job, stage)
            update(1)
