"""Render a run's results as one self-contained HTML file.

The report has to open offline and be safe to pass around, so everything is inline (CSS and
SVG, no JavaScript) and every user-provided string goes through Jinja's autoescaping. The only
markup built in Python is the SVG charts, whose text is escaped with ``markupsafe.escape``.
Values are formatted before they reach the template, which only lays them out.
"""

from __future__ import annotations

import os
import uuid
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from .formatting import (
    best_rung_indices,
    display,
    fmt_count,
    fmt_int,
    fmt_metric,
    fmt_num,
    fmt_params,
    fmt_quantity,
    get,
    is_number,
    metric_ci,
    metric_mean,
)
from .svg import curve_charts

SEVERITIES = {"info", "warning", "error", "critical"}
TEXT_KEYS = ("text", "message", "verdict", "summary", "claim")


def _task_view(task: dict) -> dict:
    splits = task.get("splits") or {}
    return {
        "modality": display(task.get("modality")),
        "labels": [str(label) for label in task.get("labels") or []],
        "splits": [(name, fmt_int(size)) for name, size in splits.items()],
        "source": task.get("source"),
    }


def _percent(share: float) -> float:
    return min(max(share, 0.0), 1.0) * 100


def _accuracy_bar(metric) -> dict | None:
    """Geometry (in %) of the inline bar: the mean as a fill, the CI as a whisker."""
    mean, ci = metric_mean(metric), metric_ci(metric)
    if mean is None:
        return None
    bar = {"fill": f"{_percent(mean):.1f}%", "ci_left": None, "ci_width": None}
    if ci is not None:
        bar["ci_left"] = f"{_percent(ci[0]):.1f}%"
        bar["ci_width"] = f"{_percent(ci[1]) - _percent(ci[0]):.1f}%"
    return bar


def _rung_name(index: int, rung: dict) -> str:
    return display(rung.get("name") or f"rung {index + 1}")


def _ladder_row(index: int, rung: dict, best: bool) -> dict:
    test, cost = rung.get("test") or {}, rung.get("cost") or {}
    return {
        "anchor": f"rung-{index}",
        "name": _rung_name(index, rung),
        "strategy": display(rung.get("strategy")),
        "backbone": display(rung.get("backbone")),
        "accuracy": fmt_metric(test.get("accuracy")),
        "bar": _accuracy_bar(test.get("accuracy")),
        "balanced_accuracy": fmt_metric(test.get("balanced_accuracy")),
        "macro_f1": fmt_metric(test.get("macro_f1")),
        "val_accuracy": fmt_num(metric_mean(get(rung, "val", "accuracy"))),
        "fit_seconds": fmt_quantity(cost.get("fit_seconds")),
        "params": fmt_params(cost.get("trainable_params"), cost.get("total_params")),
        "predict_ms": fmt_quantity(cost.get("predict_ms_per_item")),
        "best": best,
    }


def _per_class_rows(per_class, labels: list[str]) -> list[dict]:
    """Rows in the task's label order, so they line up with the confusion matrix."""
    by_label = {str(k): v or {} for k, v in (per_class or {}).items()}
    order = [name for name in labels if name in by_label]
    order += [name for name in by_label if name not in labels]
    return [
        {
            "label": label,
            **{k: fmt_num(by_label[label].get(k)) for k in ("precision", "recall", "f1")},
            "support": fmt_int(by_label[label].get("support")),
        }
        for label in order
    ]


def _confusion_view(matrix, labels: list[str]) -> dict | None:
    """Cells shaded by their share of the true label's row, so small classes stay readable."""
    if not matrix:
        return None
    names = labels if len(labels) == len(matrix) else [str(i) for i in range(len(matrix))]
    rows = []
    for name, row in zip(names, matrix):
        total = sum(v for v in row if is_number(v))
        cells = []
        for value in row:
            share = value / total if total and is_number(value) else 0.0
            ink = "#fff" if share > 0.55 else "inherit"
            cells.append({
                "value": fmt_int(value),
                "style": f"background-color: rgba(37, 99, 235, {share:.3f}); color: {ink}",
                "title": f"{share:.1%} of true '{name}'",
            })
        rows.append({"label": name, "cells": cells})
    return {"labels": names, "rows": rows}


def _rung_detail(index: int, rung: dict, labels: list[str], recommended) -> dict:
    test = rung.get("test") or {}
    return {
        "anchor": f"rung-{index}",
        "name": _rung_name(index, rung),
        "strategy": display(rung.get("strategy")),
        "backbone": display(rung.get("backbone")),
        "macro_f1": fmt_metric(test.get("macro_f1")),
        "seeds": display(rung.get("seeds")) if rung.get("seeds") else None,
        "open": recommended is not None and rung.get("name") == recommended,
        "per_class": _per_class_rows(test.get("per_class"), labels),
        "confusion": _confusion_view(test.get("confusion_matrix"), labels),
        "charts": curve_charts(rung.get("curves")),
        "notes": [str(note) for note in rung.get("notes") or []],
    }


def _statement(item) -> dict:
    """A verdict given as plain text or as a dict with a text field plus details."""
    if not isinstance(item, dict):
        return {"text": display(item), "meta": ""}
    key = next((k for k in TEXT_KEYS if k in item), None)
    meta = "; ".join(f"{k}: {display(v)}" for k, v in item.items() if k != key)
    return {"text": display(item[key]), "meta": meta} if key else {"text": meta, "meta": ""}


def _table_view(items: list[dict], numeric: frozenset = frozenset()) -> dict:
    """A table whose columns are the union of the items' keys, in order of first appearance."""
    names = list(dict.fromkeys(k for item in items for k in item))
    rows = []
    for item in items:
        severity = str(item.get("severity", "")).lower()
        rows.append({
            "cells": [display(item.get(name)) for name in names],
            "class": f"sev-{severity}" if severity in SEVERITIES else "",
        })
    columns = [{"name": name, "numeric": name in numeric} for name in names]
    return {"columns": columns, "rows": rows}


def _ranking_view(ranking: list) -> dict | None:
    """Backbone ranking rows; score columns are whatever the ranker reported."""
    if not ranking:
        return None
    items, numeric = [], {"params", "items / s"}
    for entry in ranking:
        scores = entry.get("scores") if isinstance(entry.get("scores"), dict) else {}
        if not scores and "score" in entry:
            scores = {"score": entry["score"]}
        numeric.update(scores)
        licence = entry.get("licence", entry.get("license"))
        items.append({
            "backbone": display(entry.get("backbone", entry.get("name"))),
            **{name: fmt_metric(value) for name, value in scores.items()},
            "params": fmt_count(entry.get("params", entry.get("total_params"))),
            "items / s": fmt_quantity(entry.get("items_per_second")),
            "pretrained on": display(entry.get("pretrained_on")),
            **({"licence": display(licence)} if licence is not None else {}),
        })
    return _table_view(items, frozenset(numeric))


def _artifact_links(artifacts) -> list[dict]:
    """Links relative to the report; quoting the colon keeps a path from becoming a URL scheme."""
    return [
        {"name": str(name), "path": str(path), "href": quote(str(path).replace("\\", "/"))}
        for name, path in (artifacts or {}).items()
    ]


def build_context(results: dict) -> dict:
    """Everything the template shows, already formatted; the template only lays it out."""
    task = _task_view(results.get("task") or {})
    rungs = results.get("rungs") or []
    best = best_rung_indices(rungs)
    recommendation = results.get("recommendation") or None
    findings = get(results, "audit", "findings") or []
    environment = results.get("environment") or {}
    return {
        "task": task,
        "notes": [str(note) for note in results.get("notes") or []],
        "recommendation": recommendation and {
            "rung": display(recommendation.get("rung")),
            "why": recommendation.get("why"),
        },
        "verdicts": [_statement(v) for v in results.get("verdicts") or []],
        "ladder": [_ladder_row(i, rung, i in best) for i, rung in enumerate(rungs)],
        "details": [
            _rung_detail(i, rung, task["labels"], (recommendation or {}).get("rung"))
            for i, rung in enumerate(rungs)
        ],
        "ranking": _ranking_view(results.get("ranking")),
        "findings": _table_view([f if isinstance(f, dict) else {"finding": f} for f in findings]),
        "environment": [(str(k), display(v)) for k, v in environment.items()],
        "artifacts": _artifact_links(results.get("artifacts")),
        "schema": display(results.get("schema")),
    }


@lru_cache(maxsize=1)
def _jinja() -> Environment:
    return Environment(
        loader=PackageLoader("transferlab.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(results: dict) -> str:
    """The whole report as one HTML string."""
    return _jinja().get_template("report.html.j2").render(**build_context(results))


def write_html(results: dict, path) -> Path:
    """Write the report atomically, so a crash never leaves a half-written file behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    html = render_html(results)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(html, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
