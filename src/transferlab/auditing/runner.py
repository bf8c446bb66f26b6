"""Run the data checks, and act on leakage between splits before any model is trained.

``run_audit`` runs every registered check whose inputs are available and records why the others
were skipped. ``apply_leakage_policy`` then decides what happens to examples that (nearly)
duplicate an example in a later split: drop the earlier copies (the default), stop, or carry on
with a warning. The user's files are never modified; only the in-memory task changes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..data.splits import Task
from ..errors import DataError
from .base import CHECKS, SEVERITIES, SPLIT_RANK, AuditInputs, Finding
from .skipped import skipped_findings

POLICIES = ("dedupe", "fail", "warn")
LEAKAGE_CHECKS = ("exact_duplicates", "near_duplicates")
SPLIT_WORDS = {"train": "training", "val": "validation", "test": "test"}


@dataclass
class AuditReport:
    """What the checks found. ``seconds`` is per check; the duplicate search the duplicate checks
    share is counted in the first of them to run."""

    findings: list[Finding]  # errors first, then warnings, then information
    skipped: list[Finding] = field(default_factory=list)  # one info finding per check that could not run
    seconds: dict[str, float] = field(default_factory=dict)

    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    def to_dict(self) -> dict:
        return {"findings": [f.to_dict() for f in self.findings], "skipped": [f.to_dict() for f in self.skipped],
                "seconds": {k: round(v, 3) for k, v in self.seconds.items()}}


def run_audit(inputs: AuditInputs, checks: list[str] | None = None) -> AuditReport:
    """Run the named checks (default: all registered), skipping those whose inputs are missing."""
    findings, skipped, seconds = skipped_findings(inputs.task), [], {}  # what the loader passed over
    for name in checks if checks is not None else CHECKS.list_():
        check = CHECKS.get(name)()
        reason = check.skip_reason(inputs)
        if reason:
            what = check.description[0].lower() + check.description[1:]
            skipped.append(Finding(name, "info", 0, f"Not checked: {what} This check {reason}"))
            continue
        start = time.perf_counter()
        findings += check.run(inputs)
        seconds[name] = time.perf_counter() - start
    findings.sort(key=lambda f: SEVERITIES.index(f.severity))
    return AuditReport(findings, skipped, seconds)


def leaked_pairs(report: AuditReport) -> list[tuple[int, int]]:
    """Cross-split duplicate and near-duplicate pairs (errors of the leakage checks)."""
    return [p for f in report.errors() if f.check in LEAKAGE_CHECKS for p in f.pairs]


def apply_leakage_policy(task: Task, report: AuditReport, policy: str = "dedupe") -> tuple[Task, list[str]]:
    """Apply the ``--on-leakage`` policy to cross-split (near-)duplicates; return the task and notes.

    * ``dedupe``: drop the copy in the earlier split of each pair (training copies of validation or
      test examples, validation copies of test examples). Test examples are never dropped, so the
      test set stays the one the user gave.
    * ``fail``: raise ``DataError`` naming how many pairs there are and two example origins.
    * ``warn``: keep everything, with a note that scores may be optimistic.
    """
    if policy not in POLICIES:
        raise DataError(f"Unknown leakage policy '{policy}'. Use --on-leakage with one of: {', '.join(POLICIES)}.")
    pairs = [(a, b) for a, b in leaked_pairs(report) if task.split[a] != task.split[b]]
    if not pairs:
        return task, []
    if policy == "fail":
        a, b = pairs[0]
        raise DataError(
            f"{len(pairs)} pairs of examples in different splits are duplicates or near-duplicates, e.g. "
            f"{task.origins[a]} ({task.split[a]}) and {task.origins[b]} ({task.split[b]}). Scores on such data "
            "overstate how a model does on new data. Remove the copies from your files, or rerun with "
            "--on-leakage dedupe (drop the earlier copies) or --on-leakage warn (keep them).")
    if policy == "warn":
        return task, [f"Kept {len(pairs)} cross-split duplicate or near-duplicate pairs (--on-leakage warn): "
                      "validation and test scores may be optimistic."]
    drop = {a if SPLIT_RANK[task.split[a]] < SPLIT_RANK[task.split[b]] else b for a, b in pairs}
    keep = np.setdiff1d(np.arange(len(task.items)), np.fromiter(drop, np.int64, len(drop)))
    deduped = task.select(keep)  # every per-example field (items, labels, origins, groups...) alike
    _check_classes_still_trainable(task, deduped)
    return deduped, _dedupe_notes(task, sorted(drop))


def _dedupe_notes(task: Task, dropped: list[int]) -> list[str]:
    notes = []
    for split, later in (("train", "validation or test"), ("val", "test")):
        n = sum(task.split[i] == split for i in dropped)
        if n:
            word = SPLIT_WORDS[split]
            notes.append(f"Removed {n} {word} example{'s' if n != 1 else ''} that duplicated {later} examples.")
    return notes


def _check_classes_still_trainable(before: Task, after: Task) -> None:
    """Dropping copies must not leave a validation or test label without training examples."""
    in_train = set(after.y[after.split == "train"].tolist())
    lost = sorted({int(c) for c in after.y[after.split != "train"]} - in_train)
    if lost:
        names = ", ".join(f"'{before.classes[c]}'" for c in lost)
        raise DataError(
            f"Dropping the training copies of validation and test examples leaves no training example of "
            f"{names}. Add distinct training examples of {names}, or rerun with --on-leakage warn.")
