"""Groups (patients, users, documents) whose examples fall in more than one split."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..base import SPLIT_RANK, AuditInputs, Check, Finding, plural, register


@register
class GroupOverlap(Check):
    name = "group_overlap"
    description = "Groups of related examples (same patient, user or source) that appear in more than one split."
    requires = frozenset({"items", "groups"})

    def run(self, inputs: AuditInputs) -> list[Finding]:
        task = inputs.task
        assert inputs.groups is not None  # declared in requires: the runner skips the check without it
        known = ~pd.isna(inputs.groups)  # examples without a group id belong to no group
        names, group = np.unique(inputs.groups[known].astype(str), return_inverse=True)
        rank = np.array([SPLIT_RANK[s] for s in task.split])[known]
        sizes = np.zeros((len(names), len(SPLIT_RANK)), dtype=np.int64)
        np.add.at(sizes, (group, rank), 1)
        shared = np.flatnonzero((sizes > 0).sum(axis=1) > 1)
        if not len(shared):
            return [self.finding("info", 0, f"Each of the {len(names)} groups lies within a single split.")]
        held_out = int(sizes[shared, 1:].sum())
        biggest = shared[np.argsort(-sizes[shared].sum(axis=1), kind="stable")[:5]]
        index = np.flatnonzero(known)
        examples = [self._example(task, names[g], index[group == g], sizes[g]) for g in biggest]
        return [
            self.finding(
                "error",
                len(shared),
                f"{plural(len(shared), 'group')} of {len(names)} have examples in more than one split; "
                f"{plural(held_out, 'validation or test example')} belong to such a group. Examples from one group "
                "share traits a model can memorise (a voice, a scanner, a writing style), so scores overstate how it "
                "does on a new group. Split by group, so that each group lies in one split only.",
                examples,
            )
        ]

    @staticmethod
    def _example(task, name: str, members: np.ndarray, sizes: np.ndarray) -> dict:
        first: dict[str, int] = {}
        for i in members:
            first.setdefault(str(task.split[i]), task.origins[i])
        return {
            "group": str(name),
            "splits": {s: int(sizes[r]) for s, r in SPLIT_RANK.items() if sizes[r]},
            "origins": first,
        }
