"""transferlab: honest transfer learning on your own data.

The public API mirrors the command line::

    import transferlab
    results = transferlab.run("reviews.csv", text_column="review", label_column="score",
                              backbones=["minilm"], rungs=["majority", "classical", "frozen"])
    results.summary()          # the ladder table
    results.path               # the run directory, with results.json and report.html

Heavy parts (torch, transformers) are imported only when a run needs them.
"""

from __future__ import annotations

from .errors import (  # noqa: F401  (re-exported)
    BackboneError,
    ConfigError,
    DataError,
    MissingDependencyError,
    TransferlabError,
)
from .version import __version__  # noqa: F401  (re-exported)


def run(data=None, **kwargs):
    """Run the ladder on ``data`` (a folder, a CSV/JSONL/Parquet file, or a ``Dataset``).

    Keyword arguments are the fields of :class:`transferlab.config.RunSpec`.
    Returns a :class:`transferlab.results.RunResults`.
    """
    from .runner import run as _run

    return _run(data, **kwargs)


def rank(data=None, **kwargs):
    """Score candidate backbones (LogME, H-score, kNN, linear probe) next to their cost.

    ``backbones`` is required; no rung is trained. Returns :class:`RunResults` with ``ranking``.
    """
    from .runner import rank as _rank

    return _rank(data, **kwargs)


def audit(data=None, **kwargs):
    """Audit the data before any training: duplicates and near-duplicates within and across splits,
    label conflicts, imbalance, label shift, group and time overlap. Returns :class:`RunResults`
    with the ``audit`` section; with ``on_leakage="fail"`` cross-split duplicates raise DataError."""
    from .runner import audit as _audit

    return _audit(data, **kwargs)


def plan(data=None, **kwargs):
    """What ``run`` with the same settings will cost: each stage's predicted time and peak memory,
    from a few timed batches of each backbone on this data. Nothing is trained or written.
    Returns a :class:`transferlab.stages.RunPlan` (``.table()``, ``.to_dict()``, ``.total_seconds``)."""
    from .runner import plan as _plan

    return _plan(data, **kwargs)


def resume(run_dir, data=None, **kwargs):
    """Continue an unfinished run (crashed or killed) from its run directory: finished stages are
    read back, the rest runs with the same settings and seeds. ``data`` is needed only when the
    run was given in-memory data. Returns :class:`RunResults`."""
    from .runner import resume as _resume

    return _resume(run_dir, data, **kwargs)


def load_artifact(path):
    """Load a folder written by ``transferlab export``: a predictor with ``.predict(items)`` (labels)
    and ``.predict_proba(items)`` ((N, C) class probabilities, columns in ``.labels`` order)."""
    from .export import load_artifact as _load

    return _load(path)


def load_run(path):
    """Load a finished run directory (or its results.json) as :class:`RunResults`."""
    from .results import load_run as _load

    return _load(path)


def compare(run_a, run_b, **kwargs):
    """Compare run B (new) with run A (earlier) on their shared test examples: per rung, B - A with
    paired bootstrap intervals, p-values and McNemar's test. See :func:`transferlab.comparison.compare`."""
    from .comparison import compare as _compare

    return _compare(run_a, run_b, **kwargs)


__all__ = [
    "__version__",
    "run",
    "rank",
    "audit",
    "plan",
    "resume",
    "load_run",
    "load_artifact",
    "compare",
    "TransferlabError",
    "DataError",
    "ConfigError",
    "BackboneError",
    "MissingDependencyError",
]
