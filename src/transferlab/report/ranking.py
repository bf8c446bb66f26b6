"""The candidate backbones: transferability scores next to size, speed and the accuracy reached.

Scores are computed on the training split without training anything, so they are a forecast;
the table puts each candidate's achieved test accuracy beside them to check it, and the legend
says in one line what each score measures, since none of them is self-explanatory.
"""

from __future__ import annotations

from .formatting import (
    MISSING,
    display,
    fmt_count,
    fmt_int,
    fmt_metric,
    fmt_num,
    fmt_quantity,
    is_number,
    metric_mean,
)
from .scatter import best_achieved, candidate_charts

SCORES = {
    "logme": ("LogME", "evidence that a linear head fits the labels (log-likelihood per example); higher is better"),
    "hscore": ("H-score", "between-class share of the feature variance, 0 to classes − 1; higher is better, but it "
                          "saturates with fewer examples than feature dimensions"),
    "hscore_shrinkage": ("H-LW", "H-score with a Ledoit–Wolf shrunk covariance, reliable with few examples; "
                                 "higher is better"),
    "knn_accuracy": ("kNN", "cross-validated accuracy of a 5-nearest-neighbour vote (cosine distance); "
                            "higher is better"),
    "linear_probe_accuracy": ("Probe", "cross-validated accuracy of a logistic regression on the features; "
                                       "higher is better"),
    "leep": ("LEEP", "log-likelihood of the labels under the source model's predictions; "
                     "higher (closer to 0) is better"),
    "nce": ("NCE", "negative conditional entropy of the label given the source model's top-1 prediction; "
                   "higher (closer to 0) is better"),
}


def _scores(candidate: dict) -> dict:
    scores = candidate.get("scores")
    return scores if isinstance(scores, dict) else {}


def _score_names(ranking: list[dict]) -> list[str]:
    """Known scores in a fixed order, then any other score a ranker reported."""
    reported = list(dict.fromkeys(k for c in ranking for k in _scores(c)))
    return [k for k in SCORES if k in reported] + [k for k in reported if k not in SCORES]


def _best_values(ranking: list[dict], names: list[str]) -> dict[str, float]:
    """The top value of each score (all are higher-is-better), to set it in bold; none for a tie of all."""
    best = {}
    for name in names:
        values = [metric_mean(_scores(c).get(name)) for c in ranking]
        values = [v for v in values if v is not None]
        if len(set(values)) > 1:
            best[name] = max(values)
    return best


def _achieved(candidate: dict) -> dict | None:
    best = best_achieved(candidate)
    return None if best is None else {"value": fmt_num(best[1]), "by": display(best[0])}


def _provenance(candidate: dict) -> str:
    """Pretraining data and licence; an unknown one is said so, as it matters before deployment."""
    pretrained, licence = candidate.get("pretrained_on"), candidate.get("licence")
    return " · ".join([
        "pretraining data unknown" if pretrained in (None, "", "unknown") else display(pretrained),
        "licence unknown" if licence in (None, "", "unknown") else display(licence),
    ])


def _source(candidate: dict) -> str | None:
    """Where the weights came from, unless that is just the backbone's name again."""
    source = candidate.get("source")
    return display(source) if source and source != candidate.get("backbone") else None


def _row(candidate: dict, names: list[str], best: dict[str, float]) -> dict:
    scores = _scores(candidate)
    seconds = candidate.get("score_seconds")
    return {
        "backbone": display(candidate.get("backbone")),
        "provenance": _provenance(candidate),
        "source": _source(candidate),
        "scores": [
            {"value": fmt_metric(scores.get(name)),
             "best": name in best and metric_mean(scores.get(name)) == best[name]}
            for name in names
        ],
        "params": fmt_count(candidate.get("params")),
        "dim": fmt_int(candidate.get("feature_dim")),
        "speed": fmt_quantity(candidate.get("items_per_second")),
        "cached": candidate.get("features_from_cache") is True,  # the speed was timed when first extracted
        "score_seconds": f"{fmt_quantity(seconds)} s" if is_number(seconds) else fmt_quantity(seconds),
        "achieved": _achieved(candidate),
    }


def ranking_view(ranking) -> dict | None:
    """Table, legend and charts; None when the run had no candidates."""
    ranking = [c for c in ranking or [] if isinstance(c, dict)]
    if not ranking:
        return None
    names = _score_names(ranking)
    best = _best_values(ranking, names)
    rows = [_row(c, names, best) for c in ranking]
    return {
        "scores": [SCORES.get(name, (name, None))[0] for name in names],
        "legend": [SCORES[name] for name in names if name in SCORES],
        "rows": rows,
        "achieved": any(row["achieved"] for row in rows),
        "scoring": any(row["score_seconds"] != MISSING for row in rows),
        "charts": candidate_charts(ranking),
    }
