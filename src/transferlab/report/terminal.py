"""The ladder as a rich table, for the end of a run and for the command line.

It mirrors the HTML report's main table with the same formatting, narrowed to fit an 80-column
terminal: confidence intervals and total parameter counts sit on a dim second line. Every cell
is a ``Text`` object, so a name containing ``[brackets]`` is shown as is, not parsed as markup.
"""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .formatting import (
    best_rung_indices,
    display,
    fmt_ci,
    fmt_count,
    fmt_num,
    fmt_quantity,
    get,
    metric_mean,
)

METRICS = (
    ("accuracy", "test acc."),
    ("balanced_accuracy", "balanced acc."),
    ("macro_f1", "macro-F1"),
)


def _metric_cell(metric) -> Text:
    mean, ci = metric_mean(metric), fmt_ci(metric)
    cell = Text(fmt_num(mean))
    if mean is not None and ci is not None:
        cell.append(f"\n{ci}", style="dim")
    return cell


def _params_cell(cost: dict) -> Text:
    cell = Text(fmt_count(cost.get("trainable_params")))
    if cost.get("total_params") is not None:
        cell.append(f"\nof {fmt_count(cost['total_params'])}", style="dim")
    return cell


def _row(rung: dict) -> list[Text]:
    test, cost = rung.get("test") or {}, rung.get("cost") or {}
    return [
        Text(display(rung.get("name"))),
        *(_metric_cell(test.get(key)) for key, _ in METRICS),
        Text(fmt_quantity(cost.get("fit_seconds"))),
        _params_cell(cost),
    ]


def summary_table(results: dict) -> Table:
    """One row per rung with test metrics and cost; the best test macro-F1 is bold green."""
    rungs = results.get("rungs") or []
    best = best_rung_indices(rungs)
    table = Table(
        title="transferlab ladder (test set)",
        box=box.SIMPLE_HEAD,
        header_style="bold",
        show_edge=False,
        collapse_padding=True,
    )
    table.add_column("rung", min_width=10, overflow="fold")
    for _, header in METRICS:
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("fit s", justify="right", no_wrap=True)
    table.add_column("trainable", justify="right", no_wrap=True)
    for i, rung in enumerate(rungs):
        table.add_row(*_row(rung), style="bold green" if i in best else None)
    return table


RANKING_SCORES = (("logme", "LogME"), ("hscore_shrinkage", "H-score (LW)"), ("knn_accuracy", "kNN acc."),
                  ("linear_probe_accuracy", "probe acc."))


def ranking_table(results: dict) -> Table:
    """Candidates, best LogME first: scores on the training split next to size and speed."""
    table = Table(title="candidate backbones (training split, no training)", box=box.SIMPLE_HEAD,
                  header_style="bold", show_edge=False, collapse_padding=True)
    table.add_column("backbone", overflow="ellipsis", no_wrap=True, max_width=28)
    for _, header in RANKING_SCORES:
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("params", justify="right", no_wrap=True)
    table.add_column("items/s", justify="right", no_wrap=True)
    table.add_column("pretrained on", overflow="ellipsis", no_wrap=True, max_width=24)
    for c in results.get("ranking") or []:
        scores = c.get("scores") or {}
        table.add_row(Text(display(c.get("backbone"))), *(Text(fmt_num(scores.get(k))) for k, _ in RANKING_SCORES),
                      Text(fmt_count(c.get("params"))), Text(fmt_quantity(c.get("items_per_second"))),
                      Text(display(c.get("pretrained_on"))))
    return table


SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def print_summary(results: dict, console: Console | None = None) -> None:
    """Notes first (they qualify the numbers), then candidates, the ladder, verdicts, recommendation."""
    console = console or Console()
    for note in results.get("notes") or []:
        console.print(Text(f"note: {note}", style="yellow"))
    if results.get("ranking") and any(c.get("scores") for c in results["ranking"]):
        console.print(ranking_table(results))
    if results.get("rungs"):
        console.print(summary_table(results))
    for v in results.get("verdicts") or []:
        if not isinstance(v, dict):
            v = {"message": str(v)}
        severity = str(v.get("severity", "info"))
        line = Text(f"{severity}: ", style=SEVERITY_STYLE.get(severity, ""))
        line.append(str(v.get("message", "")))
        if v.get("action"):
            line.append(f" → {v['action']}", style="dim")
        console.print(line)
    rung, why = get(results, "recommendation", "rung"), get(results, "recommendation", "why")
    if rung:
        line = Text.assemble(("recommended: ", "bold"), (str(rung), "bold green"))
        if why:
            line.append(f" — {why}")
        console.print(line)
