"""What every data check shares: its inputs, its findings, and the ``Check`` interface.

A check looks at one kind of data problem (duplicates, imbalance, ...) and returns findings a
user can act on: what was found, why it matters and what to do, with a few examples that point
back to the user's own rows or files. Checks are registered by name in ``CHECKS``, so adding
one is a new module with a ``Check`` subclass decorated with ``@register``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..data.splits import Task
from ..errors import DataError
from ..registry import Registry

SEVERITIES = ("error", "warning", "info")
MAX_EXAMPLES = 5
SNIPPET_CHARS = 200
SPLIT_RANK = {"train": 0, "val": 1, "test": 2}  # later splits are the ones kept when deduplicating
INPUT_HINTS = {
    "features": "embeddings from a pretrained backbone",
    "groups": "a group id per example (e.g. the patient, user or document it came from)",
    "times": "a timestamp per example",
}


@dataclass
class AuditInputs:
    """The task plus optional per-example side information, all aligned with ``task.items``."""

    task: Task
    features: np.ndarray | None = None  # (N, D) embeddings
    groups: np.ndarray | None = None  # (N,) group ids
    times: np.ndarray | None = None  # (N,) numbers or datetime64
    cache: dict = field(default_factory=dict, repr=False, compare=False)  # shared work, e.g. duplicate pairs

    def __post_init__(self) -> None:
        n = len(self.task.items)
        for name in ("features", "groups", "times"):
            value = getattr(self, name)
            if value is None:
                continue
            value = np.asarray(value)
            if len(value) != n:
                raise DataError(
                    f"The audit got {len(value)} {name} for {n} examples; pass one per example, "
                    "in the same order as the data."
                )
            setattr(self, name, value)
        if self.features is not None and self.features.ndim != 2:
            raise DataError(
                f"Audit features must be a 2-D array (examples x dimensions), got shape {self.features.shape}."
            )

    def has(self, name: str) -> bool:
        return name == "items" or getattr(self, name) is not None


@dataclass
class Finding:
    """One problem (or a clean bill) reported by a check."""

    check: str
    severity: str
    count: int
    message: str
    examples: list[dict] = field(default_factory=list)
    pairs: list[tuple[int, int]] = field(default_factory=list, repr=False)  # (index, index) for the leakage policy
    # (similarity, method) of each pair, aligned with ``pairs``, so what dedupe removes can be shown
    matches: list[tuple[float, str]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "severity": self.severity,
            "count": int(self.count),
            "message": self.message,
            "examples": self.examples[:MAX_EXAMPLES],
        }


class Check:
    """A data check in the style of an issue manager: declare what it needs, return findings."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    requires: ClassVar[frozenset[str]] = frozenset({"items"})

    def skip_reason(self, inputs: AuditInputs) -> str | None:
        """Why this check cannot run on these inputs, or None if it can."""
        missing = sorted(r for r in self.requires if not inputs.has(r))
        if missing:
            return "needs " + " and ".join(INPUT_HINTS.get(m, m) for m in missing) + ", which the audit was not given."
        return None

    def run(self, inputs: AuditInputs) -> list[Finding]:
        raise NotImplementedError

    def finding(
        self,
        severity: str,
        count: int,
        message: str,
        examples: list[dict] | None = None,
        pairs: list[tuple[int, int]] | None = None,
        matches: list[tuple[float, str]] | None = None,
    ) -> Finding:
        return Finding(
            self.name, severity, int(count), message, (examples or [])[:MAX_EXAMPLES], pairs or [], matches or []
        )


CHECKS: Registry[type[Check]] = Registry("audit check")


def register(cls: type[Check]) -> type[Check]:
    """Register a check class under its ``name``."""
    return CHECKS.register(cls.name)(cls)


def describe(task: Task, i: int) -> dict[str, Any]:
    """A JSON-safe pointer to example ``i``: where it came from, its split and label (and text)."""
    out = {
        "index": int(i),
        "split": str(task.split[i]),
        "origin": task.origins[i],
        "label": task.classes[int(task.y[i])],
    }
    if task.modality == "text":
        text = str(task.items[i])
        out["text"] = text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 3] + "..."
    return out


def describe_pair(task: Task, a: int, b: int, similarity: float, kind: str, method: str | None = None) -> dict:
    out = {"a": describe(task, a), "b": describe(task, b), "similarity": round(float(similarity), 3), "kind": kind}
    if method:
        out["method"] = method
    return out


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def split_breakdown(task: Task, pairs: list[tuple[int, int]]) -> str:
    """E.g. "5 train-test, 2 val-test": which splits the pairs connect, most frequent first."""
    counts: dict[str, int] = {}
    for a, b in pairs:
        key = "-".join(sorted((str(task.split[a]), str(task.split[b])), key=lambda s: SPLIT_RANK[s]))
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1]))
