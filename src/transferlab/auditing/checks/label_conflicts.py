"""Identical or nearly identical inputs that carry different labels."""

from __future__ import annotations

import numpy as np

from ..base import AuditInputs, Check, Finding, describe_pair, plural, register
from ..matching import find_matches


@register
class LabelConflicts(Check):
    name = "label_conflicts"
    description = "Identical or nearly identical examples that have different labels."

    def run(self, inputs: AuditInputs) -> list[Finding]:
        task = inputs.task
        matches = find_matches(inputs)
        exact = exact_conflicts(matches.group, task.y)
        near = matches.near.select(task.y[matches.near.a] != task.y[matches.near.b])
        pairs = exact + near.as_list()
        if not pairs:
            return [self.finding("info", 0, "No identical or nearly identical examples disagree on their label.")]
        examples = [describe_pair(task, a, b, 1.0, "exact") for a, b in exact[:5]]
        examples += [
            describe_pair(task, a, b, near.similarity[i], "near", near.method[i])
            for i, (a, b) in enumerate(near.as_list()[: 5 - len(examples)])
        ]
        return [
            self.finding(
                "error",
                len(pairs),
                f"{plural(len(pairs), 'pair')} of identical or nearly identical inputs have different labels "
                f"({len(exact)} identical, {len(near)} nearly identical). No model can get both right, so at least "
                "one label is probably wrong, and a wrong test label penalises every model alike. Check these "
                "examples and correct or remove the wrong label.",
                examples,
                pairs,
            )
        ]


def exact_conflicts(group: np.ndarray, y: np.ndarray) -> list[tuple[int, int]]:
    """In each group of identical inputs with mixed labels, pair every example whose label differs
    from the group's most common label with the first example that has the most common label."""
    order = np.lexsort((np.arange(len(group)), group))
    starts = np.flatnonzero(np.r_[True, group[order][1:] != group[order][:-1]])
    ends = np.r_[starts[1:], len(order)]
    labels = y[order]
    mixed = np.minimum.reduceat(labels, starts) != np.maximum.reduceat(labels, starts)
    pairs = []
    for start, end in zip(starts[mixed], ends[mixed]):
        members, member_labels = order[start:end], labels[start:end]
        majority = np.bincount(member_labels).argmax()
        keep = members[member_labels == majority][0]
        pairs += [(int(i), int(keep)) for i in members[member_labels != majority]]
    return pairs
