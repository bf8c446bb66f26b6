"""How much data do I need? The cheap rungs refitted on nested fractions of the training set.

For each fraction (nested: a seeded per-class permutation, first k of each class) the rung is
refitted (its C chosen as usual, on held-out rows of the subset) and scored on the test split; three subsample
seeds give the spread. A saturating power law ``score(n) = c - a * n**(-b)`` (n = training
examples per class) is fitted to each seed's points; the examples per class needed to reach the
target is read off each fit, and the spread over seeds is its uncertainty. When the fitted
plateau ``c`` is below the target, the target is out of reach for that rung; an estimate more
than 20x beyond the data at hand is reported as such, not as a number. Without a target, the
question is what it takes to gain 0.05 over the full training set.
"""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np

from .metrics import score

FRACTIONS = (0.1, 0.2, 0.4, 0.7, 1.0)
EXTRAPOLATION_LIMIT = 20  # beyond this many times the data at hand, a fitted curve says nothing

# fit(train_idx) -> predictions on test; train_idx indexes the training split
FitPredict = Callable[[np.ndarray], np.ndarray]


def nested_subsets(y: np.ndarray, fractions=FRACTIONS, seed: int = 0) -> list[np.ndarray]:
    """For each fraction, the first ceil(f * n_c) of a seeded permutation of each class (at least 2)."""
    rng = np.random.default_rng(seed)
    perms = {c: rng.permutation(np.flatnonzero(y == c)) for c in np.unique(y)}
    return [np.sort(np.concatenate([p[: max(2, int(np.ceil(f * len(p))))] for p in perms.values()])) for f in fractions]


def power_law(n: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return c - a * np.power(n, -b)


def fit_power_law(n_per_class: np.ndarray, scores: np.ndarray) -> dict | None:
    from scipy.optimize import curve_fit

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            (a, b, c), _ = curve_fit(
                power_law,
                n_per_class,
                scores,
                p0=(0.5, 0.5, min(1.0, scores.max() + 0.02)),
                bounds=([0.0, 0.01, 0.0], [10.0, 3.0, 1.0]),
                maxfev=20000,
            )
    except (RuntimeError, ValueError):
        return None
    return {"a": float(a), "b": float(b), "c": float(c)}


def needed_per_class(fit: dict, target: float) -> float | None:
    """Examples per class at which the fitted curve reaches ``target`` (None: never)."""
    gap = fit["c"] - target
    if gap <= 0:
        return None
    return float((fit["a"] / gap) ** (1 / fit["b"])) if fit["a"] > 0 else 1.0


TRAINED_FRACTIONS = (0.25, 0.5, 1.0)  # rungs that train a backbone: one subsample, fewer sizes


def learning_curve(
    fit_predict: FitPredict,
    y_train: np.ndarray,
    y_test: np.ndarray,
    *,
    metric: str,
    target: float | None,
    seeds: int = 3,
    fractions=FRACTIONS,
    full_predictions: np.ndarray | None = None,
) -> dict:
    """``full_predictions``: the test predictions of the model already fitted on the whole training
    set, used for fraction 1.0 instead of fitting it again."""
    n_classes = len(np.unique(y_train))
    rows = []  # (seed, n_per_class, score)
    for s in range(seeds):
        for idx in nested_subsets(y_train, fractions, seed=s):
            whole = full_predictions is not None and len(idx) == len(y_train)
            pred = full_predictions if whole else fit_predict(idx)
            rows.append((s, len(idx) / n_classes, score(metric, y_test, pred)))
    rows_arr = np.array(rows)
    sizes = sorted(set(rows_arr[:, 1].tolist()))
    by_size = [rows_arr[rows_arr[:, 1] == n, 2] for n in sizes]
    fits = [fit_power_law(rows_arr[rows_arr[:, 0] == s, 1], rows_arr[rows_arr[:, 0] == s, 2]) for s in range(seeds)]
    fits = [f for f in fits if f is not None]
    out = {
        "n_per_class": sizes,
        "score_mean": [float(v.mean()) for v in by_size],
        "score_sd": [float(v.std()) for v in by_size],
        "seeds": seeds,
        "fits": fits,
    }
    if not fits:
        out["verdict"] = "The curve could not be fitted."
        return out
    plateau = [f["c"] for f in fits]
    out["plateau"] = {"estimate": float(np.median(plateau)), "range": [float(min(plateau)), float(max(plateau))]}
    # without a target: what would it take to gain 0.05 over the full training set?
    goal = target if target is not None else min(0.99, out["score_mean"][-1] + 0.05)
    needs = [needed_per_class(f, goal) for f in fits]
    out["target"] = goal
    out["target_is_default"] = target is None
    reachable = [n for n in needs if n is not None]
    if len(reachable) * 2 <= len(needs):  # most subsamples' curves level off below the goal
        out["examples_per_class"] = None
        out["verdict"] = (
            f"{metric} {goal:.3f} looks out of reach for this rung: the fitted plateau is "
            f"{np.median(plateau):.3f} (range {min(plateau):.3f}-{max(plateau):.3f} over {seeds} subsamples)."
        )
        return out
    est = float(np.median(reachable))
    upper = float(max(reachable)) if len(reachable) == len(needs) else None  # None: some never reach it
    have = sizes[-1]
    if est > EXTRAPOLATION_LIMIT * have:
        out["examples_per_class"] = None
        out["verdict"] = (
            f"{metric} {goal:.3f} is beyond what this curve can tell: the fit puts it more than "
            f"{EXTRAPOLATION_LIMIT}x the {have:,.0f} examples per class you have. Treat it as out of "
            "reach for this rung."
        )
        return out
    out["examples_per_class"] = {"estimate": est, "range": [float(min(reachable)), upper]}
    spread = f"{min(reachable):,.0f}-{upper:,.0f}" if upper is not None else f"{min(reachable):,.0f} to never"
    out["verdict"] = (
        f"About {est:,.0f} labelled examples per class (range {spread} over {seeds} subsamples) "
        f"to reach {metric} {goal:.3f}; you have {have:,.0f} per class"
        + (" (an extrapolation beyond the data)." if est > have else ".")
    )
    return out
