"""A run's stages, one module each, in the order they run:

``plan``      read and split the data, resolve backbones, make the run directory, plan seeds
``audit``     check the data and apply the leakage policy
``features``  the features rungs and ranking read (extracted lazily, cached, viewed per draw)
``rank``      score the candidate backbones
``fit``       fit each rung over its seeds; its results.json record
``judge``     the verdicts and the recommendation
``write``     write results.json and the report
``store``     each finished stage on disk, for --resume
``cache``     finished rungs reused across runs, by a key of everything they depend on
``costplan``  every stage's time and memory, predicted from timed batches
``pace``      how fast this machine does the cheap work today (the factors of costplan's rates)
``oodcount``  the out-of-distribution items each rung predicts, counted for the plan
``timelimit`` what --time-limit cuts, in which order, and when each costly rung must stop
``clock``     the run's clock: stage k of n, elapsed and remaining, and the rungs fitted to the limit

``transferlab.runner`` wires them together; the executors run ``fit``'s pieces elsewhere.
"""

from ..features.store import FeatureStore
from .audit import AuditOutcome, run_audit_stage
from .cache import RungCache, rung_key
from .clock import RunClock, embed_planned, limit_rungs, mark_reused, recalibrate, retime
from .costplan import RunPlan, StagePlan, make_plan, plan_run, replan_rungs
from .features import AuditEmbedding, CachedFeatures, FeatureView, PreloadedFeatures, feature_stores
from .fit import RungStage, assemble_rung, first_seed_extras, fit_rung, fit_seed, ood_sets
from .judge import Judgement, judge
from .oodcount import ood_item_count
from .plan import (
    RungJob,
    check_rung_data,
    duplicate_clusters,
    plan_rungs,
    prepare_out,
    prepare_task,
    resolve_backbones,
    seed_count,
    seed_draws,
)
from .rank import Candidate, rank_candidate, rank_stage, with_achieved
from .store import STAGES, StageStore, read_run_state, safe_name, write_run_state
from .timelimit import costly
from .timelimit import summary as limit_summary
from .write import task_block, write_results

__all__ = [
    "STAGES",
    "AuditEmbedding",
    "AuditOutcome",
    "CachedFeatures",
    "Candidate",
    "FeatureStore",
    "FeatureView",
    "Judgement",
    "PreloadedFeatures",
    "RunClock",
    "RunPlan",
    "RungCache",
    "RungJob",
    "RungStage",
    "StageStore",
    "StagePlan",
    "assemble_rung",
    "check_rung_data",
    "costly",
    "duplicate_clusters",
    "embed_planned",
    "feature_stores",
    "first_seed_extras",
    "fit_rung",
    "fit_seed",
    "judge",
    "limit_rungs",
    "limit_summary",
    "make_plan",
    "mark_reused",
    "ood_item_count",
    "ood_sets",
    "plan_run",
    "replan_rungs",
    "plan_rungs",
    "prepare_out",
    "prepare_task",
    "rank_candidate",
    "rank_stage",
    "read_run_state",
    "recalibrate",
    "retime",
    "resolve_backbones",
    "run_audit_stage",
    "rung_key",
    "safe_name",
    "seed_count",
    "seed_draws",
    "task_block",
    "with_achieved",
    "write_results",
    "write_run_state",
]
