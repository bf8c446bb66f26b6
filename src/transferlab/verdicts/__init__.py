"""Verdicts: one small rule each, each returning its evidence, a plain message and what to do.

A rule reads the finished rungs (their test predictions, curves and costs) and says something
only when the evidence supports it; comparisons between rungs use paired tests on the same test
examples, so "better" means better beyond the noise of this test set. A test split that cannot
compare rungs at all (one class, or a training class with too few test examples) gets the
``test_cannot_decide`` error, and then no rule compares rungs on it: ``ctx.compare`` returns an
undecided comparison, never a significant one.

Which rungs are transfer, controls, baselines or trainers of the backbone is what each rung
declares (``transferlab.rungs.Rung``); rules ask ``ctx.declared(role="control")`` and the like.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

import numpy as np

from ..registry import Registry


@dataclass
class VerdictContext:
    rungs: list[dict]  # results.json rung records, with predictions["test"]
    y_test: np.ndarray
    y_train: np.ndarray
    classes: list[str]
    metric: str
    audit: list[dict] = field(default_factory=list)
    leakage_policy: str = ""  # what the run did about cross-split duplicates: dedupe, warn (fail stops)
    y_val: np.ndarray | None = None  # the validation labels every rung's predictions["val"] answers
    split_by: str = ""  # how the split was made when it matters to the advice: "time", "group" or ""
    dedupe: dict = field(default_factory=dict)  # results.json audit.dedupe: removed, share, max_share, confirmed

    def by_strategy(self, *strategies: str) -> list[dict]:
        return [r for r in self.rungs if r["strategy"] in strategies]

    def declared(self, **attributes) -> list[dict]:
        """The records of the rungs registered with these declared attributes (see
        ``transferlab.rungs.strategies``), e.g. ``ctx.declared(role="control")``."""
        from ..rungs import strategies

        return self.by_strategy(*strategies(**attributes))

    def scored(self) -> list[dict]:
        """Every record but the baselines' (majority): the rungs that are compared and recommended."""
        from ..rungs import strategies

        baselines = strategies(role="baseline")
        return [r for r in self.rungs if r["strategy"] not in baselines]

    def score(self, rung: dict) -> float:
        """The rung's test score: to describe the test, never to choose which rungs to compare."""
        return rung["test"][self.metric]["mean"]

    def val_score(self, rung: dict) -> float:
        """The rung's validation score (its first seed's draw): what rules choose rungs by."""
        return rung["val"][self.metric]["mean"]

    @cached_property
    def test_problem(self) -> dict | None:
        """Why this test split cannot compare rungs (see ``decidable.split_problem``), or None."""
        from .decidable import split_problem

        return split_problem(self.y_test, self.y_train, self.classes)

    def compare(self, a: dict, b: dict) -> dict:
        """metric(a) - metric(b) on the same test examples; undecided (never significant) when the
        test split cannot compare rungs."""
        if self.test_problem is not None:
            return {
                "a": a["name"],
                "b": b["name"],
                "metric": self.metric,
                "decided": False,
                "significant": False,
                "reason": "the test split cannot compare rungs (see test_cannot_decide)",
            }
        from ..evaluation import paired_bootstrap

        out = paired_bootstrap(
            self.y_test, test_predictions(a), test_predictions(b), self.metric, n_classes=len(self.classes)
        )
        return {"a": a["name"], "b": b["name"], **out}


def test_predictions(rung: dict) -> np.ndarray:
    """(S, N) test predictions of every seed of a rung record, or (N,) for a single run."""
    p = rung["predictions"]
    return np.asarray(p.get("test_seeds") or p["test"])


def verdict(code: str, severity: str, rungs: list[str], message: str, action: str, **evidence) -> dict:
    return {
        "code": code,
        "severity": severity,
        "rungs": rungs,
        "message": message,
        "action": action,
        "evidence": evidence,
    }


Rule = Callable[[VerdictContext], list[dict]]
RULES: Registry[Rule] = Registry("verdict rule")


def run_verdicts(ctx: VerdictContext) -> list[dict]:
    from . import decidable, rules  # noqa: F401  (registration)

    out: list[dict] = []
    for name in RULES.list_():
        out.extend(RULES.get(name)(ctx))
    order = {"error": 0, "warning": 1, "info": 2}
    return sorted(out, key=lambda v: order.get(v["severity"], 3))


__all__ = ["VerdictContext", "run_verdicts", "verdict", "RULES"]
