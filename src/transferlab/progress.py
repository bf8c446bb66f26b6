"""Progress bars with ETA (rich) for extraction and training; silent when quiet."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Callable, Iterator


class Progress:
    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self._bar = None
        self.prefix = ""  # the run's stage, "[k/n] ", before each bar's description

    def log(self, message: str, soft_wrap: bool = False) -> None:
        """``soft_wrap``: long lines stay whole (a table) instead of wrapping at the terminal's width."""
        if self.quiet:
            return
        from rich.console import Console

        Console(stderr=True, highlight=False).print(message, soft_wrap=soft_wrap)

    @contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Callable[..., None]]:
        """Yields ``update(label, done, total)`` or ``update(advance)``."""
        description = self.prefix + description
        if self.quiet:
            yield lambda *args, **kwargs: None
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        bar = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=not sys.stderr.isatty(),
        )
        with bar:
            tid = bar.add_task(description, total=total)

            def update(*args) -> None:
                if len(args) == 1:  # advance by n
                    bar.advance(tid, args[0])
                else:  # (label, done, total)
                    label, done, tot = args
                    bar.update(tid, description=f"{description} {label}", completed=done, total=tot)

            yield update
