"""The ranking stage: each candidate backbone's transferability scores on the training split's
cached features, next to its cost; after the ladder, what its rungs achieved."""

from __future__ import annotations

import time

import numpy as np

from ..config import RunSpec
from ..data import Task
from ..progress import Progress


def rank_candidate(backbone, feats, task: Task, spec: RunSpec, progress: Progress) -> dict:
    """Transferability scores on the training split's cached features, next to the cost, and the
    frozen accuracy they predict (with its interval)."""
    from ..ranking import score_features
    from ..ranking.confidence import pack, predicted_accuracy
    from ..ranking.cost import batch_memory, source_probabilities

    train_features = np.asarray(feats("train"))
    start = time.perf_counter()
    probs, source_note = source_probabilities(backbone, train_features)
    scores = score_features(train_features, task.part("train")[1], source_probs=probs,
                            no_source_reason=source_note, seed=spec.seed)
    score_seconds = time.perf_counter() - start
    start = time.perf_counter()
    memory = batch_memory(backbone, task.part("train")[0], spec.extract_batch_size)
    memory["memory_seconds"] = time.perf_counter() - start
    probe = scores.correct["linear_probe_accuracy"]
    return {"backbone": backbone.name, "scores": scores, "score_seconds": score_seconds, **memory,
            "scores_unavailable": dict(getattr(scores, "unavailable", {})), "source_probabilities": source_note,
            "predicted_frozen_accuracy": predicted_accuracy(probe, "linear_probe_accuracy"),
            "_probe_correct": pack(probe),  # for p_best across candidates, dropped in with_achieved
            "params": backbone.num_params(), "feature_dim": backbone.feature_dim,
            "items_per_second": feats.items_per_second, "features_from_cache": feats.from_cache,
            "pretrained_on": backbone.provenance.get("pretrained_on", "unknown"),
            "licence": backbone.provenance.get("licence", "unknown"),
            "source": backbone.provenance.get("source", backbone.name)}


def with_achieved(ranking: list[dict], records: list[dict]) -> list[dict]:
    """Beside each candidate's scores, the probability that it is the best candidate and the test
    accuracy its rungs achieved (score vs outcome)."""
    from ..ranking.confidence import p_best, unpack

    bits = [c.pop("_probe_correct", None) for c in ranking]
    if len(ranking) > 1 and all(bits) and len({len(b) for b in bits}) == 1:
        for c, p in zip(ranking, p_best([unpack(b) for b in bits])):
            c["p_best"] = float(p)
    for c in ranking:
        achieved = {r["strategy"]: r["test"]["accuracy"]["mean"] for r in records if r["backbone"] == c["backbone"]}
        if achieved:
            c["achieved_test_accuracy"] = achieved
    return ranking
