"""Inline SVG charts drawn without a plotting library: shared axes, and training-curve line charts.

The report must open offline and stay small, so the charts are plain SVG strings. Every piece of
text that reaches the markup is passed through ``markupsafe.escape``; the result is returned as
``Markup`` so the template can embed it without ``|safe``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from markupsafe import Markup, escape

from .formatting import is_number

WIDTH, HEIGHT = 500, 230
LEFT, RIGHT, TOP, BOTTOM = 46, 14, 34, 36
COLOURS = {"train": "#2563eb", "validation": "#ea580c"}


def _number(value) -> float | None:
    """A plottable float, or None for gaps (missing epochs, NaN from a diverged run)."""
    return float(value) if is_number(value) else None


def ticks(lo: float, hi: float, integer: bool = False, target: int = 5):
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


def _label(value: float) -> str:
    return f"{round(value, 10):g}"


def labelled(values: list[float]) -> list[tuple[float, str]]:
    """Tick values paired with their plain labels, the ``(position, label)`` form ``axes`` takes."""
    return [(t, _label(t)) for t in values]


def _points(xs: list, values: list) -> list:
    """(epoch, value) pairs aligned with ``xs``; None where either is missing."""
    pairs = [(x, _number(y)) for x, y in zip(xs, values)]
    return [(x, y) if x is not None and y is not None else None for x, y in pairs]


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


@dataclass
class Frame:
    """The data-to-pixel mapping of one chart, with an inset so dots never sit on the axes."""

    x_lo: float
    x_hi: float
    y_lo: float
    y_hi: float
    width: float = WIDTH - LEFT - RIGHT
    height: float = HEIGHT - TOP - BOTTOM
    inset: float = 8

    def x(self, value: float) -> float:
        span = self.width - 2 * self.inset
        return LEFT + self.inset + (value - self.x_lo) / (self.x_hi - self.x_lo) * span

    def y(self, value: float) -> float:
        span = self.height - 2 * self.inset
        return TOP + self.height - self.inset - (value - self.y_lo) / (self.y_hi - self.y_lo) * span


def axes(frame: Frame, x_ticks: list[tuple[float, str]], y_ticks: list[tuple[float, str]], x_title: str) -> str:
    """Grid lines and labels for ``(position, label)`` ticks; positions are in the frame's data units."""
    bottom, right = TOP + frame.height, LEFT + frame.width
    parts = []
    for t, label in y_ticks:
        y = frame.y(t)
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(label)}</text>"
        )
    for t, label in x_ticks:
        x = frame.x(t)
        parts.append(
            f'<line class="axis" x1="{x:.1f}" x2="{x:.1f}" y1="{bottom}" y2="{bottom + 4}"/>'
            f'<text class="tick" x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">'
            f"{escape(label)}</text>"
        )
    parts.append(
        f'<line class="axis" x1="{LEFT}" x2="{right}" y1="{bottom}" y2="{bottom}"/>'
        f'<line class="axis" x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{bottom}"/>'
        f'<text class="tick" x="{LEFT + frame.width / 2:.1f}" y="{HEIGHT - 4}" '
        f'text-anchor="middle">{escape(x_title)}</text>'
    )
    return "".join(parts)


def document(title: str, body: list[str]) -> Markup:
    """The ``<svg>`` element around a chart's parts, titled for screen readers and tooltips."""
    return Markup(
        "".join(
            [
                f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
                f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>',
                f'<text class="chart-title" x="{LEFT}" y="16">{escape(title)}</text>',
                *body,
                "</svg>",
            ]
        )
    )


def _best_marker(frame: Frame, epoch: float) -> str:
    x = frame.x(epoch)
    return (
        f'<line class="best" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{TOP + frame.height}"/>'
        f'<text class="tick" x="{x + 4:.1f}" y="{TOP + 10}">best</text>'
    )


def _series(frame: Frame, name: str, points: list, phases) -> str:
    """The line (broken at gaps) plus a dot per epoch whose tooltip names the training phase."""
    colour = COLOURS.get(name, "#475569")
    parts = []
    for run in _segments(points):
        if len(run) < 2:
            continue  # a lone point is drawn by its dot below
        coords = " ".join(f"{frame.x(x):.1f},{frame.y(y):.1f}" for x, y in run)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{coords}"/>')
    for i, point in enumerate(points):
        if point is None:
            continue
        x, y = point
        phase = f" ({phases[i]})" if i < len(phases) and phases[i] else ""
        tip = f"epoch {_label(x)}{phase}: {name} {y:.3f}"
        parts.append(
            f'<circle cx="{frame.x(x):.1f}" cy="{frame.y(y):.1f}" r="3" fill="{colour}">'
            f"<title>{escape(tip)}</title></circle>"
        )
    return "".join(parts)


def _legend(names: list[str]) -> str:
    """Legend in the top-right corner; widths are estimated since SVG cannot measure text here."""
    parts, x = [], WIDTH - RIGHT
    for name in reversed(names):
        x -= 28 + 7 * len(name)
        parts.append(
            f'<line x1="{x}" x2="{x + 16}" y1="12" y2="12" '
            f'stroke="{COLOURS.get(name, "#475569")}" stroke-width="2"/>'
            f'<text class="tick" x="{x + 21}" y="16">{escape(name)}</text>'
        )
    return "".join(parts)


def _gap_band(frame: Frame, upper: list, lower: list) -> str:
    """The area between two series (train above validation, usually), where both were recorded:
    the generalisation gap made visible."""
    both = [(u, v) if u is not None and v is not None else None for u, v in zip(upper, lower)]
    parts = []
    for run in _segments(both):
        if len(run) < 2:
            continue
        edge = [u for u, _ in run] + [v for _, v in reversed(run)]
        coords = " ".join(f"{frame.x(x):.1f},{frame.y(y):.1f}" for x, y in edge)
        parts.append(f'<polygon class="gap" points="{coords}"><title>train − validation gap</title></polygon>')
    return "".join(parts)


def line_chart(title: str, epochs: list, series: dict, phases=(), best_epoch=None, gap: bool = False) -> Markup:
    """One chart: epoch on x, a line per series (name -> values aligned with ``epochs``); with ``gap``,
    the area between the train and validation series is shaded."""
    xs = [_number(x) for x in epochs]
    data = {name: _points(xs, values) for name, values in series.items()}
    data = {name: points for name, points in data.items() if any(points)}
    if not data:
        return Markup("")
    known = [p for points in data.values() for p in points if p is not None]
    x_lo, x_hi, x_ticks = ticks(min(x for x, _ in known), max(x for x, _ in known), integer=True)
    y_lo, y_hi, y_ticks = ticks(min(y for _, y in known), max(y for _, y in known))
    frame = Frame(x_lo, x_hi, y_lo, y_hi)
    best = _number(best_epoch)
    return document(
        title,
        [
            axes(frame, labelled(x_ticks), labelled(y_ticks), "epoch"),
            _best_marker(frame, best) if best is not None and x_lo <= best <= x_hi else "",
            _gap_band(frame, data["train"], data["validation"])
            if gap and {"train", "validation"} <= data.keys()
            else "",
            *(_series(frame, name, points, phases) for name, points in data.items()),
            _legend(list(data)),
        ],
    )


def curve_charts(curves) -> list[Markup]:
    """The metric chart and the loss chart for one rung; an empty list when nothing was recorded."""
    if not isinstance(curves, dict) or not curves.get("epoch"):
        return []
    phases = curves.get("phase") if isinstance(curves.get("phase"), list) else []
    specs = [
        (str(curves.get("metric") or "metric"), "train_metric", "val_metric", True),
        ("loss", "train_loss", "val_loss", False),
    ]
    charts = []
    for title, train, val, gap in specs:
        series = {
            name: curves[key]
            for name, key in (("train", train), ("validation", val))
            if isinstance(curves.get(key), list)
        }
        chart = line_chart(title, curves["epoch"], series, phases, curves.get("best_epoch"), gap)
        if chart:
            charts.append(chart)
    return charts
