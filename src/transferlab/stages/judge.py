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


# the verdicts that compare or judge the rungs a time limit cuts or leaves out
LIMITED_CODES = {
    "negative_transfer",
    "transfer_helped",
    "finetune_not_worth_cost",
    "catastrophic_forgetting",
    "within_noise",
    "underfitting",
    "no_training_needed",
    "learning_rate_too_high",
    "learning_rate_too_low",
}


def judge(records: list[dict], task: Task, spec: RunSpec, audit: dict, limited: dict | None = None) -> Judgement:
    """Run every registered verdict over ``records``, then choose the rung to recommend.

    ``limited``: what the time limit cut and left out (``plan.time_limit``); the verdicts that
    compare the rungs it touched, and the recommendation, then say they judge that budget."""
    judgement = _judge(records, task, spec, audit)
    sentence = _limit_sentence(limited, records)
    if sentence:
        for v in judgement.verdicts:
            if v["code"] in LIMITED_CODES:
                v["message"] += " " + sentence
                v["evidence"]["time_limit"] = {k: limited[k] for k in ("cuts", "skipped") if limited and k in limited}
        if judgement.recommendation is not None and "why" in judgement.recommendation:
            judgement.recommendation["why"] += " " + sentence
    return judgement


def _limit_sentence(limited: dict | None, records: list[dict]) -> str:
    if not limited:
        return ""
    skipped = [s["rung"] for s in limited.get("skipped") or []]
    stopped = [r["name"] for r in records if r.get("stopped_at_limit")]
    parts = ([f"not run: {', '.join(skipped)}"] if skipped else []) + (
        [f"cut: {'; '.join(limited['cuts'])}"] if limited.get("cuts") else []
    )
    if stopped:
        parts.append(f"stopped at their deadline: {', '.join(stopped)}")
    if not parts:
        return ""
    return f"Under the time limit ({'; '.join(parts)}) this judges what that budget allowed, not the data alone."


def _judge(records: list[dict], task: Task, spec: RunSpec, audit: dict) -> Judgement:
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
