"""The ladder table and the per-rung details, as values the template only has to lay out.

The table must fit the page without scrolling, so a rung's strategy and backbone are not columns
of their own (the rung's name already says them), and each interval sits under its mean.
"""

from __future__ import annotations

from .formatting import (
    MISSING,
    best_rung_indices,
    display,
    fmt_ci,
    fmt_int,
    fmt_metric,
    fmt_num,
    fmt_params,
    fmt_quantity,
    fmt_seed_spread,
    fmt_signed,
    get,
    is_number,
    metric_ci,
    metric_mean,
    metric_name,
    metric_seeds,
)
from .svg import curve_charts

HEADLINE = ("accuracy", "balanced_accuracy", "macro_f1")


def rung_name(index: int, rung: dict) -> str:
    return display(rung.get("name") or f"rung {index + 1}")


def rung_anchors(rungs: list) -> dict[str, str]:
    """Rung name -> the id of its details, so verdicts and the recommendation can link to it."""
    return {rung_name(i, rung): f"#rung-{i}" for i, rung in enumerate(rungs)}


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


def _metric_cell(metric) -> dict:
    """The mean, its interval for a second, smaller line, and the spread over seeds when there were several."""
    mean = metric_mean(metric)
    return {
        "mean": fmt_num(mean),
        "ci": fmt_ci(metric) if mean is not None else None,
        "spread": fmt_seed_spread(metric) if mean is not None else None,
    }


def _subtitle(rung: dict) -> str | None:
    """Strategy and backbone, only when the rung's name does not already spell them out."""
    strategy, backbone = rung.get("strategy"), rung.get("backbone")
    expected = f"{strategy}:{backbone}" if backbone else strategy
    if not strategy or rung.get("name") == expected:
        return None
    return " · ".join(display(part) for part in (strategy, backbone) if part)


def _embed_seconds(cost: dict) -> str | None:
    """Embedding time of rungs that train on extracted features: part of what the rung costs."""
    seconds = cost.get("extract_seconds")
    return f"+ {fmt_quantity(seconds)} s embed" if is_number(seconds) and seconds > 0 else None


def _ladder_row(index: int, rung: dict, best: bool) -> dict:
    test, cost = rung.get("test") or {}, rung.get("cost") or {}
    fit = cost.get("fit_seconds")
    return {
        "anchor": f"rung-{index}",
        "name": rung_name(index, rung),
        "reused": bool(rung.get("reused_from")),
        "subtitle": _subtitle(rung),
        "accuracy": _metric_cell(test.get("accuracy")),
        "bar": _accuracy_bar(test.get("accuracy")),
        "balanced_accuracy": _metric_cell(test.get("balanced_accuracy")),
        "macro_f1": _metric_cell(test.get("macro_f1")),
        "val_accuracy": fmt_num(metric_mean(get(rung, "val", "accuracy"))),
        "ece": fmt_num(metric_mean(test.get("ece"))),
        "fit": f"{fmt_quantity(fit)} s" if is_number(fit) else fmt_quantity(fit),
        "embed": _embed_seconds(cost),
        "params": fmt_params(cost.get("trainable_params"), cost.get("total_params")),
        "predict_ms": fmt_quantity(cost.get("predict_ms_per_item")),
        "best": best,
    }


def ladder_view(rungs: list, undecided: bool = False) -> dict:
    """Rows, plus whether any rung recorded calibration or embedding time (older runs did not).
    ``undecided``: the test split cannot compare rungs, so no row is marked best."""
    best = set() if undecided else best_rung_indices(rungs)
    rows = [_ladder_row(i, rung, i in best) for i, rung in enumerate(rungs)]
    return {
        "rows": rows,
        "ece": any(row["ece"] != MISSING for row in rows),
        "embed": any(row["embed"] for row in rows),
        "undecided": undecided,
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
            cells.append(
                {
                    "value": fmt_int(value),
                    "style": f"background-color: rgba(37, 99, 235, {share:.3f}); color: {ink}",
                    "title": f"{share:.1%} of true '{name}'",
                }
            )
        rows.append({"label": name, "cells": cells})
    return {"labels": names, "rows": rows}


def _value_at(curves: dict, key: str, position: int) -> float | None:
    values = curves.get(key)
    if not isinstance(values, list) or not -len(values) <= position < len(values):
        return None
    return float(values[position]) if is_number(values[position]) else None


def generalisation_gap(curves) -> str | None:
    """Train minus validation metric at the best (restored) epoch and at the last one: the overfitting
    the curves show, as numbers. None when the curves lack either series."""
    if not isinstance(curves, dict) or not isinstance(curves.get("epoch"), list) or not curves["epoch"]:
        return None
    epochs = curves["epoch"]
    last, best = len(epochs) - 1, curves.get("best_epoch")
    where = {last: "the last epoch"}
    if best in epochs:
        i = epochs.index(best)
        where = {i: "the best and last epoch"} if i == last else {i: "the best epoch", **where}
    name = metric_name(curves.get("metric") or "metric")
    parts = []
    for i, label in where.items():
        train, val = _value_at(curves, "train_metric", i), _value_at(curves, "val_metric", i)
        if train is not None and val is not None:
            parts.append(f"{fmt_signed(train - val)} at {label} ({display(epochs[i])})")
    return f"Train − validation {name}: " + ", ".join(parts) + "." if parts else None


def _seed_values(test: dict) -> list[str]:
    """``accuracy per seed: 0.810, 0.832, 0.801`` for each headline metric that has several seeds."""
    lines = []
    for key in HEADLINE:
        values = metric_seeds(test.get(key))
        if len(values) > 1:
            lines.append(f"{metric_name(key)} per seed: " + ", ".join(fmt_num(v) for v in values))
    return lines


def _rate(lr) -> str:
    """1e-4, 2.5e-5: a learning rate as people write it."""
    if not is_number(lr):
        return MISSING
    mantissa, exponent = f"{lr:.2e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def lr_trial_rows(chosen) -> list[dict]:
    """One row per learning rate the rung tried (highest first): its validation score after the
    screen, the epochs it trained, its best validation score and its validation curve."""
    trials = (chosen or {}).get("lr_trials") if isinstance(chosen, dict) else None
    rows = []
    for t in trials or []:
        if not isinstance(t, dict):
            continue
        curve = (t.get("curves") or {}).get("val_metric") or []
        factor = t.get("factor")
        rows.append(
            {
                "lr": _rate(t.get("lr")),
                "factor": f"×{factor:g}" if is_number(factor) else MISSING,
                "screen": fmt_num(t.get("screen_val_metric")),
                "epochs": fmt_int(t.get("epochs")),
                "best": fmt_num(t.get("val_metric")),
                "kept": bool(t.get("chosen")),
                "curve": " → ".join(fmt_num(v) for v in curve if is_number(v)),
            }
        )
    return rows


def _rung_detail(index: int, rung: dict, labels: list[str], recommended) -> dict:
    test = rung.get("test") or {}
    return {
        "anchor": f"rung-{index}",
        "name": rung_name(index, rung),
        "strategy": display(rung.get("strategy")),
        "backbone": display(rung.get("backbone")),
        "macro_f1": fmt_metric(test.get("macro_f1")),
        "seeds": display(rung.get("seeds")) if rung.get("seeds") else None,
        "open": recommended is not None and rung.get("name") == recommended,
        "per_class": _per_class_rows(test.get("per_class"), labels),
        "confusion": _confusion_view(test.get("confusion_matrix"), labels),
        "charts": curve_charts(rung.get("curves")),
        "lr_trials": lr_trial_rows(rung.get("chosen")),
        "gap": generalisation_gap(rung.get("curves")),
        "seed_values": _seed_values(test),
        "notes": [str(note) for note in rung.get("notes") or []],
    }


def rung_details(rungs: list, labels: list[str], recommended) -> list[dict]:
    return [_rung_detail(i, rung, labels, recommended) for i, rung in enumerate(rungs)]
