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
    "hscore": (
        "H-score",
        "between-class share of the feature variance, 0 to classes − 1; higher is better, but it "
        "saturates with fewer examples than feature dimensions",
    ),
    "hscore_shrinkage": (
        "H-LW",
        "H-score of the standardised features with a Ledoit–Wolf shrunk covariance, reliable "
        "with few examples; "
        "higher is better",
    ),
    "knn_accuracy": (
        "kNN",
        "cross-validated accuracy of a 5-nearest-neighbour vote (cosine distance); higher is better",
    ),
    "linear_probe_accuracy": (
        "Probe",
        "cross-validated accuracy of a logistic regression on the features; higher is better",
    ),
    "leep": (
        "LEEP",
        "log-likelihood of the labels under the source model's predictions; higher (closer to 0) is better",
    ),
    "nce": (
        "NCE",
        "negative conditional entropy of the label given the source model's top-1 prediction; "
        "higher (closer to 0) is better",
    ),
}


# The score the table leads with and orders the candidates by: the one whose top pick was most
# often the best frozen candidate in bench/ranking.py (bench/RESULTS.md, "Does the ranking
# predict the ladder?"), with what that benchmark found, said next to the table.
LEAD = "knn_accuracy"
LEAD_EVIDENCE = (
    "in the project's benchmark of 10 small tasks (5 image, 5 text; bench/RESULTS.md) the candidate with "
    "the highest kNN accuracy reached the best frozen test accuracy in 7 of 10 (mean shortfall 0.007), "
    "against 4 of 10 for LogME; its mean weighted Kendall tau with that accuracy was +0.37 "
    "(95% interval over tasks −0.09 to +0.76). On images alone the linear probe (the predicted accuracy) "
    "was right in 5 of 5."
)


# Label-free proximity of the data to each backbone's pretraining data (ranking/proximity.py):
# shown beside the provenance, with what the project's benchmark found, because it is easy to
# over-read as a transferability score and the benchmark says it is a weak one.
PROXIMITY_LEGEND = [
    (
        "Source info",
        "label-free: mutual information (nats) between an example and the class the pretrained "
        "classifier assigns it among its own (e.g. ImageNet's 1000); high when its predictions are "
        "confident and spread over many classes (the data looks like what it learnt to tell apart), "
        "0 when it recognises nothing or sees one class everywhere; n/a without a source classifier",
    ),
    (
        "Centroid cos.",
        "label-free: mean cosine between each training example's features and their mean; near 1 "
        "means every input maps to nearly the same vector (collapsed features, data the model does "
        "not tell apart), lower is nearer",
    ),
]
PROXIMITY_EVIDENCE = (
    "Near pretraining (source info, centroid cos.) reads no label: it says whether the data resembles "
    "what the model saw in pretraining, not how well it will transfer. In the project's benchmark "
    "(bench/RESULTS.md) both put the random-weight control farther than every pretrained model (source "
    "info on 5 of 5 image tasks, centroid cosine on 10 of 10), and source info was lowest for every "
    "ImageNet model on the one image task where pretraining did not help (8×8 digits). But as a ranking "
    "of candidates both were weak: mean weighted Kendall tau with the frozen test accuracy +0.24 for "
    "source info on images (95% interval over tasks +0.02 to +0.47; among the pretrained models alone "
    "−0.16 to +0.75), its top pick the best on 2 of 5; +0.30 for the centroid cosine (+0.07 to +0.53), "
    "5 of 10; kNN accuracy did better. Read it as a warning sign, not a way to choose."
)


def _proximity(candidate: dict) -> dict | None:
    """The two proximity figures shown; None for a run recorded before they existed."""
    p = candidate.get("domain_proximity")
    if not isinstance(p, dict):
        return None
    info = p.get("source_information")
    return {
        "info": fmt_num(info, 2) if is_number(info) else "n/a",
        "why": None if is_number(info) else display(candidate.get("source_probabilities") or "no source classifier"),
        "cosine": fmt_num(p.get("centroid_cosine"), 2),
    }


def _scores(candidate: dict) -> dict:
    scores = candidate.get("scores")
    return scores if isinstance(scores, dict) else {}


def _score_names(ranking: list[dict]) -> list[str]:
    """Known scores in a fixed order, then any other score a ranker reported (or said is n/a)."""
    reported = list(dict.fromkeys(k for c in ranking for k in [*_scores(c), *_unavailable(c)]))
    known = [LEAD] + [k for k in SCORES if k != LEAD]
    return [k for k in known if k in reported] + [k for k in reported if k not in SCORES]


def lead_order(ranking: list[dict]) -> list[dict]:
    """Candidates by the leading score, best first (a candidate without it last, in its place)."""

    def key(c: dict) -> float:
        value = metric_mean(_scores(c).get(LEAD))
        return -value if value is not None else float("inf")

    return sorted(ranking, key=key)


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
    return " · ".join(
        [
            "pretraining data unknown" if pretrained in (None, "", "unknown") else display(pretrained),
            "licence unknown" if licence in (None, "", "unknown") else display(licence),
        ]
    )


def _source(candidate: dict) -> str | None:
    """Where the weights came from, unless that is just the backbone's name again."""
    source = candidate.get("source")
    return display(source) if source and source != candidate.get("backbone") else None


def _unavailable(candidate: dict) -> dict:
    why = candidate.get("scores_unavailable")
    return why if isinstance(why, dict) else {}


PREDICTED = (
    "Predicted acc.",
    "the frozen rung's accuracy these features predict: the linear probe's cross-validated "
    "accuracy on the training split, with a 95% Wilson interval over its out-of-fold "
    "predictions (slightly optimistic, as the probe's C is the best of four)",
)
P_BEST = (
    "P(best)",
    "probability that this candidate is the best of those ranked: the share of bootstrap "
    "resamples of the training examples in which its probe accuracy is the highest",
)


def _lead_cells(candidate: dict, ranking: list[dict]) -> list[dict]:
    """Predicted accuracy and P(best): what a score means on its own, on the accuracy scale."""
    cells = []
    if any(c.get("predicted_frozen_accuracy") for c in ranking):
        cells.append({"value": fmt_metric(candidate.get("predicted_frozen_accuracy")), "best": False, "why": None})
    if any(is_number(c.get("p_best")) for c in ranking):
        p = candidate.get("p_best")
        top = max(c.get("p_best") or 0 for c in ranking)
        cells.append(
            {"value": fmt_num(p, 2) if is_number(p) else MISSING, "best": is_number(p) and p == top, "why": None}
        )
    return cells


def _lead_columns(ranking: list[dict]) -> list[tuple[str, str]]:
    return ([PREDICTED] if any(c.get("predicted_frozen_accuracy") for c in ranking) else []) + (
        [P_BEST] if any(is_number(c.get("p_best")) for c in ranking) else []
    )


def _score_cell(candidate: dict, name: str, best: dict[str, float]) -> dict:
    """The value, or "n/a" with the reason the ranking gave for leaving it out."""
    value = _scores(candidate).get(name)
    why = _unavailable(candidate).get(name)
    if value is None and why:
        return {"value": "n/a", "best": False, "why": display(why)}
    return {"value": fmt_metric(value), "best": name in best and metric_mean(value) == best[name], "why": None}


def _memory(candidate: dict) -> str:
    """Peak resident memory of embedding one batch, e.g. ``106 MB`` (batch 32)."""
    mb = candidate.get("peak_memory_mb")
    return f"{fmt_quantity(mb)} MB" if is_number(mb) else MISSING


def _row(candidate: dict, names: list[str], best: dict[str, float], ranking: list[dict]) -> dict:
    seconds = candidate.get("score_seconds")
    return {
        "backbone": display(candidate.get("backbone")),
        "provenance": _provenance(candidate),
        "proximity": _proximity(candidate),
        "source": _source(candidate),
        "scores": _lead_cells(candidate, ranking) + [_score_cell(candidate, name, best) for name in names],
        "params": fmt_count(candidate.get("params")),
        "dim": fmt_int(candidate.get("feature_dim")),
        "speed": fmt_quantity(candidate.get("items_per_second")),
        "memory": _memory(candidate),
        "memory_batch": fmt_int(candidate.get("peak_memory_batch")),
        "cached": candidate.get("features_from_cache") is True,  # the speed was timed when first extracted
        "score_seconds": f"{fmt_quantity(seconds)} s" if is_number(seconds) else fmt_quantity(seconds),
        "achieved": _achieved(candidate),
    }


MEMORY_LEGEND = (
    "Peak memory",
    "the weights plus the rise of resident memory while embedding one batch of "
    "training items (for text the longest ones), measured in the run's own process",
)


def _notes(ranking: list[dict], names: list[str]) -> list[str]:
    """One line per candidate with scores left out: which, and why (grouped when the reason is shared)."""
    notes = []
    for c in ranking:
        why = {k: v for k, v in _unavailable(c).items() if _scores(c).get(k) is None}
        for reason in dict.fromkeys(why.values()):
            labels = [SCORES.get(k, (k, None))[0] for k in names if why.get(k) == reason]
            notes.append(f"{' and '.join(labels)} n/a for {display(c.get('backbone'))}: {display(reason)}.")
    return notes


def ranking_view(ranking) -> dict | None:
    """Table, legend and charts; None when the run had no candidates."""
    ranking = lead_order([c for c in ranking or [] if isinstance(c, dict)])
    if not ranking:
        return None
    names = _score_names(ranking)
    best = _best_values(ranking, names)
    rows = [_row(c, names, best, ranking) for c in ranking]
    lead = _lead_columns(ranking)
    proximity = any(row["proximity"] for row in rows)
    return {
        "scores": [label for label, _ in lead] + [SCORES.get(name, (name, None))[0] for name in names],
        "legend": lead
        + [SCORES[name] for name in names if name in SCORES]
        + (PROXIMITY_LEGEND if proximity else [])
        + ([MEMORY_LEGEND] if any(row["memory"] != MISSING for row in rows) else []),
        "notes": ([f"Ordered by {SCORES[LEAD][0]}: {LEAD_EVIDENCE}"] if LEAD in names else [])
        + ([PROXIMITY_EVIDENCE] if proximity else [])
        + _notes(ranking, names),
        "rows": rows,
        "proximity": proximity,
        "achieved": any(row["achieved"] for row in rows),
        "scoring": any(row["score_seconds"] != MISSING for row in rows),
        "memory": any(row["memory"] != MISSING for row in rows),
        "charts": candidate_charts(ranking),
    }
