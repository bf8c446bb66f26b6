"""Robustness: each rung's score on corrupted copies of the test split and on the user's OOD sets.

A table with a row per rung and a column per shifted set; each cell shows the score on the set
and, beneath it, the drop from the same rung on the same clean test examples, shaded by its
size so the fragile rungs stand out. Set names come from the user (``--ood file``), so they are
only ever text.
"""

from __future__ import annotations

from .formatting import display, fmt_num, fmt_signed, is_number, metric_mean, metric_name
from .ladder import rung_name

KINDS = {"corruption": "corrupted test", "user": "your set"}
FULL_SHADE = 0.3  # a drop this large (or larger) gets the darkest shade


def _sets(rungs: list) -> list[tuple[str, str | None]]:
    """Every shifted set any rung was scored on, in first-seen order, with its kind."""
    seen: dict[str, str | None] = {}
    for rung in rungs:
        ood = rung.get("ood") if isinstance(rung, dict) else None
        for name, block in (ood or {}).items() if isinstance(ood, dict) else ():
            kind = block.get("kind") if isinstance(block, dict) else None
            seen.setdefault(str(name), kind if isinstance(kind, str) else None)
    return list(seen.items())


def _cell(block, metric: str) -> dict:
    if not isinstance(block, dict):
        return {"value": "—", "drop": None, "style": "", "title": "not scored"}
    value = metric_mean(block.get(metric))
    drop = block.get("drop", {}).get(metric) if isinstance(block.get("drop"), dict) else None
    if not is_number(drop):
        return {"value": fmt_num(value), "drop": None, "style": "", "title": ""}
    share = min(max(drop, 0.0) / FULL_SHADE, 1.0)
    return {
        "value": fmt_num(value),
        "drop": fmt_signed(-drop),
        "style": f"background-color: rgba(220, 38, 38, {0.6 * share:.3f})",
        "title": f"{metric_name(metric)} {fmt_signed(-drop)} from the same clean test examples",
    }


def ood_view(rungs, metric: str = "accuracy") -> dict | None:
    """Rows of cells per rung; None when no rung was scored on a shifted set."""
    rungs = [r for r in rungs or [] if isinstance(r, dict)]
    sets = _sets(rungs)
    if not sets:
        return None
    rows = []
    for i, rung in enumerate(rungs):
        ood = rung.get("ood") if isinstance(rung.get("ood"), dict) else {}
        if not ood:
            continue
        clean = metric_mean((rung.get("test") or {}).get(metric))
        rows.append(
            {
                "name": rung_name(i, rung),
                "anchor": f"rung-{i}",
                "clean": fmt_num(clean),
                "cells": [_cell(ood.get(name), metric) for name, _ in sets],
            }
        )
    return {
        "metric": metric_name(metric),
        "sets": [
            {"name": display(name), "kind": KINDS.get(kind, display(kind)) if kind else None} for name, kind in sets
        ],
        "rows": rows,
    }
