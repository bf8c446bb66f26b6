"""The ranking stage: each candidate backbone's transferability scores on the training split's
cached features, next to its cost and how near the data is to its pretraining; after the ladder,
what its rungs achieved."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..config import RunSpec
from ..data import Task
from ..features.store import FeatureStore
from ..progress import Progress
from .store import StageStore


@dataclass
class Candidate:
    """One candidate backbone: its results.json ranking entry, and the linear probe's correctness on
    each training example (packed bits), which the chance of being the best candidate is drawn from
    and results.json does not hold."""

    record: dict
    probe_correct: str | None = None

    @property
    def backbone(self) -> str:
        return self.record["backbone"]


def rank_stage(
    backbones: list,
    features: dict[str, FeatureStore],
    task: Task,
    spec: RunSpec,
    progress: Progress,
    stages: StageStore,
) -> list[Candidate]:
    """Every candidate scored (or read back from an unfinished run), best lead score first."""
    from ..ranking.scores import LEAD_SCORE

    saved = stages.load("ranking")
    if (
        saved is not None
        and [c["backbone"] for c in saved["ranking"]]
        and sorted(c["backbone"] for c in saved["ranking"]) == sorted(b.name for b in backbones)
    ):
        ranking = _read_candidates(saved)
    else:
        ranking = [rank_candidate(b, features[b.name], task, spec, progress) for b in backbones]
        ranking = _read_candidates(
            stages.save(
                "ranking", {"ranking": [c.record for c in ranking], "probe_correct": [c.probe_correct for c in ranking]}
            )
        )
    ranking.sort(key=lambda c: c.record["scores"].get(LEAD_SCORE, float("-inf")), reverse=True)
    return ranking


def _read_candidates(stage: dict) -> list[Candidate]:
    records = stage["ranking"]
    bits = stage.get("probe_correct") or [c.pop("_probe_correct", None) for c in records]  # older stage files
    return [Candidate(record, probe) for record, probe in zip(records, bits)]


def rank_candidate(backbone, feats: FeatureStore, task: Task, spec: RunSpec, progress: Progress) -> Candidate:
    """Transferability scores on the training split's cached features, next to the cost, the
    frozen accuracy they predict (with its interval) and the label-free domain proximity."""
    from ..ranking import score_features
    from ..ranking.confidence import pack, predicted_accuracy
    from ..ranking.cost import batch_memory, source_probabilities
    from ..ranking.proximity import domain_proximity

    train_features = np.asarray(feats("train"))
    start = time.perf_counter()
    probs, source_note = source_probabilities(backbone, train_features)
    scores = score_features(
        train_features, task.part("train")[1], source_probs=probs, no_source_reason=source_note, seed=spec.seed
    )
    proximity = domain_proximity(train_features, source_probs=probs, seed=spec.seed)  # reads no label
    score_seconds = time.perf_counter() - start
    start = time.perf_counter()
    memory = batch_memory(backbone, task.part("train")[0], spec.extract_batch_size)
    memory["memory_seconds"] = time.perf_counter() - start
    probe = scores.correct["linear_probe_accuracy"]
    return Candidate(
        {
            "backbone": backbone.name,
            "scores": scores,
            "score_seconds": score_seconds,
            **memory,
            "scores_unavailable": dict(getattr(scores, "unavailable", {})),
            "source_probabilities": source_note,
            "domain_proximity": proximity,
            "predicted_frozen_accuracy": predicted_accuracy(probe, "linear_probe_accuracy"),
            "params": backbone.num_params(),
            "feature_dim": backbone.feature_dim,
            "items_per_second": feats.items_per_second,
            "features_from_cache": feats.from_cache,
            "pretrained_on": backbone.provenance.get("pretrained_on", "unknown"),
            "licence": backbone.provenance.get("licence", "unknown"),
            "source": backbone.provenance.get("source", backbone.name),
        },
        pack(probe),
    )


def with_achieved(ranking: list[Candidate], records: list[dict]) -> list[dict]:
    """The results.json ranking: beside each candidate's scores, the probability that it is the best
    candidate and the test accuracy its rungs achieved (score vs outcome)."""
    from ..ranking.confidence import p_best, unpack

    entries = [c.record for c in ranking]
    bits = [c.probe_correct for c in ranking]
    if len(ranking) > 1 and all(bits) and len({len(b) for b in bits if b}) == 1:
        for c, p in zip(entries, p_best([unpack(b) for b in bits if b])):
            c["p_best"] = float(p)
    for c in entries:
        achieved = {r["strategy"]: r["test"]["accuracy"]["mean"] for r in records if r["backbone"] == c["backbone"]}
        if achieved:
            c["achieved_test_accuracy"] = achieved
    return entries
