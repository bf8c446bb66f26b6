"""The last stage: results.json, spec.json, the split manifest and report.html, written atomically
so that a run directory holding results.json is a finished run."""

from __future__ import annotations

import platform
import time
from pathlib import Path

from ..config import RunSpec
from ..data import Task, write_manifest
from ..results import SCHEMA, RunResults, write_json_atomic
from ..version import __version__


def _environment(spec: RunSpec) -> dict:
    import torch

    from ..devices import processes

    procs = processes()
    return {
        "transferlab": __version__,
        "torch": torch.__version__,
        "device": procs.device.type,
        "seed": spec.seed,
        "processes": procs.count,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "threads": torch.get_num_threads(),
    }


def task_block(task: Task) -> dict:
    return {"modality": task.modality, "labels": task.classes, "splits": task.sizes(), "source": task.description}


def write_results(sections: dict, task: Task, spec: RunSpec, out: Path, started: float) -> RunResults:
    """Write results.json and report.html (atomically, last) and return the results."""
    from ..report import write_html

    write_manifest(task, out / "split_manifest.csv")
    results = RunResults(
        {
            "schema": SCHEMA,
            "notes": list(spec.notes) + task.notes,
            "verdicts": [],
            "recommendation": None,
            **sections,
            "environment": {**_environment(spec), "wall_seconds": round(time.perf_counter() - started, 1)},
            "artifacts": {"split manifest": "split_manifest.csv", "run spec": "spec.json", "results": "results.json"},
        }
    )
    write_json_atomic({"schema": "transferlab.spec/1", **spec.to_dict()}, out / "spec.json")
    write_json_atomic(results, out / "results.json")
    write_html(results, out / "report.html")
    results.path = out
    if spec.mlflow:  # after the run is saved; a tracking failure is reported, never raised
        from ..tracking import log_to_mlflow

        log_to_mlflow(results, out, spec)
    return results
