"""Inline SVG line charts of training curves, drawn without a plotting library.

The report must open offline and stay small, so the charts are plain SVG strings. Every piece of
text that reaches the markup is passed through ``markupsafe.escape``; the result is returned as
``Markup`` so the template can embed it without ``|safe``.
"""

from __future__ import annotations

import math

from markupsafe import Markup, escape

from .formatting import is_number

WIDTH, HEIGHT = 500, 230
LEFT, RIGHT, TOP, BOTTOM = 46, 14, 34, 36
COLOURS = {"train": "#2563eb", "validation": "#ea580c"}


def _number(value) -> float | None:
    """A plottable float, or None for gaps (missing epochs, NaN from a diverged run)."""
    return float(value) if is_number(value) else None


def _ticks(lo: float, hi: float, integer: bool = False, target: int = 5):
    """Round tick values covering [lo, hi]; a flat range is padded so a lone point sits mid-axis."""
    if hi - lo < 1e-12:
        pad = 1.0 if integer else max(abs(lo) * 0.1, 0.05)
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / target
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if integer:
        step = max(1.0, float(round(step)))
    lo = math.floor(lo / step + 1e-9) * step
    hi = math.ceil(hi / step - 1e-9) * step
    return lo, hi, [lo + i * step for i in range(round((hi - lo) / step) + 1)]


def _tick_label(value: float) -> str:
    return f"{round(value, 10):g}"


def _segments(points: list) -> list[list]:
    """Split a series at its gaps so a missing value breaks the line instead of bridging it."""
    runs, current = [], []
    for point in points:
        if point is None:
            if current:
                runs.append(current)
            current = []
        else:
            current.append(point)
    return runs + [current] if current else runs


def line_chart(title: str, epochs: list, series: dict, phases=(), best_epoch=None) -> Markup:
    """One chart: epoch on x, a line per series (name -> values aligned with ``epochs``)."""
    xs = [_number(x) for x in epochs]
    data = {name: [(x, _number(y)) for x, y in zip(xs, ys)] for name, ys in series.items()}
    x_known = [x for x in xs if x is not None]
    y_known = [y for pts in data.values() for x, y in pts if x is not None and y is not None]
    if not x_known or not y_known:
        return Markup("")
    x_lo, x_hi, x_ticks = _ticks(min(x_known), max(x_known), integer=True)
    y_lo, y_hi, y_ticks = _ticks(min(y_known), max(y_known))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(x):
        return LEFT + (x - x_lo) / (x_hi - x_lo) * plot_w

    def sy(y):
        return TOP + plot_h - (y - y_lo) / (y_hi - y_lo) * plot_h

    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>',
        f'<text class="chart-title" x="{LEFT}" y="16">{escape(title)}</text>',
    ]
    for y in y_ticks:
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{sy(y):.1f}" y2="{sy(y):.1f}"/>'
            f'<text class="tick" x="{LEFT - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">'
            f"{escape(_tick_label(y))}</text>"
        )
    for x in x_ticks:
        parts.append(
            f'<line class="axis" x1="{sx(x):.1f}" x2="{sx(x):.1f}" y1="{TOP + plot_h}" '
            f'y2="{TOP + plot_h + 4}"/><text class="tick" x="{sx(x):.1f}" y="{TOP + plot_h + 16}" '
            f'text-anchor="middle">{escape(_tick_label(x))}</text>'
        )
    parts.append(
        f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + plot_h}" y2="{TOP + plot_h}"/>'
        f'<line class="axis" x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{TOP + plot_h}"/>'
        f'<text class="tick" x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 4}" text-anchor="middle">epoch</text>'
    )
    best = _number(best_epoch)
    if best is not None and x_lo <= best <= x_hi:
        parts.append(
            f'<line class="best" x1="{sx(best):.1f}" x2="{sx(best):.1f}" y1="{TOP}" y2="{TOP + plot_h}"/>'
            f'<text class="tick" x="{sx(best) + 4:.1f}" y="{TOP + 10}">best</text>'
        )
    colours = {}
    for name, points in data.items():
        colour = colours[name] = COLOURS.get(name, "#475569")
        usable = [(x, y) if x is not None and y is not None else None for x, y in points]
        for run in _segments(usable):
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in run)
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        for j, (x, y) in enumerate(points):
            if x is None or y is None:
                continue
            phase = f" ({phases[j]})" if j < len(phases) and phases[j] else ""
            tip = f"epoch {_tick_label(x)}{phase}: {name} {y:.3f}"
            parts.append(
                f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{colour}">'
                f"<title>{escape(tip)}</title></circle>"
            )
    parts.append(_legend(colours))
    parts.append("</svg>")
    return Markup("".join(parts))


def _legend(colours: dict) -> str:
    """Legend in the top-right corner; widths are estimated since SVG cannot measure text here."""
    items, x = [], WIDTH - RIGHT
    for name, colour in reversed(colours.items()):
        x -= 28 + 7 * len(name)
        items.append(
            f'<line x1="{x}" x2="{x + 16}" y1="12" y2="12" stroke="{colour}" stroke-width="2"/>'
            f'<text class="tick" x="{x + 21}" y="16">{escape(name)}</text>'
        )
    return "".join(items)


def curve_charts(curves) -> list[Markup]:
    """The metric chart and the loss chart for one rung; an empty list when nothing was recorded."""
    if not isinstance(curves, dict) or not curves.get("epoch"):
        return []
    metric = str(curves.get("metric") or "metric")
    specs = [
        (metric, {"train": curves.get("train_metric"), "validation": curves.get("val_metric")}),
        ("loss", {"train": curves.get("train_loss"), "validation": curves.get("val_loss")}),
    ]
    charts = []
    for title, series in specs:
        present = {k: v for k, v in series.items() if isinstance(v, (list, tuple)) and v}
        chart = line_chart(
            title, curves["epoch"], present, curves.get("phase") or (), curves.get("best_epoch")
        )
        if chart:
            charts.append(chart)
    return charts
