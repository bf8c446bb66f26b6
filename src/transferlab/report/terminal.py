"""The run as rich tables and lines, for the end of a run and for the command line.

It mirrors the HTML report with the same formatting, narrowed to stay readable in an 80-column
terminal: intervals and total parameter counts sit on a dim second line, and the columns that
only help a wider reader (calibration, provenance) appear from ``WIDE`` columns on. Every cell
is a ``Text`` object, so a name containing ``[brackets]`` is shown as is, not parsed as markup.
"""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .formatting import (
    MISSING,
    best_rung_indices,
    display,
    fmt_count,
    fmt_metric,
    fmt_num,
    fmt_quantity,
    fmt_within_noise,
    get,
    is_number,
    metric_ci,
    metric_mean,
    severity,
    severity_rank,
    test_cannot_decide,
)
from .ranking import LEAD, lead_order

WIDE = 100
NAME_CHARS = 20  # rung names longer than this are broken at the colon in a narrow terminal
METRICS = (
    ("accuracy", "test acc."),
    ("balanced_accuracy", "bal. acc."),
    ("macro_f1", "macro-F1"),
)
RANKING_SCORES = tuple(
    sorted(
        (  # the report's leading score first
            ("logme", "LogME"),
            ("hscore_shrinkage", "H-LW"),
            ("knn_accuracy", "kNN"),
            ("linear_probe_accuracy", "probe"),
        ),
        key=lambda score: score[0] != LEAD,
    )
)
SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def _table(title: str) -> Table:
    return Table(
        title=title, box=box.SIMPLE_HEAD, header_style="bold", show_edge=False, collapse_padding=True, pad_edge=False
    )


def _metric_cell(metric) -> Text:
    """The mean over its interval; ``0.620–0.700`` is the bracketed HTML interval, narrowed."""
    mean, ci = metric_mean(metric), metric_ci(metric)
    cell = Text(fmt_num(mean))
    if mean is not None and ci is not None:
        cell.append(f"\n{ci[0]:.3f}–{ci[1]:.3f}", style="dim")
    return cell


def _params_cell(cost: dict) -> Text:
    cell = Text(fmt_count(cost.get("trainable_params")))
    if cost.get("total_params") is not None:
        cell.append(f"\nof {fmt_count(cost['total_params'])}", style="dim")
    return cell


def _fit_cell(cost: dict) -> Text:
    """Fit seconds, with the embedding time beneath for rungs trained on extracted features."""
    cell = Text(fmt_quantity(cost.get("fit_seconds")))
    if cost.get("extract_seconds"):
        cell.append(f"\n+{fmt_quantity(cost['extract_seconds'])} emb", style="dim")
    return cell


def _name_cell(name: str, wide: bool) -> Text:
    """A long ``strategy:backbone`` name breaks after its colon rather than mid-word when narrow."""
    if not wide and len(name) > NAME_CHARS and ":" in name:
        strategy, _, backbone = name.partition(":")
        return Text(f"{strategy}:\n{backbone}")
    return Text(name)


def _row(rung: dict, wide: bool, with_ece: bool) -> list[Text]:
    test, cost = rung.get("test") or {}, rung.get("cost") or {}
    ece = [Text(fmt_num(metric_mean(test.get("ece"))))] if with_ece else []
    name = _name_cell(display(rung.get("name")), wide)
    if rung.get("reused_from"):  # its numbers, fit time included, are those of the run it came from
        name.append("\n(reused)", style="dim")
    return [
        name,
        *(_metric_cell(test.get(key)) for key, _ in METRICS),
        *ece,
        _fit_cell(cost),
        _params_cell(cost),
    ]


def summary_table(results: dict, wide: bool = False) -> Table:
    """One row per rung with test metrics and cost; the best test macro-F1 is bold green, unless
    the test split cannot compare rungs."""
    rungs = results.get("rungs") or []
    undecided = test_cannot_decide(results)
    best = set() if undecided else best_rung_indices(rungs)
    with_ece = wide and any(metric_mean(get(rung, "test", "ece")) is not None for rung in rungs)
    table = _table(
        "transferlab ladder (test set: it cannot compare rungs, see above)"
        if undecided
        else "transferlab ladder (test set)"
    )
    table.add_column("rung", min_width=12, overflow="fold")
    for _, header in METRICS:
        table.add_column(header, justify="right", no_wrap=True)
    if with_ece:
        table.add_column("ECE", justify="right", no_wrap=True)
    table.add_column("fit s", justify="right", no_wrap=True)
    table.add_column("trainable", justify="right", no_wrap=True)
    for i, rung in enumerate(rungs):
        table.add_row(*_row(rung, wide, with_ece), style="bold green" if i in best else None)
    return table


def _candidates(results: dict) -> list[dict]:
    """The ranked candidates in the report's order (the leading score's best first)."""
    return lead_order([c for c in results.get("ranking") or [] if isinstance(c, dict)])


def ranking_table(results: dict, wide: bool = False) -> Table:
    """Candidates, the leading score's best first: predicted accuracy, P(best) and the scores next
    to size and speed. With the predicted accuracy (which is the probe's score) the table keeps
    to the leading score, LogME and LEEP (wide), size and memory, so that no number is cut short;
    the HTML report has every score."""
    candidates = _candidates(results)
    predicted = any(c.get("predicted_frozen_accuracy") for c in candidates)
    p_best = any(is_number(c.get("p_best")) for c in candidates)
    table = _table("candidate backbones (training split, no training)")
    table.add_column(
        "backbone",
        overflow="ellipsis",
        no_wrap=True,
        min_width=10,
        max_width=(24 if wide else 16) if predicted else 40 if wide else 24,
    )
    if predicted:  # the frozen accuracy the probe predicts, with its 95% interval
        table.add_column("pred. acc [95%]", justify="right", no_wrap=True, min_width=20)
    if p_best:
        table.add_column("P(best)", justify="right", no_wrap=True, min_width=7)
    keep = {LEAD, "logme"} if wide else {LEAD}
    shown = [score for score in RANKING_SCORES if not predicted or score[0] in keep]
    # LEEP only when some candidate has a source classifier (image models pretrained on ImageNet)
    if (wide or not predicted) and any("leep" in (c.get("scores") or {}) for c in candidates):
        shown.append(("leep", "LEEP"))
    for _, header in shown:
        table.add_column(header, justify="right", no_wrap=True, min_width=6)
    near = _proximity_columns(candidates, wide)
    for _, header in near:
        table.add_column(header, justify="right", no_wrap=True, min_width=4)
    table.add_column("params", justify="right", no_wrap=True, min_width=6)
    if not predicted:
        table.add_column("items/s", justify="right", no_wrap=True)
    table.add_column("peak MB", justify="right", no_wrap=True, min_width=7)  # weights + the rise embedding a batch
    if wide and not predicted:
        table.add_column("pretrained on", overflow="ellipsis", no_wrap=True, max_width=30)
    for c in candidates:
        scores, unavailable = c.get("scores") or {}, c.get("scores_unavailable") or {}
        cells = [
            Text(display(c.get("backbone"))),
            *([Text(fmt_metric(c.get("predicted_frozen_accuracy")))] if predicted else []),
            *([Text(fmt_num(c.get("p_best"), 2))] if p_best else []),
            *(Text("n/a" if k not in scores and k in unavailable else fmt_num(scores.get(k))) for k, _ in shown),
            *(Text(_proximity_value(c, k)) for k, _ in near),
            Text(fmt_count(c.get("params"))),
            *([] if predicted else [Text(fmt_quantity(c.get("items_per_second")))]),
            Text(fmt_quantity(c.get("peak_memory_mb"))),
        ]
        if wide and not predicted:
            cells.append(Text(display(c.get("pretrained_on"))))
        table.add_row(*cells)
    return table


# Label-free proximity to the pretraining data, next to the scores (ranking/proximity.py)
PROXIMITY_COLUMNS = (("source_information", "src\ninfo"), ("centroid_cosine", "ctr\ncos"))  # two-line: narrow
PROXIMITY_NOTE = (
    "label-free closeness of the data to what each model was pretrained on ({}); a warning sign, not a "
    "choice: in the project's benchmark it separated random weights from pretrained ones but ranked "
    "candidates weakly (weighted tau src info +0.24, ctr cos +0.30, below kNN's)."
)
PROXIMITY_MEANING = {"source_information": "higher src info = nearer", "centroid_cosine": "lower ctr cos = nearer"}


def _proximity_columns(candidates: list[dict], wide: bool) -> list[tuple[str, str]]:
    """Source info when some candidate has a source classifier; the centroid cosine when wide."""
    present = [c.get("domain_proximity") for c in candidates if isinstance(c.get("domain_proximity"), dict)]
    return [
        (key, header)
        for key, header in PROXIMITY_COLUMNS
        if any(key in p for p in present) and (wide or key == "source_information")
    ]


def _proximity_value(candidate: dict, key: str) -> str:
    p = candidate.get("domain_proximity")
    if not isinstance(p, dict):
        return MISSING
    return fmt_num(p[key], 2) if key in p else "n/a"


def _verdicts(verdicts: list) -> Table:
    """Severity in a column of its own, so messages and actions wrap under each other."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column()
    items = [v if isinstance(v, dict) else {"message": v} for v in verdicts]
    for v in sorted(items, key=lambda v: severity_rank(v.get("severity"))):
        level = severity(v.get("severity"))
        body = Text(display(v.get("message", "")))
        if v.get("action"):
            body.append(f"\n→ {display(v['action'])}", style="dim")
        grid.add_row(Text(level or "•", style=SEVERITY_STYLE.get(level, "")), body)
    return grid


def _recommendation(recommendation: dict) -> Text:
    if not recommendation.get("rung"):
        why = display(recommendation.get("why") or "").removeprefix("No recommendation: ")
        return Text.assemble(("no recommendation: ", "bold red"), why)
    line = Text.assemble(("recommended: ", "bold"), (display(recommendation["rung"]), "bold green"))
    if recommendation.get("why"):
        line.append(f" — {display(recommendation['why'])}")
    noise = fmt_within_noise(recommendation.get("within_noise_of_best"))
    if noise:
        line.append(f"\n{noise}", style="dim")
    return line


def print_summary(results: dict, console: Console | None = None) -> None:
    """Notes first (they qualify the numbers), then candidates, the ladder, verdicts, recommendation."""
    console = console or Console()
    wide = console.width >= WIDE
    for note in results.get("notes") or []:
        console.print(Text(f"note: {note}", style="yellow"))
    audit = results.get("audit") or {}
    for f in audit.get("findings") or []:
        if isinstance(f, dict) and f.get("severity") in ("error", "warning"):
            line = Text(f"audit {f['severity']}: ", style=SEVERITY_STYLE.get(f["severity"], ""))
            console.print(line.append(f"{f.get('check', '')}: {f.get('message', '')}"))
    for action in audit.get("actions") or []:
        console.print(Text(f"audit: {action}", style="yellow"))
    if any(c.get("scores") for c in _candidates(results)):
        console.print(ranking_table(results, wide))
        near = _proximity_columns(_candidates(results), wide)
        if near:
            meaning = ", ".join(PROXIMITY_MEANING[key] for key, _ in near)
            names = " / ".join(header.replace("\n", " ") for _, header in near)
            console.print(Text(f"{names}: {PROXIMITY_NOTE.format(meaning)}", style="dim"))
    verdicts = results.get("verdicts") or []
    blocking = [v for v in verdicts if isinstance(v, dict) and v.get("code") == "test_cannot_decide"]
    if blocking:  # before the ladder, whose test scores it says cannot be compared
        console.print(_verdicts(blocking))
    if results.get("rungs"):
        console.print(summary_table(results, wide))
    rest = [v for v in verdicts if not any(v is b for b in blocking)]
    if rest:
        console.print(_verdicts(rest))
    if get(results, "recommendation", "rung") or get(results, "recommendation", "why"):
        console.print(_recommendation(results["recommendation"]))
