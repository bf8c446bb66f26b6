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

from .findings import finding_views, recommendation_view, removed_view, verdict_views
from .formatting import display, fmt_int, get, test_cannot_decide
from .ladder import ladder_view, rung_anchors, rung_details
from .learning import learning_curve_view
from .ood import ood_view
from .ranking import ranking_view
from .timing import timing_view


def _task_view(task: dict) -> dict:
    splits = task.get("splits") or {}
    return {
        "modality": display(task.get("modality")),
        "labels": [str(label) for label in task.get("labels") or []],
        "splits": [(name, fmt_int(size)) for name, size in splits.items()],
        "source": task.get("source"),
    }


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
    anchors = rung_anchors(rungs)
    recommendation = results.get("recommendation")
    environment = results.get("environment") or {}
    metric = get(recommendation, "metric") or get(results, "learning_curve", "metric") or "accuracy"
    return {
        "task": task,
        "notes": [str(note) for note in results.get("notes") or []],
        "verdicts": verdict_views(results.get("verdicts"), anchors),
        "recommendation": recommendation_view(recommendation, anchors),
        "ladder": ladder_view(rungs, test_cannot_decide(results)),
        "details": rung_details(rungs, task["labels"], get(recommendation, "rung")),
        "learning_curve": learning_curve_view(results.get("learning_curve")),
        "ranking": ranking_view(results.get("ranking")),
        "ood": ood_view(rungs, metric if metric in ("accuracy", "balanced_accuracy", "macro_f1") else "accuracy"),
        "findings": finding_views(get(results, "audit", "findings")),
        "removed": removed_view(results.get("audit")),
        "timing": timing_view(results.get("plan")),
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
