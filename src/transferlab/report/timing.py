"""Time: what the run plan predicted for each stage next to what the stage really took.

Reads results.json's ``plan`` section only (a run from before it existed has none, and the
table is left out). Names are the run's stage and rung names, which come from the user's
backbone names, so they are only ever text.
"""

from __future__ import annotations

from .formatting import is_number


def _seconds(x) -> str:
    if not is_number(x):
        return "—"
    if x < 60:
        return f"{x:.1f} s"
    return f"{x / 60:.1f} min" if x < 3600 else f"{x / 3600:.1f} h"


def _mib(x) -> str:
    return f"{x / 2**20:.0f} MiB" if is_number(x) and x > 0 else "—"


def _ratio(predicted, actual) -> str:
    return f"{predicted / actual:.2f}" if is_number(predicted) and is_number(actual) and actual > 0 else "—"


def timing_view(plan) -> dict | None:
    """Rows of stage, predicted, actual, ratio, memory and how; the totals; the rungs not run."""
    if not isinstance(plan, dict) or not isinstance(plan.get("stages"), list):
        return None
    rows = [
        {
            "name": str(s.get("name")),
            "predicted": _seconds(s.get("seconds")),
            "actual": _seconds(s.get("actual_seconds")),
            "ratio": _ratio(s.get("seconds"), s.get("actual_seconds")),
            "memory": _mib(s.get("peak_bytes")),
            "how": str(s.get("how") or ""),
        }
        for s in plan["stages"]
        if isinstance(s, dict)
    ]
    total, actual = plan.get("total_seconds"), plan.get("actual_total_seconds")
    return {
        "rows": rows,
        "total": _seconds(total),
        "actual": _seconds(actual),
        "ratio": _ratio(total, actual),
        "probe": _seconds(plan.get("probe_seconds")),
        "skipped": [str(s) for s in plan.get("skipped") or []],
    }
