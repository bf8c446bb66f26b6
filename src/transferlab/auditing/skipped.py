"""What the loader passed over, as audit findings, so a skip is always counted and shown.

The data sources never drop an example silently: files that are not examples (hidden or system
files, files that are not images, files outside a class folder) and class folders without any
image are recorded in ``Task.skipped``. Unreadable images are not skipped: the loader refuses
them with an error naming each file (see docs/INPUT.md).
"""

from __future__ import annotations

from pathlib import Path

from ..data.splits import Task
from .base import MAX_EXAMPLES, Finding, plural


def skipped_findings(task: Task) -> list[Finding]:
    """One finding per kind of skip: ``skipped_files`` (info) and ``empty_class_folders`` (warning)."""
    out = []
    ignored = [s for s in task.skipped if s.get("kind") == "ignored"]
    if ignored:
        names = ", ".join(Path(s["origin"]).name for s in ignored[:MAX_EXAMPLES])
        more = f" and {len(ignored) - MAX_EXAMPLES} more" if len(ignored) > MAX_EXAMPLES else ""
        out.append(
            Finding(
                "skipped_files",
                "info",
                len(ignored),
                f"Passed over {plural(len(ignored), 'file or folder', 'files or folders')} that are not examples "
                f"(hidden or system files, files that are not images, files outside a class folder): {names}{more}. "
                "If any of them should be an example, convert it to an image format transferlab reads and put it in "
                "its class folder.",
                [{"origin": s["origin"], "reason": s["reason"]} for s in ignored],
            )
        )
    empty = [s for s in task.skipped if s.get("kind") == "empty_class"]
    if empty:
        names = ", ".join(f"'{Path(s['origin']).name}'" for s in empty)
        out.append(
            Finding(
                "empty_class_folders",
                "warning",
                len(empty),
                f"{plural(len(empty), 'class folder')} without any image: {names}. "
                f"{'It is' if len(empty) == 1 else 'They are'} not a class of this task unless another split folder "
                "holds images of it. Add images, or remove the folder if the class is not wanted.",
                [{"origin": s["origin"], "reason": s["reason"]} for s in empty],
            )
        )
    return out
