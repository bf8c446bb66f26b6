"""Number and value formatting shared by the HTML report and the terminal summary.

Both views must show the same digits for the same run, so formatting lives in one place.
Missing values (absent keys, nulls, NaN) render as an em dash rather than as zero.
"""

from __future__ import annotations

import json
import math
import numbers

MISSING = "—"
SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
METRIC_NAMES = {"accuracy": "accuracy", "balanced_accuracy": "balanced accuracy", "macro_f1": "macro-F1"}


def is_number(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def get(mapping, *keys):
    """Nested lookup that treats absent and null sections alike, as the schema allows both."""
    for key in keys:
        mapping = mapping.get(key) if isinstance(mapping, dict) else None
    return mapping


def fmt_num(x, digits: int = 3) -> str:
    return f"{x:.{digits}f}" if is_number(x) else MISSING


def fmt_signed(x, digits: int = 3) -> str:
    """``+0.031`` / ``−0.004``: a difference reads as one only with its sign, and a true minus sign."""
    if not is_number(x):
        return MISSING
    x = 0.0 if round(x, digits) == 0 else x  # no "−0.000" for a change that rounds away
    return f"{x:+.{digits}f}".replace("-", "\u2212")


def fmt_p(p) -> str:
    """Two significant digits: more would suggest a precision the bootstrap does not have."""
    if not is_number(p):
        return MISSING
    return "< 0.001" if p < 0.001 else f"= {p:.2g}"


def metric_mean(metric) -> float | None:
    """The point estimate of a metric stored as ``{"mean", "ci"}`` or as a bare number."""
    mean = metric.get("mean") if isinstance(metric, dict) else metric
    return float(mean) if is_number(mean) else None


def metric_ci(metric) -> tuple[float, float] | None:
    ci = metric.get("ci") if isinstance(metric, dict) else None
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(is_number(v) for v in ci):
        return float(ci[0]), float(ci[1])
    return None


def metric_seeds(metric) -> list[float]:
    """The value of each seed, when the rung ran more than one (older results have none)."""
    seeds = metric.get("seeds") if isinstance(metric, dict) else None
    return [float(v) for v in seeds if is_number(v)] if isinstance(seeds, list) else []


def fmt_seed_spread(metric) -> str | None:
    """``sd 0.012 over 3 seeds``: how much the result moved between seeds, when there were several."""
    seeds, sd = metric_seeds(metric), metric.get("sd") if isinstance(metric, dict) else None
    if len(seeds) < 2 and not is_number(sd):
        return None
    spread = f"sd {sd:.3f}" if is_number(sd) else "seeds"
    return f"{spread} over {len(seeds)} seeds" if len(seeds) > 1 else spread


def fmt_ci(metric) -> str | None:
    ci = metric_ci(metric)
    return None if ci is None else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def fmt_metric(metric) -> str:
    """``0.842 [0.810, 0.871]``: a mean is only worth reading next to its uncertainty."""
    mean, ci = metric_mean(metric), fmt_ci(metric)
    if mean is None:
        return MISSING
    return fmt_num(mean) if ci is None else f"{fmt_num(mean)} {ci}"


def fmt_count(n) -> str:
    """Parameter counts at a glance: 22713602 -> 22.7M."""
    if not is_number(n):
        return MISSING
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.1f}{suffix}"
    return f"{n:.0f}"


def fmt_params(trainable, total) -> str:
    if not (is_number(trainable) or is_number(total)):
        return MISSING
    return f"{fmt_count(trainable)} / {fmt_count(total)}"


def fmt_quantity(x) -> str:
    """Timings span orders of magnitude; three significant digits read well across all of them."""
    if not is_number(x):
        return MISSING
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if x != 0 and abs(x) < 0.001:
        return "<0.001"
    return f"{x:.3g}"


def fmt_int(x) -> str:
    """Counts, which become fractional when averaged over seeds."""
    if not is_number(x):
        return MISSING
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.1f}"


def display(value) -> str:
    """Any JSON value as one line of text, for free-form fields (environment, findings)."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return _small_or_fixed(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(display(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _small_or_fixed(x: float) -> str:
    """Three decimals, except for small non-zero values such as a learning rate of 1e-5, which fixed
    decimals would print as 0.000."""
    return f"{x:.3g}" if x != 0 and abs(x) < 0.001 else fmt_num(x)


def compact_json(value) -> str:
    """Free-form evidence as short JSON: four significant decimals say all a reader can use of a
    float; values below 0.001 (learning rates) keep three significant digits instead of rounding to 0."""

    def rounded(v):
        if isinstance(v, float):
            return float(f"{v:.3g}") if v != 0 and abs(v) < 0.001 else round(v, 4)
        if isinstance(v, dict):
            return {str(k): rounded(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [rounded(x) for x in v]
        return v

    return json.dumps(rounded(value), ensure_ascii=False, default=str)


def best_rung_indices(rungs: list) -> set[int]:
    """Rungs tied for the best test macro-F1, the metric the ladder is judged on."""
    scores = [metric_mean(get(rung, "test", "macro_f1")) for rung in rungs]
    top = max((s for s in scores if s is not None), default=None)
    return {i for i, s in enumerate(scores) if top is not None and s == top}


def severity(value) -> str | None:
    """A known severity in lower case, or None for a missing or unknown one."""
    text = str(value or "").lower()
    return text if text in SEVERITY_ORDER else None


def severity_rank(value) -> int:
    """Sort key putting errors first and anything without a known severity last."""
    return SEVERITY_ORDER.get(severity(value), len(SEVERITY_ORDER))


def test_cannot_decide(results: dict) -> bool:
    """The run found its test split unable to compare rungs (the ``test_cannot_decide`` verdict)."""
    return any(isinstance(v, dict) and v.get("code") == "test_cannot_decide" for v in results.get("verdicts") or [])


def fmt_within_noise(names) -> str | None:
    """The rungs the recommendation treated as ties with the best one on validation."""
    if not isinstance(names, list) or not names:
        return None
    if len(names) == 1:
        return "No other rung is within noise of the best on validation."
    return "Within noise of the best on validation: " + ", ".join(display(n) for n in names)


def is_comparison(value) -> bool:
    """A paired comparison of two rungs as the verdicts record it (delta, interval, p-value)."""
    return isinstance(value, dict) and is_number(value.get("delta")) and metric_ci(value) is not None


def metric_name(metric) -> str:
    return METRIC_NAMES.get(metric, str(metric or "metric").replace("_", " "))


def fmt_comparison(c: dict) -> str:
    """``Δ accuracy +0.031 [−0.004, +0.066], p = 0.09``, plus McNemar's p when it was computed."""
    lo, hi = metric_ci(c)
    metric = metric_name(c.get("metric"))
    text = f"Δ {metric} {fmt_signed(c['delta'])} [{fmt_signed(lo)}, {fmt_signed(hi)}], p {fmt_p(c.get('p_value'))}"
    if is_number(c.get("mcnemar_p")):
        text += f"; McNemar p {fmt_p(c['mcnemar_p'])}"
    return text


def comparison_pair(c: dict) -> str | None:
    """Which rungs a comparison subtracts: ``a − b``."""
    a, b = c.get("a"), c.get("b")
    return f"{a} \u2212 {b}" if a and b else None
