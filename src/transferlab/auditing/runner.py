"""Run the data checks, and act on leakage between splits before any model is trained.

``run_audit`` runs every registered check whose inputs are available and records why the others
were skipped. ``apply_leakage_policy`` then decides what happens to examples that (nearly)
duplicate an example in a later split: drop the earlier copies (the default; above a small share
of a split only when confirmed), stop, or carry on with a warning. The user's files are never
modified; only the in-memory task changes.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from ..data.splits import Task
from ..errors import DataError
from .base import CHECKS, SEVERITIES, SPLIT_RANK, AuditInputs, Finding, describe_pair, plural
from .skipped import skipped_findings

POLICIES = ("dedupe", "fail", "warn")
LEAKAGE_CHECKS = ("exact_duplicates", "near_duplicates")
SPLIT_WORDS = {"train": "training", "val": "validation", "test": "test"}
MAX_DEDUPE_SHARE = 0.05  # of the training or validation split that dedupe removes without asking
DEDUPE_SAMPLE = 3  # pairs named when dedupe stops to ask
MAX_REMOVED_SHOWN = 24  # removed copies kept (with thumbnails) in results.json and the report


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
        return {
            "findings": [f.to_dict() for f in self.findings],
            "skipped": [f.to_dict() for f in self.skipped],
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


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


@dataclass
class Leak:
    """A cross-split pair as dedupe sees it: the copy it drops (the earlier split) and the one it keeps."""

    drop: int
    keep: int
    similarity: float
    method: str


def leaks(task: Task, report: AuditReport) -> list[Leak]:
    """Every cross-split pair of the leakage checks, earlier split first, with how it was matched."""
    out = []
    for f in report.errors():
        if f.check not in LEAKAGE_CHECKS:
            continue
        unknown = (1.0 if f.check == "exact_duplicates" else float("nan"), f.check)  # a check that gave pairs only
        matches = f.matches if len(f.matches) == len(f.pairs) else [unknown] * len(f.pairs)
        for (a, b), (similarity, method) in zip(f.pairs, matches):
            if task.split[a] == task.split[b]:
                continue
            if SPLIT_RANK[task.split[a]] > SPLIT_RANK[task.split[b]]:
                a, b = b, a
            out.append(Leak(int(a), int(b), float(similarity), str(method)))
    return out


def apply_leakage_policy(
    task: Task,
    report: AuditReport,
    policy: str = "dedupe",
    *,
    max_share: float | None = MAX_DEDUPE_SHARE,
    confirmed: bool = False,
) -> tuple[Task, list[str]]:
    """Apply the ``--on-leakage`` policy to cross-split (near-)duplicates; return the task and notes.

    * ``dedupe``: drop the copy in the earlier split of each pair (training copies of validation or
      test examples, validation copies of test examples). Test examples are never dropped, so the
      test set stays the one the user gave. If that would remove more than ``max_share`` of the
      training or validation split, raise ``DataError`` with sample pairs unless ``confirmed``:
      so many matches can as well be a matcher gone wrong, and dropping them unseen would cut the
      data and still call the test scores clean. ``max_share=None`` sets no limit.
    * ``fail``: raise ``DataError`` naming how many pairs there are and two example origins.
    * ``warn``: keep everything, with a note that scores may be optimistic.
    """
    if policy not in POLICIES:
        raise DataError(f"Unknown leakage policy '{policy}'. Use --on-leakage with one of: {', '.join(POLICIES)}.")
    found = leaks(task, report)
    if not found:
        return task, []
    if policy == "fail":
        a, b = found[0].drop, found[0].keep
        raise DataError(
            f"{len(found)} pairs of examples in different splits are duplicates or near-duplicates, e.g. "
            f"{task.origins[a]} ({task.split[a]}) and {task.origins[b]} ({task.split[b]}). Scores on such data "
            "overstate how a model does on new data. Remove the copies from your files, or rerun with "
            "--on-leakage dedupe (drop the earlier copies) or --on-leakage warn (keep them)."
        )
    if policy == "warn":
        return task, [
            f"Kept {len(found)} cross-split duplicate or near-duplicate pairs (--on-leakage warn): "
            "validation and test scores may be optimistic."
        ]
    drop = sorted({leak.drop for leak in found})
    removal = removal_shares(task, drop)
    over = max_share is not None and any(share > max_share for _, _, share in removal.values())
    if over and not confirmed:
        assert max_share is not None  # over is False without a limit
        raise DataError(_too_many_message(task, found, removal, max_share))
    keep = np.setdiff1d(np.arange(len(task.items)), np.asarray(drop, dtype=np.int64))
    deduped = task.select(keep)  # every per-example field (items, labels, origins, groups...) alike
    _check_classes_still_trainable(task, deduped)
    return deduped, _dedupe_notes(removal, confirmed=over)


def removal_shares(task: Task, dropped) -> dict[str, tuple[int, int, float]]:
    """{split: (examples removed, examples before, share removed)} for the splits dedupe touches."""
    out = {}
    for split in ("train", "val"):
        size = int(np.sum(task.split == split))
        n = sum(task.split[i] == split for i in dropped)
        out[split] = (int(n), size, n / size if size else 0.0)
    return out


def removed_pairs(task: Task, report: AuditReport, limit: int = MAX_REMOVED_SHOWN) -> list[dict]:
    """The first ``limit`` copies dedupe removes, each next to the example it duplicated (one pair each)."""
    seen, out = set(), []
    for leak in leaks(task, report):
        if leak.drop in seen:
            continue
        seen.add(leak.drop)
        kind = "exact" if leak.method == "exact" else "near"
        pair = describe_pair(task, leak.drop, leak.keep, leak.similarity, kind, leak.method)
        if math.isnan(leak.similarity):
            del pair["similarity"]
        out.append(pair)
        if len(out) == limit:
            break
    return out


def _too_many_message(task: Task, found: list[Leak], removal: dict, max_share: float) -> str:
    """One line, like every user error: the counts, the least similar pairs, and the ways on."""
    counts = " and ".join(
        f"{n} of {size} {SPLIT_WORDS[split]} examples ({share:.1%})" for split, (n, size, share) in removal.items() if n
    )
    # the least similar first: where a matcher that went wrong shows first
    sample = sorted(found, key=lambda leak: (np.nan_to_num(leak.similarity, nan=-1.0), leak.drop))[:DEDUPE_SAMPLE]
    return (
        f"--on-leakage dedupe would remove {counts}, more than the {max_share * 100:g}% of a split it removes "
        "without asking (max_dedupe_share). So many matches may be real copies, or a near-duplicate search "
        "matching examples that only look alike; removing them unseen would cut the data and still call the "
        f"test scores clean. {plural(len(found), 'pair')} in all; the least similar (removed copy ~ the example "
        f"it matches): {'; '.join(_pair_line(task, leak) for leak in sample)}. To go on, look at the pairs with "
        "`transferlab audit DATA` (same data and column options; its report.html shows them side by side as "
        "thumbnails or text snippets), then rerun with --on-leakage warn to keep them, or with --on-leakage "
        "dedupe --confirm-dedupe to remove them anyway."
    )


def _pair_line(task: Task, leak: Leak) -> str:
    def side(i: int) -> str:
        return f"{task.origins[i]} ({task.split[i]}, label '{task.classes[int(task.y[i])]}')"

    how = "exact copy" if leak.method == "exact" else f"matched by {leak.method}"
    if leak.method != "exact" and not math.isnan(leak.similarity):
        how = f"similarity {leak.similarity:.3f} by {leak.method}"
    return f"{side(leak.drop)} ~ {side(leak.keep)}, {how}"


def _dedupe_notes(removal: dict, confirmed: bool) -> list[str]:
    """One note per split; ``confirmed``: more than the share was removed at the user's word."""
    notes = []
    for split, later in (("train", "validation or test"), ("val", "test")):
        n, _, share = removal[split]
        if n:
            word = SPLIT_WORDS[split]
            note = f"Removed {n} {word} example{'s' if n != 1 else ''} that duplicated {later} examples"
            notes.append(
                note + (f" ({share:.1%} of the {word} split; confirmed: --confirm-dedupe)." if confirmed else ".")
            )
    return notes


def _check_classes_still_trainable(before: Task, after: Task) -> None:
    """Dropping copies must not empty the training or validation split, nor leave a validation or
    test label without training examples."""
    for split in ("train", "val"):
        if (before.split == split).any() and not (after.split == split).any():
            word = SPLIT_WORDS[split]
            raise DataError(
                f"Every {word} example duplicates an example of a later split, so dropping the copies leaves no "
                f"{word} examples. Check the data (are the texts or files distinct?), or rerun with "
                "--on-leakage warn to keep the copies."
            )
    in_train = set(after.y[after.split == "train"].tolist())
    lost = sorted({int(c) for c in after.y[after.split != "train"]} - in_train)
    if lost:
        names = ", ".join(f"'{before.classes[c]}'" for c in lost)
        raise DataError(
            f"Dropping the training copies of validation and test examples leaves no training example of "
            f"{names}. Add distinct training examples of {names}, or rerun with --on-leakage warn."
        )
