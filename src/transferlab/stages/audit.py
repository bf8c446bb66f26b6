"""The audit stage: check the split data, apply the leakage policy, and record what was found and
removed (with thumbnails of image pairs for the report)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import RunSpec
from ..data import Task
from ..progress import Progress
from .features import AuditEmbedding
from .store import StageStore


@dataclass
class AuditOutcome:
    """What the audit hands on: the task after the leakage policy, the results.json ``audit``
    section, and every (near-)duplicate pair by content hash, so that redrawn train/validation
    splits keep copies together (the pairs are working data, not written to results.json)."""

    task: Task
    record: dict
    pairs: list[tuple[str, str]] = field(default_factory=list)
    embedded: AuditEmbedding | None = None  # the first backbone's embeddings of every example


def run_audit_stage(
    task: Task,
    backbones: list,
    spec: RunSpec,
    progress: Progress,
    stages: StageStore | None = None,
    rank_only: bool = False,
) -> AuditOutcome:
    """Audit the split data, then apply the leakage policy; the outcome holds the (deduplicated) task.

    The first backbone embeds every example for the embedding-based near-duplicate search; the
    embeddings are kept so the rungs do not embed the same examples again.
    """
    if not spec.audit:
        return AuditOutcome(task, {"findings": [], "skipped": [], "seconds": {}})
    from ..auditing import AuditInputs, apply_leakage_policy, run_audit
    from ..features import extract

    embedded = None
    if backbones:
        b = backbones[0]
        with progress.task(
            f"embed all {len(task.items)} examples with {b.name} for the audit", len(task.items)
        ) as update:
            ex = extract(
                b,
                task.items,
                task.hashes,
                cache_dir=spec.cache_dir,
                batch_size=spec.extract_batch_size,
                progress=update,
            )
        embedded = AuditEmbedding(
            b.name, {h: i for i, h in enumerate(task.hashes)}, ex.features, ex.seconds, len(task.items), ex.from_cache
        )
    stages = stages or StageStore(Path("."), enabled=False)
    fingerprint = _fingerprint(task)
    saved = stages.load("audit")
    if saved is not None and saved.get("fingerprint") == fingerprint:
        progress.log("audit: read back from the unfinished run")
        task = task.select(np.asarray(saved["kept"], dtype=np.int64), saved["audit"]["actions"])
        pairs = saved.get("pairs", saved["audit"].pop("_pairs", []))  # older stage files: in the audit
        return AuditOutcome(task, saved["audit"], [(a, b) for a, b in pairs], embedded)
    with progress.task("audit"):
        report = run_audit(
            AuditInputs(
                task,
                features=None if embedded is None else np.asarray(embedded.features),
                groups=task.groups,
                times=task.times,
            )
        )
    audit = report.to_dict()
    from ..auditing.runner import LEAKAGE_CHECKS

    pairs = [(task.hashes[a], task.hashes[b]) for f in report.findings if f.check in LEAKAGE_CHECKS for a, b in f.pairs]
    row = {origin: i for i, origin in enumerate(task.origins)}  # origins (file, row) are unique
    # audit and rank report, and score no test set: they never stop to ask before removing copies
    deduped, notes = apply_leakage_policy(
        task,
        report,
        spec.on_leakage,
        confirmed=spec.confirm_dedupe,
        max_share=None if rank_only else spec.max_dedupe_share,
    )
    audit["policy"] = spec.on_leakage
    audit["actions"] = notes
    if spec.on_leakage == "dedupe":
        audit.update(_dedupe_record(task, deduped, report, spec))
    if task.modality == "image":
        _add_thumbnails(
            [e for f in audit["findings"] for e in f.get("examples") or []] + audit.get("removed", []), task
        )
    if embedded:
        audit["embedding_backbone"] = embedded.backbone
    kept = [row[origin] for origin in deduped.origins]
    saved = stages.save("audit", {"fingerprint": fingerprint, "kept": kept, "audit": audit, "pairs": pairs})
    deduped.notes.extend(notes)
    for f in report.findings:
        if f.severity == "error":
            progress.log(f"[red]audit:[/] {f.message}")
    return AuditOutcome(deduped, saved["audit"], [(a, b) for a, b in saved["pairs"]], embedded)


def _dedupe_record(before: Task, after: Task, report, spec: RunSpec) -> dict:
    """What dedupe removed, for results.json: counts and shares per split, and the removed copies next
    to the examples they duplicated (the first few; ``dedupe.removed`` has the totals)."""
    from ..auditing.runner import removal_shares, removed_pairs

    kept = set(after.origins)
    removal = removal_shares(before, [i for i, origin in enumerate(before.origins) if origin not in kept])
    over = any(share > spec.max_dedupe_share for _, _, share in removal.values())
    return {
        "dedupe": {
            "removed": {s: n for s, (n, _, _) in removal.items()},
            "share": {s: round(share, 4) for s, (_, _, share) in removal.items()},
            "max_share": spec.max_dedupe_share,
            "over_max_share": over,
            "confirmed": spec.confirm_dedupe,
        },
        "removed": removed_pairs(before, report) if len(after.items) < len(before.items) else [],
    }


def _fingerprint(task: Task) -> str:
    """What the data and its split were, to check that a resumed run reads the same examples."""
    import hashlib

    h = hashlib.sha256()
    for item_hash, split, y in zip(task.hashes, task.split, task.y):
        h.update(f"{item_hash}{split}{int(y)}".encode())
    return h.hexdigest()


def _add_thumbnails(examples: list[dict], task: Task, size: int = 64) -> None:
    """Small PNGs of the images in example pairs, so the report can show them side by side."""
    import base64
    import io

    from ..backbones.images import load_image

    cache: dict[int, str] = {}

    def thumbnail(i: int) -> str:
        if i not in cache:
            im = load_image(task.items[i])
            im.thumbnail((size, size))
            buf = io.BytesIO()
            im.save(buf, format="PNG")
            cache[i] = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
        return cache[i]

    for example in examples:
        for side in ("a", "b"):
            entry = example.get(side) if isinstance(example, dict) else None
            if isinstance(entry, dict) and isinstance(entry.get("index"), int):
                entry["thumbnail"] = thumbnail(entry["index"])
