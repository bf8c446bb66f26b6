"""Warnings the libraries raise during a run, kept out of the terminal and written to the run directory.

scikit-learn, torch and transformers warn about things a transferlab user cannot act on ("The
least populated class in y has only 1 member", "y_pred contains classes not in y_true" on a
small test split); dozens of them bury the run's own messages. Each distinct warning is counted
and written, with where it came from, to ``warnings.txt``, so none is lost.
"""

from __future__ import annotations

import warnings
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

FILE = "warnings.txt"


class Caught:
    """Distinct warnings (category, message, file, line) and how often each was raised."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self.out: Path | None = None  # the run directory, once it exists

    def record(self, message, category, filename, lineno, file=None, line=None) -> None:  # showwarning's signature
        self.counts[(category, str(message), str(filename), int(lineno))] += 1

    def text(self) -> str:
        lines = [
            "# Warnings raised by libraries during this run, kept out of the terminal.",
            "# count, category, where it was raised, message",
        ]
        for (category, message, filename, lineno), n in self.counts.most_common():
            lines.append(f"{n} x {category.__name__} at {filename}:{lineno}: {message}")
        return "\n".join(lines) + "\n"


@contextmanager
def captured(log: Callable[[str], None]) -> Iterator[Caught]:
    """Catch every warning raised inside; on the way out write them to ``<caught.out>/warnings.txt``
    and ``log`` one line saying so, or, when no run directory was made, show them as usual."""
    caught = Caught()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")  # counted here, so repeats cost a counter, not a line each
            for quiet in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
                warnings.filterwarnings("ignore", category=quiet)  # hidden by Python's own defaults too
            warnings.showwarning = caught.record
            yield caught
    finally:
        if caught.counts and caught.out is not None:
            path = Path(caught.out) / FILE
            path.write_text(caught.text(), encoding="utf-8")
            log(
                f"[dim]{sum(caught.counts.values())} library warnings ({len(caught.counts)} distinct) kept out "
                f"of the terminal: {path}[/]"
            )
        else:
            for (category, message, filename, lineno), _ in caught.counts.items():
                warnings.showwarning(message, category, filename, lineno)
