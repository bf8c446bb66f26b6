"""After the ladder: the verdicts on the rungs' records and the recommendation, from held-out
predictions, the audit's findings and how the data was split."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import RunSpec
from ..data import Task


@dataclass
class Judgement:
    verdicts: list[dict]
    recommendation: dict | None  # None when no rung ran (rank, audit)


def judge(records: list[dict], task: Task, spec: RunSpec, audit: dict) -> Judgement:
    """Run every registered verdict over ``records``, then choose the rung to recommend."""
    from ..verdicts import VerdictContext, run_verdicts
    from ..verdicts.recommendation import recommend

    ctx = VerdictContext(
        records,
        task.part("test")[1],
        task.part("train")[1],
        task.classes,
        spec.metric,
        audit["findings"],
        audit.get("policy", ""),
        y_val=task.part("val")[1],
        split_by="time" if task.times is not None else "group" if task.groups is not None else "",
        dedupe=audit.get("dedupe") or {},
    )
    return Judgement(run_verdicts(ctx), recommend(ctx) if records else None)
