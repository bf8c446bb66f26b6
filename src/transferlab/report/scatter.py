"""Scatter plots of the candidate backbones: LogME against cost, and against the accuracy reached.

Both charts put LogME on the y axis, so they read side by side: the first asks what a better score
costs, the second whether the score foretold the test accuracy the ladder then achieved. Names
are user-provided (a backbone can be a local path), so every label goes through ``escape``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from markupsafe import Markup, escape

from .formatting import fmt_count, fmt_num, fmt_quantity, is_number
from .svg import LEFT, Frame, axes, document, labelled, ticks

LABEL_CHARS = 26
CHAR_WIDTH = 6.5  # px per character of an 11 px label, an estimate since SVG cannot measure here
LINE = 13


@dataclass
class Point:
    name: str
    x: float  # in plot units (log10 for a log axis)
    y: float
    tip: str


def _short_name(name: str) -> str:
    """Long names (local model folders) keep their start and end, where they differ."""
    if len(name) <= LABEL_CHARS:
        return name
    keep = LABEL_CHARS - 1
    return name[: keep // 2] + "…" + name[-(keep - keep // 2) :]


def decades(lo: float, hi: float) -> tuple[float, float, list[float]]:
    """A log10 axis covering [lo, hi] with a tick per power of ten; one value sits mid-axis."""
    if hi - lo < 1e-9:
        lo, hi = lo - 1, hi + 1
    else:
        lo, hi = math.floor(lo), math.ceil(hi)
    return lo, hi, [float(e) for e in range(math.ceil(lo), math.floor(hi) + 1)]


def _label_layout(frame: Frame, points: list[Point]) -> list[tuple[Point, float, float, str]]:
    """Label beside each dot, on the side with room; labels that would overlap move down a line."""
    placed: list[tuple[float, float, float]] = []
    layout = []
    for p in sorted(points, key=lambda p: -p.y):
        px, py = frame.x(p.x), frame.y(p.y)
        width = CHAR_WIDTH * len(_short_name(p.name))
        left = px > LEFT + frame.width * 0.6
        x0 = px - 8 - width if left else px + 8
        ty = py + 4
        while any(abs(ty - y) < LINE and x0 < b and a < x0 + width for y, a, b in placed):
            ty += LINE
        placed.append((ty, x0, x0 + width))
        layout.append((p, px - 8 if left else px + 8, ty, "end" if left else "start"))
    return layout


def _dots(frame: Frame, points: list[Point]) -> str:
    parts = []
    for p, tx, ty, anchor in _label_layout(frame, points):
        parts.append(
            f'<circle class="dot" cx="{frame.x(p.x):.1f}" cy="{frame.y(p.y):.1f}" r="4.5">'
            f"<title>{escape(p.tip)}</title></circle>"
            f'<text class="point-label" x="{tx:.1f}" y="{ty:.1f}" text-anchor="{anchor}">'
            f"{escape(_short_name(p.name))}</text>"
        )
    return "".join(parts)


def _scatter(title: str, x_title: str, points: list[Point], x_ticks, x_range) -> Markup:
    """One chart; ``x_ticks`` are ``(position, label)`` pairs within ``x_range``."""
    y_lo, y_hi, y_ticks = ticks(min(p.y for p in points), max(p.y for p in points))
    frame = Frame(*x_range, y_lo, y_hi, inset=14)
    return document(title, [axes(frame, x_ticks, labelled(y_ticks), x_title), _dots(frame, points)])


def _positive(x) -> bool:
    return is_number(x) and x > 0


def _params(candidate: dict):
    return candidate.get("params")


def _seconds_per_item(candidate: dict):
    speed = candidate.get("items_per_second")
    return 1 / speed if _positive(speed) else None


def _cost_axis(candidates: list[dict]) -> tuple[str, str, Callable[[dict], float | None]]:
    """Parameters when known (size is what deployment pays for), else seconds per embedded item."""
    with_params = sum(1 for c in candidates if _positive(_params(c)))
    with_speed = sum(1 for c in candidates if _positive(_seconds_per_item(c)))
    if with_params >= with_speed:
        return "parameters (log scale)", "params", _params
    return "seconds per item (log scale)", "s/item", _seconds_per_item


def _decade_label(exponent: float, unit: str) -> str:
    value = 10**exponent
    return fmt_count(value).replace(".0", "") if unit == "params" else f"{value:g} s"


def _cost_chart(candidates: list[dict]) -> Markup:
    x_title, unit, cost = _cost_axis(candidates)
    points = [
        Point(
            c["name"],
            math.log10(cost(c)),
            c["logme"],
            f"{c['name']}: LogME {fmt_num(c['logme'])}, {fmt_quantity(cost(c))} {unit}",
        )
        for c in candidates
        if _positive(cost(c))
    ]
    if not points:
        return Markup("")
    lo, hi, exponents = decades(min(p.x for p in points), max(p.x for p in points))
    x_ticks = [(e, _decade_label(e, unit)) for e in exponents]
    return _scatter("LogME against cost", x_title, points, x_ticks, (lo, hi))


def best_achieved(candidate: dict) -> tuple[str, float] | None:
    """The strategy whose rung reached the highest test accuracy with this backbone, and that accuracy."""
    achieved = candidate.get("achieved_test_accuracy")
    if not isinstance(achieved, dict):
        return None
    scored = [(str(k), float(v)) for k, v in achieved.items() if is_number(v)]
    return max(scored, key=lambda kv: kv[1]) if scored else None


def _outcome_chart(candidates: list[dict]) -> Markup:
    points = []
    for c in candidates:
        best = best_achieved(c)
        if best is not None:
            tip = f"{c['name']}: LogME {fmt_num(c['logme'])}, test accuracy {best[1]:.3f} ({best[0]})"
            points.append(Point(c["name"], best[1], c["logme"], tip))
    if not points:
        return Markup("")
    lo, hi, x_ticks = ticks(min(p.x for p in points), max(p.x for p in points))
    return _scatter(
        "LogME against the best test accuracy reached",
        "best test accuracy of its rungs",
        points,
        labelled(x_ticks),
        (lo, hi),
    )


def candidate_charts(ranking: list) -> list[Markup]:
    """The charts that have something to show; candidates without a LogME score are left out."""
    candidates = [
        {**c, "name": str(c.get("backbone")), "logme": float(c["scores"]["logme"])}
        for c in ranking
        if isinstance(c, dict) and isinstance(c.get("scores"), dict) and is_number(c["scores"].get("logme"))
    ]
    if not candidates:
        return []
    return [chart for chart in (_cost_chart(candidates), _outcome_chart(candidates)) if chart]
