"""Data audit: catch duplicates, leakage between splits, label problems and shifts before training.

    inputs = AuditInputs(task, features=embeddings, groups=patient_ids, times=timestamps)
    report = run_audit(inputs)
    task, notes = apply_leakage_policy(task, report, "dedupe")

Each check is a ``Check`` subclass registered in ``CHECKS``; see ``transferlab.auditing.checks``.
"""

from . import checks  # noqa: F401  (registers the checks)
from .base import CHECKS, AuditInputs, Check, Finding, register
from .matching import Matcher
from .runner import AuditReport, apply_leakage_policy, run_audit

__all__ = [
    "run_audit",
    "apply_leakage_policy",
    "AuditInputs",
    "AuditReport",
    "Finding",
    "Check",
    "CHECKS",
    "Matcher",
    "register",
]
