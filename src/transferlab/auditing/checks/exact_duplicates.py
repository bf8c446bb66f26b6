"""Examples whose content is identical to another example's, within a split or across splits."""

from __future__ import annotations

from ..base import AuditInputs, Check, Finding, describe_pair, plural, register, split_breakdown
from ..matching import find_matches

SAME = {
    "text": "the same text once case, spacing and Unicode variants are ignored",
    "image": "the same pixels",
}


@register
class ExactDuplicates(Check):
    name = "exact_duplicates"
    description = "Examples that are the same text, image or file as another example."

    def run(self, inputs: AuditInputs) -> list[Finding]:
        task = inputs.task
        exact = find_matches(inputs).exact
        same = SAME.get(task.modality, "the same file content")
        across = exact.select(task.split[exact.a] != task.split[exact.b])
        within = exact.select(task.split[exact.a] == task.split[exact.b])
        findings = []
        if len(across):
            pairs = across.as_list()
            findings.append(
                self.finding(
                    "error",
                    len(pairs),
                    f"{plural(len(pairs), 'example')} in an earlier split also appear in a later one "
                    f"({split_breakdown(task, pairs)}; {same}). The model is then scored on examples it has "
                    "already seen, so its scores will be higher than on new data. Remove the copies from your "
                    "files, or let transferlab drop the earlier copies (--on-leakage dedupe, the default).",
                    [describe_pair(task, a, b, 1.0, "exact") for a, b in pairs[:5]],
                    pairs,
                    [(1.0, "exact")] * len(pairs),
                )
            )
        if len(within):
            pairs = within.as_list()
            findings.append(
                self.finding(
                    "warning",
                    len(pairs),
                    f"{plural(len(pairs), 'example')} repeat another example of the same split ({same}). Repeats "
                    "count several times in training and in the scores. Remove them unless the repetition is real "
                    "(the same input genuinely occurs more than once).",
                    [describe_pair(task, a, b, 1.0, "exact") for a, b in pairs[:5]],
                    pairs,
                )
            )
        return findings or [self.finding("info", 0, "No example is an exact copy of another.")]
