"""Whether validation and test come after training in time, and whether labels drift over time."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...errors import DataError
from ..base import AuditInputs, Check, Finding, describe, plural, register
from ..stats import compare, is_shift, label_counts, largest_changes

MIN_FOR_DRIFT = 30  # timed examples needed before comparing the earliest and latest thirds


@register
class TimeOverlap(Check):
    name = "time_overlap"
    description = "Validation or test examples older than training examples, and labels that change over time."
    requires = frozenset({"items", "times"})

    def run(self, inputs: AuditInputs) -> list[Finding]:
        assert inputs.times is not None  # declared in requires: the runner skips the check without it
        values, is_date = as_numbers(inputs.times)
        return [self._order(inputs, values, is_date), *self._drift(inputs, values)]

    def _order(self, inputs: AuditInputs, values: np.ndarray, is_date: bool) -> Finding:
        task = inputs.task
        train = task.split == "train"
        newest = np.nanmax(values[train]) if np.isfinite(values[train]).any() else np.nan
        held_out = np.flatnonzero(~train & np.isfinite(values))
        older = held_out[values[held_out] < newest]
        if not len(older):
            return self.finding(
                "info", 0, "Every timed validation and test example is newer than all training examples."
            )
        examples = [{**describe(task, i), "time": show(values[i], is_date)} for i in older[:5]]
        return self.finding(
            "warning",
            len(older),
            f"{plural(len(older), 'validation or test example')} of {len(held_out)} are older than the newest "
            f"training example ({show(newest, is_date)}). If the model will be used on future data, scores on "
            "such a split are optimistic: train on the past, test on the future. Split by time, so that every "
            "validation and test example is newer than all training examples.",
            examples,
        )

    def _drift(self, inputs: AuditInputs, values: np.ndarray) -> list[Finding]:
        task = inputs.task
        timed = np.flatnonzero(np.isfinite(values))
        if len(timed) < MIN_FOR_DRIFT:
            return []
        ordered = timed[np.argsort(values[timed], kind="stable")]
        third = len(ordered) // 3
        k = len(task.classes)
        early, late = label_counts(task.y[ordered[:third]], k), label_counts(task.y[ordered[-third:]], k)
        tvd, p = compare(early, late)
        if not is_shift(tvd, p):
            return []
        changes = largest_changes(task.classes, early, late)
        top = changes[0]
        return [
            self.finding(
                "warning",
                1,
                f"Labels drift over time: '{top['label']}' is {top['before']:.0%} of the earliest third of examples "
                f"but {top['after']:.0%} of the latest (total variation {tvd:.2f}, chi-square p = {p:.1g}). A model "
                "trained on older data meets a different mix later; prefer recent data for validation and test, "
                "and expect to retrain as the mix moves.",
                [{"label": c["label"], "earliest_third": c["before"], "latest_third": c["after"]} for c in changes],
            )
        ]


def as_numbers(times: np.ndarray) -> tuple[np.ndarray, bool]:
    """Times as floats (NaN where missing) and whether they were dates.

    Accepts numbers, datetime64, or objects pandas can read as numbers or as dates (time-zone
    aware ones are compared in UTC).
    """
    times = np.asarray(times)
    if times.dtype.kind in "OUS":  # objects or strings
        series = pd.Series(times, dtype=object)
        try:
            return pd.to_numeric(series).to_numpy(float), False
        except (TypeError, ValueError):
            try:
                times = pd.to_datetime(series, utc=True).dt.tz_localize(None).to_numpy("datetime64[ns]")
            except (TypeError, ValueError):
                raise DataError(
                    "The audit's times must be numbers or dates; some could not be read as either."
                ) from None
    if np.issubdtype(times.dtype, np.datetime64):
        ns = times.astype("datetime64[ns]")
        values = ns.astype(np.int64).astype(float)
        values[np.isnat(ns)] = np.nan
        return values, True
    return times.astype(float), False


def show(value: float, is_date: bool):
    """A time as it reads in a report: ISO date-time for dates, the number otherwise."""
    if not np.isfinite(value):
        return None
    return str(np.datetime64(int(value), "ns").astype("datetime64[s]")) if is_date else float(value)
