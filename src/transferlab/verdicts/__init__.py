"""Verdicts: one small rule each, each returning its evidence, a plain message and what to do.

A rule reads the finished rungs (their test predictions, curves and costs) and says something
only when the evidence supports it; comparisons between rungs use paired tests on the same test
examples, so "better" means better beyond the noise of this test set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..registry import Registry

TRANSFER = ("frozen", "finetune", "full", "lora", "zero_shot")
CONTROLS = ("scratch", "classical")


@dataclass
class VerdictContext:
    rungs: list[dict]  # results.json rung records, with predictions["test"]
    y_test: np.ndarray
    y_train: np.ndarray
    classes: list[str]
    metric: str
    audit: list[dict] = field(default_factory=list)
    leakage_policy: str = ""  # what the run did about cross-split duplicates: dedupe, warn (fail stops)
    dedupe: dict = field(default_factory=dict)  # results.json audit.dedupe: removed, share, max_share, confirmed

    def by_strategy(self, *strategies: str) -> list[dict]:
        return [r for r in self.rungs if r["strategy"] in strategies]

    def score(self, rung: dict) -> float:
        return rung["test"][self.metric]["mean"]

    def compare(self, a: dict, b: dict) -> dict:
        from ..evaluation import paired_bootstrap

        out = paired_bootstrap(self.y_test, test_predictions(a), test_predictions(b), self.metric,
                               n_classes=len(self.classes))
        return {"a": a["name"], "b": b["name"], **out}


def test_predictions(rung: dict) -> np.ndarray:
    """(S, N) test predictions of every seed of a rung record, or (N,) for a single run."""
    p = rung["predictions"]
    return np.asarray(p.get("test_seeds") or p["test"])


def verdict(code: str, severity: str, rungs: list[str], message: str, action: str, **evidence) -> dict:
    return {"code": code, "severity": severity, "rungs": rungs, "message": message, "action": action,
            "evidence": evidence}


Rule = Callable[[VerdictContext], list[dict]]
RULES: Registry[Rule] = Registry("verdict rule")


def run_verdicts(ctx: VerdictContext) -> list[dict]:
    from . import rules  # noqa: F401  (registration)

    out: list[dict] = []
    for name in RULES.list_():
        out.extend(RULES.get(name)(ctx))
    order = {"error": 0, "warning": 1, "info": 2}
    return sorted(out, key=lambda v: order.get(v["severity"], 3))


__all__ = ["VerdictContext", "run_verdicts", "verdict", "RULES"]
