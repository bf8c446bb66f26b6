"""The recommendation: cost has to prove itself on validation.

The rule, chosen on validation and never on test:

1. Candidates are every rung except the baselines (``majority``: declared ``role = "baseline"``).
2. They are put in order of cost, the fit time plus the time to embed the data (first seed), in
   tiers: the cheapest rung not yet placed opens a tier that takes every rung costing at most
   ``TIER_RATIO`` times it plus ``TIER_SLACK`` seconds; within a tier the fixed simplicity order of
   the strategies (each rung's declared ``simplicity``: classical, zero_shot, frozen, finetune, ...) decides. A
   measured time that varies by less than 2x from run to run cannot reorder rungs of one tier.
3. The first rung is the choice. Each costlier rung in turn replaces it only when it beats it
   significantly on validation: a paired bootstrap on the same validation examples (p < 0.05,
   delta > 0; McNemar's p beside it for accuracy). Otherwise the cheaper choice stays, and the
   comparison is kept as evidence that the costlier rung was not shown to be better.
4. No rung is recommended (``rung`` is None, ``why`` says why) when the test split cannot compare
   rungs (``test_cannot_decide``): the choice would be quoted with a test score that means nothing.
   Nor when the validation split holds fewer than two classes, since then it cannot compare rungs.

On a small validation set this keeps the cheaper rung unless the costlier one is clearly better:
a fine-tuned model 0.02 above the frozen one on 172 validation images is not shown to be better,
and recommending it would be recommending noise.
"""

from __future__ import annotations

import numpy as np

from . import VerdictContext
from .decidable import split_problem

TIER_RATIO = 2.0  # rungs within this factor of a tier's cheapest rung count as costing the same
TIER_SLACK = 0.5  # seconds: below about this, measured times are mostly noise


def cost(rung: dict) -> float:
    c = rung.get("cost") or {}
    return float(c.get("fit_seconds") or 0.0) + float(c.get("extract_seconds") or 0.0)


def _simplicity(rung: dict) -> tuple[float, str]:
    """The rung's declared simplicity (a strategy no longer registered comes last), then its name."""
    from ..rungs import RUNGS

    strategy = rung["strategy"]
    return (RUNGS.get(strategy).simplicity if strategy in RUNGS else float("inf"), rung["name"])


def cost_order(rungs: list[dict]) -> list[tuple[dict, int]]:
    """(rung, tier) from cheapest to costliest; see the module's rule, step 2."""
    rest = sorted(rungs, key=lambda r: (cost(r), _simplicity(r)))
    order: list[tuple[dict, int]] = []
    while rest:
        limit = TIER_RATIO * cost(rest[0]) + TIER_SLACK
        tier = [r for r in rest if cost(r) <= limit]  # a prefix of rest, which is sorted by cost
        order += [(r, len({t for _, t in order})) for r in sorted(tier, key=_simplicity)]
        rest = rest[len(tier) :]
    return order


def _val_compare(ctx: VerdictContext, a: dict, b: dict) -> dict:
    from ..evaluation import paired_bootstrap

    assert ctx.y_val is not None  # recommend() returns early without validation labels
    c = paired_bootstrap(
        ctx.y_val,
        np.asarray(a["predictions"]["val"]),
        np.asarray(b["predictions"]["val"]),
        ctx.metric,
        n_classes=len(ctx.classes),
    )
    return {"a": a["name"], "b": b["name"], **c}


def _fmt(c: dict) -> str:
    return f"Δ {c['metric']} {c['delta']:+.3f} [{c['ci'][0]:+.3f}, {c['ci'][1]:+.3f}], p={c['p_value']:.3f}"


def _choose(ctx: VerdictContext, order: list[tuple[dict, int]]) -> tuple[dict, list[dict]]:
    """Walk the cost order; a costlier rung replaces the choice only when significantly better."""
    choice, comparisons = order[0][0], []
    for rung, _ in order[1:]:
        c = _val_compare(ctx, rung, choice)
        replaced = c["significant"] and c["delta"] > 0
        comparisons.append({**c, "outcome": "replaced" if replaced else "kept"})
        if replaced:
            choice = rung
    return choice, comparisons


def _cost_words(rung: dict) -> str:
    embeds = float((rung.get("cost") or {}).get("extract_seconds") or 0.0) > 0
    return f"{cost(rung):.1f} s to fit{' and embed' if embeds else ''}"


def _not_better(c: dict) -> str:
    """A costlier rung that did not replace the choice, in words that match its comparison."""
    if c["significant"]:  # kept and significant: significantly worse
        return f"the costlier {c['a']} was worse on validation ({_fmt(c)})"
    return f"the costlier {c['a']} was not shown to be better (validation {_fmt(c)})"


def _reason(ctx: VerdictContext, choice: dict, order: list[tuple[dict, int]], comparisons: list[dict]) -> str:
    """Why the choice, from the comparisons that made it: the one that put it in place, and the
    most tempting costlier rung (best on validation) that did not beat it."""
    won = [c for c in comparisons if c["a"] == choice["name"]]
    if won:
        text = (
            f"{choice['name']} beat the cheaper {won[0]['b']} on validation ({_fmt(won[0])}), which justifies "
            f"its extra cost ({_cost_words(choice)})"
        )
    else:
        text = f"{choice['name']} is the cheapest rung ({_cost_words(choice)})"
    after = [c for c in comparisons if c["b"] == choice["name"] and c["outcome"] == "kept"]
    if after:
        by_name = {r["name"]: r for r, _ in order}
        top = max(after, key=lambda c: ctx.val_score(by_name[c["a"]]))
        others = len(after) - 1
        text += f"; {_not_better(top)}" + (
            ""
            if not others
            else ", nor was 1 other costlier rung better"
            if others == 1
            else f", nor were {others} other costlier rungs better"
        )
    elif not won:
        text += "; no other rung was run"
    return text + f". Validation {ctx.metric} {ctx.val_score(choice):.3f}"


def _within_noise_of_best(ctx: VerdictContext, scored: list[dict]) -> tuple[dict, list[str]]:
    """The best rung on validation and every rung not significantly different from it there."""
    best = max(scored, key=ctx.val_score)
    close = [best["name"]] + [
        r["name"] for r in scored if r is not best and not _val_compare(ctx, r, best)["significant"]
    ]
    return best, close


def _no_recommendation(problem: dict, split: str) -> str:
    present = [c for c, n in problem["counts"].items() if n > 0]
    if split == "validation":
        return (
            f"No recommendation: the validation split holds only {', '.join(repr(c) for c in present) or 'no'} "
            f"class{'es' if len(present) != 1 else ''} ({problem['n']} examples), so it cannot compare rungs "
            "and a choice made on it would be blind. Split so that every class is in validation."
        )
    counts = ", ".join(f"'{c}' {n}" for c, n in problem["counts"].items())
    return (
        f"No recommendation: the test split cannot compare rungs (test examples per class: {counts}), so no "
        "test score could confirm a choice; see the test_cannot_decide verdict for a split that can decide."
    )


def recommend(ctx: VerdictContext) -> dict | None:
    """The recommendation record (see the module's rule), or None when no rung but majority ran.

    Fields: ``rung`` (None when nothing is recommended), ``why``, ``metric``,
    ``within_noise_of_best`` (the best rung on validation and the rungs not significantly
    different from it there), ``best_on_validation``, ``order`` (each rung's cost and tier, in the
    order the rule walked), ``evidence`` (every validation comparison made: costlier ``a`` against
    the choice ``b`` at that point, with ``outcome`` replaced or kept) and, when no rung is
    recommended, ``validation_choice`` (what validation alone would pick).
    """
    if ctx.y_val is None:
        raise ValueError("recommend needs the validation labels: build the VerdictContext with y_val.")
    scored = ctx.scored()
    if not scored:
        return None
    order = cost_order(scored)
    choice, comparisons = _choose(ctx, order)
    best, close = _within_noise_of_best(ctx, scored)
    record = {
        "rung": choice["name"],
        "why": "",
        "metric": ctx.metric,
        "within_noise_of_best": close,
        "best_on_validation": best["name"],
        "order": [
            {
                "rung": r["name"],
                "strategy": r["strategy"],
                "cost_seconds": round(cost(r), 3),
                "tier": tier,
                "validation": ctx.val_score(r),
            }
            for r, tier in order
        ],
        "evidence": comparisons,
    }
    val_problem = split_problem(ctx.y_val, ctx.y_train, ctx.classes, "validation")
    if val_problem is not None and val_problem["classes_present"] < 2:
        return {
            **record,
            "rung": None,
            "why": _no_recommendation(val_problem, "validation"),
            "validation_choice": choice["name"],
        }
    reason = _reason(ctx, choice, order, comparisons)
    if ctx.test_problem is not None:
        return {
            **record,
            "rung": None,
            "validation_choice": choice["name"],
            "why": f"{_no_recommendation(ctx.test_problem, 'test')} On validation alone: {reason}.",
        }
    t = choice["test"][ctx.metric]
    why = (
        f"{reason}; held-out test {ctx.metric} {t['mean']:.3f} [{t['ci'][0]:.3f}, {t['ci'][1]:.3f}]. Chosen on "
        "validation, not on test: a costlier rung is recommended only when it beats the cheaper choice "
        "significantly on validation."
    )
    return {**record, "why": why}
