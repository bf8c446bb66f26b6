"""Transferability scores: rank frozen backbones on the user's data without fine-tuning them."""

from .hscore import hscore, hscore_shrinkage
from .knn import knn_accuracy, linear_probe_accuracy
from .leep_nce import leep, nce
from .logme import logme
from .proximity import PROXIMITY, domain_proximity
from .scores import SCORES, Scores, score_features

__all__ = [
    "logme",
    "hscore",
    "hscore_shrinkage",
    "leep",
    "nce",
    "knn_accuracy",
    "linear_probe_accuracy",
    "score_features",
    "Scores",
    "SCORES",
    "domain_proximity",
    "PROXIMITY",
]
