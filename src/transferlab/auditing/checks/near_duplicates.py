"""Nearly identical examples in different splits: edited, re-cased, truncated, cropped, flipped."""

from __future__ import annotations

from ..base import AuditInputs, Check, Finding, describe_pair, plural, register, split_breakdown
from ..matching import find_matches

METHODS = {
    "text": "overlapping character sequences",
    "image": "perceptual hashes (which survive resizing, re-encoding, brightness changes, 90% crops and flips) "
    "confirmed on the aligned pixels",
}


def _threshold_note(calibration: dict) -> str:
    """How strict the pixel confirmation was on this data, and why."""
    if "image_correlation" not in calibration:
        return ""
    median = calibration["same_class_median_correlation"]
    return (
        f"; a pair counts when its aligned pixels correlate at least {calibration['image_correlation']:.3f}, "
        f"a bar set on this data: two random images of one class correlate {median:.2f} at the median, and "
        "the more alike different images of one class are, the higher the bar"
    )


@register
class NearDuplicates(Check):
    name = "near_duplicates"
    description = "Examples in one split that are nearly identical to an example in another split."

    def skip_reason(self, inputs: AuditInputs) -> str | None:
        if inputs.task.modality not in METHODS and inputs.features is None:
            return (
                f"needs embeddings from a pretrained backbone to compare {inputs.task.modality} examples, "
                "which the audit was not given."
            )
        return super().skip_reason(inputs)

    def run(self, inputs: AuditInputs) -> list[Finding]:
        task = inputs.task
        matches = find_matches(inputs)
        near = matches.near
        across = near.select(task.split[near.a] != task.split[near.b])
        methods = [METHODS[task.modality]] if task.modality in METHODS else []
        if inputs.features is not None:
            methods.append("the cosine similarity of their embeddings")
        how = " and ".join(methods) + _threshold_note(matches.calibration)
        if not len(across):
            return [self.finding("info", 0, f"No nearly identical examples across splits (compared by {how}).")]
        pairs = across.as_list()
        examples = [
            describe_pair(task, a, b, across.similarity[i], "near", across.method[i])
            for i, (a, b) in enumerate(pairs[:5])
        ]
        return [
            self.finding(
                "error",
                len(pairs),
                f"{plural(len(pairs), 'pair')} of examples in different splits are nearly identical "
                f"({split_breakdown(task, pairs)}; compared by {how}). A model that has seen one is scored on the "
                "other, so its scores will be higher than on new data. Look at the examples: remove one of each pair "
                "from your files, or let transferlab drop the earlier copies (--on-leakage dedupe, the default).",
                examples,
                pairs,
                list(zip(across.similarity.tolist(), across.method.tolist())),
            )
        ]
