"""Log a finished run to MLflow: one parent run for the transferlab run, one nested run per rung.

It runs after results.json and report.html are written, through an explicit ``MlflowClient``
(no global active run), so a tracking failure cannot touch the finished run: it is reported on
stderr and in ``tracking_error.txt``, and :func:`log_finished_run` logs the run again later.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from .config import RunSpec
from .errors import require

MAX_PARAM = 6000  # MLflow's limit on a parameter value
CURVES = ("train_loss", "train_metric", "val_loss", "val_metric")


def _key(name: str) -> str:
    """MLflow keys allow letters, digits and _ - . space /; rung and OOD names may hold ':'."""
    return re.sub(r"[^A-Za-z0-9_\-. /]", "_", name)


def _param(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= MAX_PARAM else text[: MAX_PARAM - 3] + "..."


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _headline(prefix: str, block: dict | None) -> dict[str, float]:
    """accuracy, balanced_accuracy, macro_f1 (+ CI bounds) and ece of a metrics block."""
    out: dict[str, float] = {}
    for name, value in (block or {}).items():
        if isinstance(value, dict) and _number(value.get("mean")) is not None:
            out[f"{prefix}{name}"] = float(value["mean"])
            ci = value.get("ci") or [None, None]
            for bound, v in zip(("ci_low", "ci_high"), ci):
                if _number(v) is not None:
                    out[f"{prefix}{name}_{bound}"] = float(v)
        elif name == "ece" and _number(value) is not None:
            out[f"{prefix}ece"] = float(value)
    return out


def rung_metrics(rung: dict) -> dict[str, float]:
    """Every scalar metric of a rung: test and validation scores, cost, OOD scores and drops."""
    metrics = {**_headline("test_", rung.get("test")), **_headline("val_", rung.get("val"))}
    for name, value in (rung.get("cost") or {}).items():
        if _number(value) is not None:
            metrics[f"cost_{name}"] = float(value)
    for name, scores in (rung.get("ood") or {}).items():
        metrics.update(_headline(f"ood_{_key(name)}_", scores))
        for m, drop in (scores.get("drop") or {}).items():
            if _number(drop) is not None:
                metrics[f"ood_{_key(name)}_drop_{m}"] = float(drop)
    return metrics


def _curve_history(curves: dict | None, timestamp: int) -> list:
    """Per-epoch curves as metric histories, step = epoch."""
    from mlflow.entities import Metric

    curves = curves or {}
    history = []
    for key in CURVES:
        for epoch, value in zip(curves.get("epoch") or [], curves.get(key) or []):
            if _number(value) is not None and _number(epoch) is not None:
                history.append(Metric(f"curve_{key}", float(value), timestamp, int(epoch)))
    return history


def _log(
    client, run_id: str, params: dict[str, Any], metrics: dict[str, float], tags: dict[str, Any], history: list = ()
) -> None:
    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000)
    batch = [Metric(_key(k), v, now, 0) for k, v in metrics.items()] + list(history)
    params_ = [Param(_key(k), _param(v)) for k, v in params.items()]
    tags_ = [RunTag(k, _param(v)) for k, v in tags.items()]
    for lo in range(0, max(len(batch), len(params_), len(tags_), 1), 100):  # MLflow caps params per batch at 100
        client.log_batch(run_id, metrics=batch[lo : lo + 100], params=params_[lo : lo + 100], tags=tags_[lo : lo + 100])


def _spec_params(spec: RunSpec) -> dict[str, Any]:
    return {k: v for k, v in spec.to_dict().items() if k not in ("notes",)}


def _parent(results: dict, spec: RunSpec) -> tuple[dict, dict, dict]:
    task = results.get("task") or {}
    rec = results.get("recommendation") or {}
    tags = {
        "transferlab.modality": task.get("modality"),
        "transferlab.labels": ", ".join(map(str, task.get("labels", []))),
        "transferlab.data": task.get("source"),
        "transferlab.recommendation": rec.get("rung"),
        "transferlab.recommendation_why": rec.get("why"),
        "transferlab.verdicts": ", ".join(sorted({v["code"] for v in results.get("verdicts") or []})),
        "transferlab.version": (results.get("environment") or {}).get("transferlab"),
    }
    metrics = {f"n_{split}": float(n) for split, n in (task.get("splits") or {}).items() if _number(n) is not None}
    wall = (results.get("environment") or {}).get("wall_seconds")
    if _number(wall) is not None:
        metrics["wall_seconds"] = float(wall)
    for r in results.get("rungs") or []:  # the recommended rung's scores, to sort runs by in the MLflow UI
        if r["name"] == rec.get("rung"):
            metrics.update({f"recommended_{k}": v for k, v in _headline("test_", r.get("test")).items()})
    return _spec_params(spec), metrics, {k: v for k, v in tags.items() if v not in (None, "")}


def _child(rung: dict) -> tuple[dict, dict, dict]:
    params = {"strategy": rung.get("strategy"), "backbone": rung.get("backbone"), "seeds": rung.get("seeds")}
    params.update({f"chosen.{k}": v for k, v in (rung.get("chosen") or {}).items()})
    tags = {"transferlab.rung": rung["name"], "transferlab.description": rung.get("description")}
    return params, rung_metrics(rung), {k: v for k, v in tags.items() if v}


def log_to_mlflow(results: dict, out: Path, spec: RunSpec) -> str | None:
    """Log the finished run; returns the parent MLflow run id, or None when logging failed
    (the reason is printed and written to ``out/tracking_error.txt``; the run itself is complete)."""
    try:
        run_id = _log_run(results, Path(out), spec)
    except Exception as exc:  # the run is finished and saved: report, never raise
        (Path(out) / "tracking_error.txt").write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
        print(
            f"warning: logging to MLflow at {spec.mlflow} failed ({type(exc).__name__}: {exc}). The run itself is "
            f"complete in {out}; details in tracking_error.txt. Log it again with "
            f"transferlab.tracking.log_finished_run('{out}', '{spec.mlflow}').",
            file=sys.stderr,
        )
        return None
    print(f"MLflow: logged run {run_id} to experiment '{spec.mlflow_experiment}' at {spec.mlflow}", file=sys.stderr)
    return run_id


def _artifact_location(uri: str) -> str | None:
    """A SQLite store's artifacts go next to its database file (MLflow's default is ./mlruns in
    whatever folder the run was started from)."""
    if uri.startswith("sqlite:///") and uri != "sqlite:///:memory:":
        return (Path(uri[len("sqlite:///") :]).expanduser().resolve().parent / "mlartifacts").as_uri()
    return None


def _log_run(results: dict, out: Path, spec: RunSpec) -> str:
    require("mlflow", "tracking")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=spec.mlflow)
    experiment = client.get_experiment_by_name(spec.mlflow_experiment)
    experiment_id = (
        experiment.experiment_id
        if experiment
        else client.create_experiment(spec.mlflow_experiment, artifact_location=_artifact_location(spec.mlflow))
    )
    name = spec.name or out.name
    parent = client.create_run(experiment_id, run_name=name, tags={"transferlab.run_dir": str(out.resolve())})
    pid = parent.info.run_id
    try:
        _log(client, pid, *_parent(results, spec))
        with tempfile.TemporaryDirectory() as tmp:
            for file in ("report.html", "results.json", "spec.json", "split_manifest.csv"):
                if (out / file).is_file():
                    client.log_artifact(pid, str(out / file))
            # the same settings as a YAML spec: transferlab run --config spec.yaml reproduces them
            client.log_artifact(pid, str(spec.to_yaml(Path(tmp) / "spec.yaml")))
        for rung in results.get("rungs") or []:
            child = client.create_run(experiment_id, run_name=rung["name"], tags={"mlflow.parentRunId": pid})
            params, metrics, tags = _child(rung)
            _log(
                client,
                child.info.run_id,
                params,
                metrics,
                tags,
                _curve_history(rung.get("curves"), int(time.time() * 1000)),
            )
            client.set_terminated(child.info.run_id)
    except BaseException:
        client.set_terminated(pid, status="FAILED")
        raise
    client.set_terminated(pid)
    return pid


def log_finished_run(run_dir: str | Path, uri: str, experiment: str = "transferlab") -> str | None:
    """Log an already finished run directory (results.json, spec.json) to MLflow at ``uri``."""
    from .results import load_run

    results = load_run(run_dir)
    settings = json.loads((results.path / "spec.json").read_text(encoding="utf-8"))
    settings = {k: v for k, v in settings.items() if k in RunSpec.help()}
    spec = RunSpec(**{**settings, "mlflow": uri, "mlflow_experiment": experiment})
    return log_to_mlflow(results, results.path, spec)


__all__ = ["log_to_mlflow", "log_finished_run", "rung_metrics"]
