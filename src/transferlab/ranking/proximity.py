"""Label-free measures of how close the user's data sits to what a backbone was pretrained on.

None of these reads a label: they describe what the backbone makes of the inputs alone, so they
can be computed before anything is annotated and say something the label-based scores cannot
(whether the data is the kind of thing the model has seen). Two kinds:

- from the source classifier (image models pretrained on ImageNet-1k, whose head
  ``cost.source_probabilities`` applies to the cached features): ``source_information``, the
  mutual information in nats between an example and the source class the model assigns it,
  ``I = H(mean_i p_i) - mean_i H(p_i)``. It is high only when each prediction is confident *and*
  the predictions spread over many source classes (data the head tells apart in its own terms);
  a uniform softmax gives 0 (the head recognises nothing), and so do confident predictions that
  all name the same class (everything looks like one thing it knows). ``source_confidence`` (the
  mean top-1 probability) and ``source_classes`` (the effective number of distinct top-1 source
  classes, exp of their entropy) are its two halves, kept for reading it.
- from the features of any backbone: ``effective_rank`` (exp of the entropy of the centred
  covariance's normalised eigenvalues, Roy & Vetterli 2007: how many directions the data
  spreads over) and ``centroid_cosine`` (mean cosine between each feature vector and their
  mean: near 1 when every input maps to nearly the same vector, i.e. collapsed features).

All are computed on a seeded random subsample of at most ``MAX_ITEMS`` rows chosen without the
labels, so shuffling the labels cannot change them.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from .leep_nce import check_probs
from .logme import check_features
from .scores import MAX_ITEMS

PROXIMITY: dict[str, str] = {
    "source_information": "Mutual information (nats) between an example and the source class the pretrained "
    "classifier gives it: high when its predictions are confident and spread over many of its classes "
    "(the data looks like what it was trained to tell apart), 0 for a uniform softmax or for one class "
    "predicted for everything. Label-free; needs a source classifier.",
    "source_confidence": "Mean top-1 probability of the pretrained classifier over its own classes (1/classes "
    "to 1). Label-free; needs a source classifier.",
    "source_classes": "Effective number of distinct source classes predicted top-1 over the data (exp of their "
    "entropy): a handful means the data is concentrated on few of the classes the model knows. Label-free; "
    "needs a source classifier.",
    "effective_rank": "Effective number of directions the features spread over (exp of the entropy of the "
    "covariance eigenvalues). Label-free; any backbone.",
    "centroid_cosine": "Mean cosine between each feature vector and the mean one: near 1 means every input "
    "maps to nearly the same vector (collapsed features). Label-free; any backbone.",
}


def label_free_subsample(n_rows: int, max_items: int = MAX_ITEMS, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most ``max_items`` of ``n_rows`` rows, drawn without looking at labels."""
    if n_rows <= max_items:
        return np.arange(n_rows)
    return np.sort(np.random.default_rng(seed).choice(n_rows, size=max_items, replace=False))


def _entropy(p: np.ndarray, axis: int = -1) -> np.ndarray:
    """Shannon entropy in nats along ``axis``, with 0 log 0 = 0."""
    return -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=axis)


def source_proximity(source_probs) -> dict[str, float]:
    """``source_information``, ``source_confidence`` and ``source_classes`` of (N, Z) softmax rows."""
    p = check_probs(source_probs)  # (N, Z)
    information = _entropy(p.mean(axis=0)) - _entropy(p, axis=1).mean()
    top = np.bincount(p.argmax(axis=1), minlength=p.shape[1]) / len(p)  # (Z,) share predicted as each class
    return {
        "source_information": float(max(0.0, information)),  # >= 0 by concavity; clip rounding
        "source_confidence": float(p.max(axis=1).mean()),
        "source_classes": float(np.exp(_entropy(top))),
    }


def feature_proximity(features) -> dict[str, float]:
    """``effective_rank`` and ``centroid_cosine`` of (N, D) features (N >= 2)."""
    f = check_features(features)  # (N, D)
    if len(f) < 2:
        raise DataError(f"features must have at least 2 rows to measure their spread; got {len(f)}")
    sv = np.linalg.svd(f - f.mean(axis=0), compute_uv=False)  # (min(N, D),) thin: no D x D covariance
    var = sv**2
    total = var.sum()
    rank = float(np.exp(_entropy(var / total))) if total > 0 else 0.0  # all rows identical: no direction
    norms = np.linalg.norm(f, axis=1)  # (N,)
    mean_norm = np.linalg.norm(f.mean(axis=0))
    # an all-zero row has no direction: it counts as cosine 0, as does a zero mean
    cosines = f @ f.mean(axis=0) / (np.where(norms > 0, norms, 1.0) * (mean_norm if mean_norm > 0 else 1.0))
    cosine = float(cosines.mean())
    return {"effective_rank": rank, "centroid_cosine": cosine}


def domain_proximity(features, *, source_probs=None, seed: int = 0, max_items: int = MAX_ITEMS) -> dict[str, float]:
    """Every measure of ``PROXIMITY`` that applies (the ``source_*`` ones only with ``source_probs``
    (N, Z)), on the same label-free subsample of at most ``max_items`` of the (N, D) ``features``."""
    from threadpoolctl import threadpool_limits

    f = check_features(features)
    keep = label_free_subsample(len(f), max_items, seed)
    with threadpool_limits(limits=1, user_api="blas"):  # a few hundred rows: threads cost more than they give
        out = feature_proximity(f[keep])
        if source_probs is not None:
            p = check_probs(source_probs)
            if len(p) != len(f):
                raise DataError(f"source_probs has {len(p)} rows but features has {len(f)} rows")
            out = {**source_proximity(p[keep]), **out}
    return out
