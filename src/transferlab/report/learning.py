"""The learning curve: how the cheap rungs' test score grows with the training examples per class.

One chart for every rung that was refitted on nested fractions of the training set: the mean
over subsamples with a band of ± one standard deviation, the fitted power law carried on (dashed)
past the data at hand, and the target as a horizontal line. A table beside it gives the numbers
the verdict rests on. Rung names are user-visible text, so they go through ``escape``.
"""

from __future__ import annotations

import math

from markupsafe import Markup, escape

from .formatting import display, fmt_int, fmt_num, is_number, metric_name
from .svg import HEIGHT, LEFT, RIGHT, WIDTH, Frame, axes, document, labelled, ticks

PALETTE = ("#2563eb", "#ea580c", "#16a34a", "#9333ea", "#0891b2", "#b45309", "#db2777", "#475569")
EXTEND = 20  # the dashed fit is drawn at most this many times past the data, as the estimates are
BOTTOM_LEGEND = 52  # the rung names stack upwards from just above the x axis, in their colours


def _numbers(values) -> list[float] | None:
    if not isinstance(values, list) or not values or not all(is_number(v) for v in values):
        return None
    return [float(v) for v in values]


def _series(curve) -> dict | None:
    """Sizes (examples per class), means and standard deviations, or None if unusable."""
    if not isinstance(curve, dict):
        return None
    n, mean = _numbers(curve.get("n_per_class")), _numbers(curve.get("score_mean"))
    if n is None or mean is None or len(n) != len(mean) or min(n) <= 0:
        return None
    sd = _numbers(curve.get("score_sd"))
    return {"n": n, "mean": mean, "sd": sd if sd is not None and len(sd) == len(n) else [0.0] * len(n)}


def _fits(curve: dict) -> list[dict]:
    return [f for f in curve.get("fits") or [] if isinstance(f, dict) and all(is_number(f.get(k)) for k in "abc")]


def _fitted(fits: list[dict], n: float) -> float:
    """The median over subsamples of the fitted ``c - a * n**-b`` at ``n``."""
    values = sorted(f["c"] - f["a"] * n ** -f["b"] for f in fits)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def _reach(curve: dict, have: float) -> float:
    """How far right the chart goes: past the estimate of examples needed, within ``EXTEND``x the data."""
    estimate = curve.get("examples_per_class")
    estimate = estimate.get("estimate") if isinstance(estimate, dict) else None
    wanted = 1.3 * estimate if is_number(estimate) else 2 * have
    return min(max(wanted, 1.5 * have), EXTEND * have)


def _target(block: dict, curves: dict) -> float | None:
    """The goal the estimates aim at: the user's target, or the default each curve recorded."""
    if is_number(block.get("target")):
        return float(block["target"])
    goals = {float(c["target"]) for c in curves.values() if isinstance(c, dict) and is_number(c.get("target"))}
    return goals.pop() if len(goals) == 1 else None


def _chart(curves: list[tuple[str, dict, dict]], target: float | None, metric: str) -> Markup:
    lo_n = min(s["n"][0] for _, _, s in curves)
    hi_n = max(_reach(c, s["n"][-1]) if _fits(c) else s["n"][-1] for _, c, s in curves)
    x_lo, x_hi = math.log10(lo_n) - 0.05, math.log10(hi_n) + 0.05
    exponents = [float(e) for e in range(math.ceil(x_lo), math.floor(x_hi) + 1)] or [math.log10(lo_n), math.log10(hi_n)]
    ys = [m + d for _, _, s in curves for m, d in zip(s["mean"], s["sd"])]
    ys += [m - d for _, _, s in curves for m, d in zip(s["mean"], s["sd"])]
    ys += [target] if target is not None else []
    y_lo, y_hi, y_ticks = ticks(max(0.0, min(ys)), min(1.0, max(ys)))
    frame = Frame(x_lo, x_hi, y_lo, y_hi)
    x_ticks = [(e, f"{10**e:,.4g}") for e in exponents]
    parts = [axes(frame, x_ticks, labelled(y_ticks), "labelled examples per class (log scale)")]
    if target is not None:
        y = frame.y(min(max(target, y_lo), y_hi))
        parts.append(
            f'<line class="target" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{WIDTH - RIGHT - 2}" y="{y - 4:.1f}" text-anchor="end">'
            f"target {fmt_num(target)}</text>"
        )
    for i, (name, curve, s) in enumerate(curves):
        colour = PALETTE[i % len(PALETTE)]
        xs = [math.log10(n) for n in s["n"]]
        band = [(x, m + d) for x, m, d in zip(xs, s["mean"], s["sd"])]
        band += [(x, m - d) for x, m, d in reversed(list(zip(xs, s["mean"], s["sd"])))]
        points = " ".join(f"{frame.x(x):.1f},{frame.y(min(max(y, y_lo), y_hi)):.1f}" for x, y in band)
        parts.append(f'<polygon points="{points}" fill="{colour}" fill-opacity="0.12"/>')
        line = " ".join(f"{frame.x(x):.1f},{frame.y(m):.1f}" for x, m in zip(xs, s["mean"]))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{line}"/>')
        for x, n, m, d in zip(xs, s["n"], s["mean"], s["sd"]):
            tip = f"{name}: {metric} {m:.3f} ± {d:.3f} with {n:g} examples per class"
            parts.append(
                f'<circle cx="{frame.x(x):.1f}" cy="{frame.y(m):.1f}" r="3" fill="{colour}">'
                f"<title>{escape(tip)}</title></circle>"
            )
        fits = _fits(curve)
        if fits:
            reach = math.log10(_reach(curve, s["n"][-1]))
            grid = [xs[0] + (reach - xs[0]) * k / 40 for k in range(41)]
            fitted = " ".join(
                f"{frame.x(x):.1f},{frame.y(min(max(_fitted(fits, 10**x), y_lo), y_hi)):.1f}" for x in grid
            )
            parts.append(
                f'<polyline class="fit" fill="none" stroke="{colour}" points="{fitted}">'
                f"<title>{escape(name)}: fitted power law (median over subsamples)</title></polyline>"
            )
        parts.append(
            f'<text class="tick" x="{WIDTH - RIGHT}" y="{HEIGHT - BOTTOM_LEGEND - 14 * i:.0f}" '
            f'text-anchor="end" fill="{colour}">{escape(name)}</text>'
        )
    return document(f"Learning curve: test {metric}", parts)


def _count(x) -> str:
    """Examples per class, whole: a fitted 34.31 is no more precise than 34."""
    return f"{x:,.0f}" if is_number(x) else "never"


def _range(block) -> str:
    """``34 [23, 82]``; an open upper end (some subsamples never reach it) reads ``never``."""
    if not isinstance(block, dict) or not is_number(block.get("estimate")):
        return "—"
    rng = block.get("range") if isinstance(block.get("range"), list) else []
    if len(rng) != 2:
        return _count(block["estimate"])
    return f"{_count(block['estimate'])} [{_count(rng[0])}, {_count(rng[1])}]"


def _plateau(block) -> str:
    if not isinstance(block, dict) or not is_number(block.get("estimate")):
        return "—"
    rng = block.get("range")
    if isinstance(rng, list) and len(rng) == 2 and all(is_number(v) for v in rng):
        return f"{fmt_num(block['estimate'])} [{fmt_num(rng[0])}, {fmt_num(rng[1])}]"
    return fmt_num(block["estimate"])


def _row(name: str, curve: dict, s: dict | None) -> dict:
    return {
        "rung": name,
        "full": f"{fmt_num(s['mean'][-1])} ± {fmt_num(s['sd'][-1])}" if s else "—",
        "have": fmt_int(s["n"][-1]) if s else "—",
        "goal": fmt_num(curve.get("target")),
        "plateau": _plateau(curve.get("plateau")),
        "needed": _range(curve.get("examples_per_class")),
        "verdict": display(curve.get("verdict")) if curve.get("verdict") else "",
    }


def learning_curve_view(block) -> dict | None:
    """Chart and table of ``results["learning_curve"]``; None when the run made no curve."""
    curves = block.get("rungs") if isinstance(block, dict) else None
    if not isinstance(curves, dict) or not curves:
        return None
    metric = metric_name(block.get("metric") or "accuracy")
    named = [(display(name), c) for name, c in curves.items() if isinstance(c, dict)]
    plotted = [(name, c, s) for name, c in named if (s := _series(c)) is not None]
    target = _target(block, curves)
    default = any(c.get("target_is_default") for _, c in named) and not is_number(block.get("target"))
    return {
        "metric": metric,
        "target": fmt_num(target) if target is not None else None,
        "target_is_default": default,
        "chart": _chart(plotted, target, metric) if plotted else None,
        "rows": [_row(name, c, _series(c)) for name, c in named],
    }
