"""Whether validation and test have the same label mix as training."""

from __future__ import annotations

from ..base import AuditInputs, Check, Finding, register
from ..stats import compare, is_shift, label_counts, largest_changes


@register
class LabelShift(Check):
    name = "label_shift"
    description = "Validation or test label proportions that differ from training."

    def run(self, inputs: AuditInputs) -> list[Finding]:
        task = inputs.task
        k = len(task.classes)
        train = label_counts(task.part("train")[1], k)
        results, shifted = [], []
        for split in ("val", "test"):
            counts = label_counts(task.part(split)[1], k)
            if counts.sum() == 0:
                continue
            tvd, p = compare(train, counts)
            changes = largest_changes(task.classes, train, counts)
            results.append(
                {
                    "split": split,
                    "total_variation": round(tvd, 3),
                    "p_value": float(f"{p:.3g}"),
                    "largest_changes": [
                        {"label": c["label"], "train": c["before"], split: c["after"]} for c in changes
                    ],
                }
            )
            if is_shift(tvd, p):
                top = changes[0]
                shifted.append(
                    f"{split} (total variation {tvd:.2f}, chi-square p = {p:.1g}; '{top['label']}' is "
                    f"{top['before']:.0%} of train but {top['after']:.0%} of {split})"
                )
        if not shifted:
            return [
                self.finding(
                    "info",
                    0,
                    "Validation and test have the same label mix as train, up to chance or small differences.",
                    results,
                )
            ]
        return [
            self.finding(
                "warning",
                len(shifted),
                f"The label mix differs from train in {'; '.join(shifted)}. Scores then reflect a different mix from "
                "the one the model learned from, and accuracy moves with the mix alone. If the difference is "
                "deliberate (the mix you expect in use), keep it and compare models by balanced accuracy; otherwise "
                "split again, stratified by label (transferlab does when you give no split).",
                results,
            )
        ]
