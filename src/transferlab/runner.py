"""A run, top to bottom: data -> split -> features -> ladder -> held-out evaluation -> results.

Everything the user could get wrong (settings, data, backbone names) is checked before the run
directory is created; results.json and report.html are written last, atomically, so a run
directory that has them is complete and one that failed says so in ``error.txt``.
"""

from __future__ import annotations

import platform
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .config import RunSpec, default_out
from .data import Dataset, Task, load_data, make_task, subsample, write_manifest
from .errors import BackboneError, ConfigError, DataError, TransferlabError
from .evaluation import evaluate, expected_calibration_error
from .progress import Progress
from .results import SCHEMA, RunResults, write_json_atomic

STAGES = "stages"  # run-directory folder holding each finished stage, for --resume


def prepare_task(data: Any, spec: RunSpec) -> Task:
    """Read and split the data; every data error surfaces here, before anything is written."""
    if isinstance(data, Dataset):
        dataset = data
    elif isinstance(data, Task):
        return data
    elif data is None:
        raise ConfigError("No data given. Pass a folder of images or a CSV/JSONL/Parquet file.")
    else:
        dataset = load_data(data, text_column=spec.text_column, label_column=spec.label_column,
                            split_column=spec.split_column, group_column=spec.group_column,
                            time_column=spec.time_column)
    task = make_task(dataset, seed=spec.seed, val_fraction=spec.val_fraction, test_fraction=spec.test_fraction)
    return subsample(task, {"train": spec.max_train, "val": spec.max_val, "test": spec.max_test}, spec.seed)


def check_rung_data(task: Task, spec: RunSpec) -> None:
    """Each chosen rung's own objection to the data, before the run directory is created."""
    from .rungs import RUNGS

    for name in spec.rungs:
        RUNGS.get(name)().check_data(task, spec)


def resolve_backbones(spec: RunSpec, modality: str) -> list:
    from .backbones import resolve

    if spec.needs_backbone() and not spec.backbones:
        spec.backbones = [{"text": "minilm", "audio": "resemblyzer"}.get(modality, "mobilenet_v2")]
    backbones = []
    for name in spec.backbones if spec.needs_backbone() else []:
        options = {"image_size": spec.image_size, "seed": spec.seed}
        if modality == "text":
            options = {"max_length": spec.max_length, "trust_remote_code": spec.trust_remote_code, "seed": spec.seed}
        elif modality == "audio":
            options = {"clip_seconds": spec.clip_seconds, "trust_remote_code": spec.trust_remote_code, "seed": spec.seed}
        b = resolve(name, **options)
        if b.modality != modality:
            raise BackboneError(f"Backbone '{name}' is for {b.modality} data but the data is {modality}. "
                                f"Pass a {modality} backbone with --backbone.")
        backbones.append(b)
    return backbones


def _prepare_out(spec: RunSpec, data: Any, resume: bool = False) -> Path:
    out = Path(spec.out) if spec.out else default_out(spec, getattr(data, "description", None) or str(data))
    if (out / "results.json").exists():
        raise ConfigError(f"'{out}' already holds a finished run (results.json). Pass another --out or remove it.")
    if not resume and (out / STAGES).exists():
        raise ConfigError(f"'{out}' holds an unfinished run. Continue it with `transferlab run --resume {out}`, "
                          "or pass another --out.")
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("error.txt", "report.html"):
        (out / stale).unlink(missing_ok=True)
    return out


class _Stages:
    """Each finished stage of a run as one JSON file, written atomically: what --resume reuses."""

    def __init__(self, out: Path, enabled: bool = True):
        self.dir, self.enabled = out / STAGES, enabled

    def path(self, name: str) -> Path:
        return self.dir / f"{name}.json"

    def load(self, name: str) -> dict | None:
        import json

        path = self.path(name)
        if not self.enabled or not path.exists():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # written atomically, so this is damage from outside: redo the stage
            return None

    def save(self, name: str, data: dict) -> dict:
        """Write the stage; return it as read back, so a fresh and a resumed run go on from the same values."""
        if not self.enabled:
            return data
        self.path(name).parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(data, self.path(name))
        return self.load(name)


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _environment(spec: RunSpec) -> dict:
    import torch

    from .devices import processes

    procs = processes()
    return {"transferlab": __version__, "torch": torch.__version__, "device": procs.device.type, "seed": spec.seed,
            "processes": procs.count, "python": platform.python_version(), "platform": platform.platform(terse=True),
            "threads": torch.get_num_threads()}


class _Features:
    """Lazily extracted, cached features of one backbone, per split."""

    def __init__(self, backbone, task: Task, spec: RunSpec, progress: Progress, embedded: dict | None = None):
        self.backbone, self.spec, self.progress = backbone, spec, progress
        self.task = task.without_test_labels()  # rungs reach it through ctx.features: items and hashes only
        self._arrays: dict[str, np.ndarray] = {}
        self.embedded = embedded  # {"rows": {hash: row}, "features": (N, D), "seconds", "items"} from the audit
        self.seconds = 0.0  # embedding time, as measured when the features were extracted
        self.items = 0
        self.from_cache = True

    def __call__(self, split: str) -> np.ndarray:
        if split in self._arrays:
            return self._arrays[split]
        hashes = self.task.part_hashes(split)
        if self.embedded is not None and all(h in self.embedded["rows"] for h in hashes):
            rows = [self.embedded["rows"][h] for h in hashes]  # already embedded for the audit
            self._arrays[split] = np.asarray(self.embedded["features"])[rows]
            self.seconds += self.embedded["seconds"] * len(rows) / self.embedded["items"]
            self.items += len(rows)
            self.from_cache = self.from_cache and self.embedded["from_cache"]
            return self._arrays[split]
        from .features import extract

        items = self.task.part(split)[0]
        with self.progress.task(f"embed {split} with {self.backbone.name}", len(items)) as update:
            ex = extract(self.backbone, items, hashes, cache_dir=self.spec.cache_dir,
                         batch_size=self.spec.extract_batch_size, progress=update)
        self._arrays[split] = ex.features
        self.seconds += ex.seconds
        self.items += len(items)
        self.from_cache = self.from_cache and ex.from_cache
        return self._arrays[split]

    @property
    def items_per_second(self) -> float | None:
        return self.items / self.seconds if self.seconds > 0 else None

    def view(self, task: Task) -> "FeatureView":
        """The same features for another train/validation draw of this task (same examples)."""
        return FeatureView(self, task)


class FeatureView:
    """Features of a redrawn task, looked up by content hash in the original split's features."""

    def __init__(self, base: _Features, task: Task):
        self.base, self.task = base, task.without_test_labels()  # a rung reaches it: no test labels
        self._rows: dict[str, tuple[str, int]] | None = None

    def __call__(self, split: str) -> np.ndarray:
        if self._rows is None:
            self._rows = {h: (s, i) for s in ("train", "val", "test") for i, h in enumerate(self.base.task.part_hashes(s))}
        found = [self._rows[h] for h in self.task.part_hashes(split)]
        arrays = {s: np.asarray(self.base(s)) for s in {s for s, _ in found}}
        if not found:
            return np.zeros((0, np.asarray(self.base("train")).shape[1]), dtype=np.float32)
        return np.stack([arrays[s][i] for s, i in found])


def _save_model(save, out: Path, name: str) -> dict:
    """The rung's fitted model under models/<name>/, written to a temporary directory first."""
    import shutil

    safe = _safe_name(name)
    final, tmp = out / "models" / safe, out / "models" / f".{safe}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    meta = save(tmp)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return {"path": f"models/{safe}", **(meta or {})}


def seed_count(rung, spec: RunSpec) -> int:
    return {"none": 1, "cheap": spec.seeds, "train": spec.train_seeds}.get(rung.seeding, 1)


def seed_draws(rung, task: Task, spec: RunSpec, clusters: np.ndarray | None) -> tuple[list[tuple[int, Task]], list[str]]:
    """The (seed offset, task) each run of a rung gets. Seed k > 0 redraws train/validation from the
    same pooled examples (test untouched) and, for trained rungs, reinitialises; a fixed split
    leaves the cheap, deterministic rungs one run, since every seed would give the same model."""
    from .data import repartition

    n = seed_count(rung, spec)
    draws, notes = [], []
    for k in range(n):
        draw = task if k == 0 else repartition(task, spec.seed + k, clusters)
        if draw is None:
            if rung.seeding != "train":
                notes.append(f"One seed, not {n}: the train/validation split is fixed (yours, or by time), and "
                             "this rung is deterministic given its split.")
                break
            draw = task  # another initialisation and batch order on the same split
        draws.append((k, draw))
    if len(draws) > 1:
        how = "a new random train/validation draw" + (" and initialisation" if rung.seeding == "train" else "")
        seeds = [spec.seed + k for k, _ in draws]
        notes.append(f"{len(seeds)} seeds ({', '.join(map(str, seeds))}), each with {how}; test metrics are their "
                     "mean, and the interval covers both test resampling and seed variation.")
    return draws, notes


def fit_seed(rung, name: str, k: int, n: int, draw: Task, spec: RunSpec, backbone, feats, progress: Progress):
    """One run of a rung: seed ``spec.seed + k`` on the train/validation draw ``draw``."""
    from .rungs import Context

    label = name if n == 1 else f"{name} seed {k + 1}/{n}"
    with progress.task(label) as update:
        view = None if feats is None else (feats if k == 0 else feats.view(draw))
        return rung.run(Context(draw, spec, spec.seed + k, backbone, view, update))


def first_seed_extras(result, rung, name: str, task: Task, spec: RunSpec, feats, out: Path, ood: dict,
                      progress: Progress) -> dict:
    """What only the first seed's fitted model gives (it must run where that model lives): the saved
    model, the out-of-distribution scores, the learning curve, and the extraction-speed notes."""
    speed = feats.items_per_second if rung.needs_features else None
    if rung.needs_features:
        result.extract_seconds = feats.seconds
    if speed:
        result.notes.append(f"Feature extraction ran at {speed:.1f} items/s.")
        if not rung.trains_backbone:  # it predicts from frozen features: a new item is embedded first
            result.predict_seconds += len(task.part("test")[1]) / speed
    extras: dict = {"artifact": None, "ood": None, "learning_curve": None}
    if spec.save_models and result.save is not None:
        extras["artifact"] = _save_model(result.save, out, name)
    if ood:
        with progress.task(f"{name} on {len(ood)} out-of-distribution sets"):
            extras["ood"] = _score_ood(result, ood, task)
    if spec.learning_curve and result.refit_predict is not None:
        from .evaluation.learning_curve import TRAINED_FRACTIONS, learning_curve

        trained = rung.seeding == "train"  # each point is a training run: fewer sizes, one subsample
        with progress.task(f"{name} learning curve"):
            extras["learning_curve"] = learning_curve(
                result.refit_predict, task.part("train")[1], task.part("test")[1], metric=spec.metric,
                target=spec.target, **({"seeds": 1, "fractions": TRAINED_FRACTIONS, "full_predictions": result.test_pred}
                                       if trained else {}))
    return extras


def assemble_rung(name: str, rung, backbone, results: list, seeds: list[int], notes: list[str], extras: dict,
                  task: Task, progress: Progress) -> dict:
    """The rung's stage: its results.json record (all seeds) and its learning curve."""
    results[0].notes.extend(notes)
    record = _rung_record(name, rung, backbone, results, task, seeds)
    if extras.get("artifact"):
        record["artifact"] = extras["artifact"]
    if extras.get("ood") is not None:
        record["ood"] = extras["ood"]
    t = record["test"]
    sd = f" ± {t['accuracy']['sd']:.3f} over {len(seeds)} seeds" if "sd" in t["accuracy"] else ""
    progress.log(f"  {name}: test accuracy {t['accuracy']['mean']:.3f}{sd}, macro-F1 {t['macro_f1']['mean']:.3f} "
                 f"({results[0].fit_seconds:.1f} s)")
    return {"record": record, "learning_curve": extras.get("learning_curve")}


def duplicate_clusters(task: Task, audit: dict) -> np.ndarray | None:
    """A cluster id per example: examples the audit found to be (near-)duplicates share one, so a
    redrawn train/validation split keeps them on one side."""
    pairs = audit.get("_pairs") or []
    if not pairs:
        return None
    parent = list(range(len(task.items)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    row = {h: i for i, h in enumerate(task.hashes)}
    for ha, hb in pairs:
        if ha in row and hb in row:
            parent[find(row[ha])] = find(row[hb])
    return np.array([find(i) for i in range(len(task.items))])


def _rung_record(name: str, rung, backbone, results: list, task: Task, seeds: list[int]) -> dict:
    out = results[0]
    y_val, y_test = task.part("val")[1], task.part("test")[1]
    n_test = max(len(y_test), 1)
    test_preds = np.stack([r.test_pred for r in results])
    test = evaluate(y_test, test_preds, task.classes)
    if out.test_proba is not None:
        eces = [expected_calibration_error(y_test, r.test_proba) for r in results if r.test_proba is not None]
        test["ece"] = float(np.mean(eces))
    predictions = {"test": [int(p) for p in out.test_pred], "val": [int(p) for p in out.val_pred]}
    if len(results) > 1:
        predictions["test_seeds"] = test_preds.astype(int).tolist()
    return {
        "name": name, "strategy": rung.strategy, "backbone": backbone.name if backbone else None, "seeds": seeds,
        "test": test,
        "predictions": predictions,
        # validation is the first seed's draw: the one every rung shares, so rungs compare on it
        "val": evaluate(y_val, out.val_pred, task.classes, with_details=False),
        "curves": out.curves,
        "cost": {"fit_seconds": out.fit_seconds, "extract_seconds": out.extract_seconds,
                 "fit_seconds_all_seeds": float(sum(r.fit_seconds for r in results)),
                 "trainable_params": out.trainable_params,
                 "total_params": out.total_params, "predict_ms_per_item": 1000 * out.predict_seconds / n_test,
                 **out.cost},  # a rung's own cost columns (lora: adapter_params, adapter_bytes)
        "chosen": out.chosen, "notes": out.notes, "description": rung.description,
    }


def run(data: Any = None, *, quiet: bool = False, spec: RunSpec | None = None, **settings: Any) -> RunResults:
    """Run the ladder; see :class:`RunSpec` for ``settings``."""
    return _start(data, spec or RunSpec(**settings), quiet, rank_only=False)


def audit(data: Any = None, *, quiet: bool = False, spec: RunSpec | None = None, **settings: Any) -> RunResults:
    """Audit the data alone (duplicates, leakage, label conflicts, imbalance, shifts); no rung is run.

    With ``backbones``, the first one embeds the examples for the embedding-based near-duplicate search.
    """
    settings.setdefault("rungs", ["frozen"] if settings.get("backbones") else ["majority"])
    settings.setdefault("on_leakage", "warn")  # the audit alone reports; it has nothing to protect
    spec = spec or RunSpec(**settings)
    return _start(data, spec, quiet, rank_only=True, audit_only=True)


def rank(data: Any = None, *, quiet: bool = False, spec: RunSpec | None = None, **settings: Any) -> RunResults:
    """Score candidate backbones on the training split without training any; same results.json."""
    settings.setdefault("rungs", ["frozen"])  # needs a backbone; no rung is run
    spec = spec or RunSpec(**settings)
    if not spec.backbones:
        raise ConfigError("rank needs candidates: pass --backbone at least once (e.g. --backbone minilm).")
    return _start(data, spec, quiet, rank_only=True)


def resume(run_dir: str | Path, data: Any = None, *, quiet: bool = False) -> RunResults:
    """Continue a run that stopped (crash, kill, power cut) where it stopped.

    The settings come from the run directory's spec.json; the data from ``data`` or, when the run
    read a file or folder, from the path it recorded. Finished stages (audit, ranking, each rung)
    are read back, never redone; the rest runs with the same seeds, so the results equal those of
    an uninterrupted run.
    """
    import json

    out = Path(run_dir)
    if (out / "results.json").exists():
        raise ConfigError(f"'{out}' is a finished run (it has results.json); there is nothing to resume.")
    state = out / "run.json"
    if not state.exists():
        raise ConfigError(f"'{out}' is not a transferlab run directory (no run.json). Pass the folder a run "
                          "was writing to (its --out).")
    try:
        saved = json.loads(state.read_text(encoding="utf-8"))
        spec = RunSpec(**{**saved["spec"], "out": str(out)})
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{state}: cannot read the run's settings ({exc}). Start the run again.") from None
    if data is None:
        data = saved.get("data")
        if data is None:
            raise ConfigError(f"'{out}' was run on in-memory data; pass the same data again: "
                              "transferlab.resume(run_dir, data).")
        if data.startswith("demo:"):
            from .demo import demo_data

            data = demo_data(data.split(":", 1)[1])
    for leftover in out.rglob(".*.tmp"):  # half-written files of the process that stopped
        leftover.unlink(missing_ok=True)
    mode = saved.get("mode", "run")
    return _start(data, spec, quiet, rank_only=mode != "run", audit_only=mode == "audit", resume=True)


def _start(data: Any, spec: RunSpec, quiet: bool, rank_only: bool, audit_only: bool = False,
           resume: bool = False) -> RunResults:
    from .devices import processes

    procs = processes()
    if procs.distributed:
        return _start_launched(data, spec, quiet, rank_only, audit_only, resume, procs)
    return _start_here(data, spec, quiet, rank_only, audit_only, resume)


def _start_launched(data: Any, spec: RunSpec, quiet: bool, rank_only: bool, audit_only: bool, resume: bool,
                    procs) -> RunResults:
    """One of N processes of ``accelerate launch`` / ``torchrun``: every process runs the same run
    (the trainable rungs train data-parallel across them); the first writes the run directory, the
    others a private temporary one that is removed at the end."""
    import dataclasses
    import shutil
    import tempfile

    if resume:
        raise ConfigError("--resume runs in a single process: run `transferlab run --resume RUN_DIR` without "
                          "accelerate launch or torchrun (the finished stages are read back; the rest trains "
                          "on one device).")
    if spec.executor != "local":
        raise ConfigError("executor ray and a multi-process launch (accelerate launch / torchrun) do not combine: "
                          "use one or the other.")
    if procs.main:
        return _start_here(data, spec, quiet, rank_only, audit_only, resume)
    private = tempfile.mkdtemp(prefix=f"transferlab-process{procs.index}-")
    try:
        return _start_here(data, dataclasses.replace(spec, out=private, mlflow=None), True, rank_only, audit_only,
                           resume)
    finally:
        shutil.rmtree(private, ignore_errors=True)


def _start_here(data: Any, spec: RunSpec, quiet: bool, rank_only: bool, audit_only: bool = False,
                resume: bool = False) -> RunResults:
    """The run in this process. Library warnings are kept out of the terminal, in warnings.txt."""
    from .library_warnings import captured

    progress = Progress(quiet)
    with captured(progress.log) as caught:
        task = prepare_task(data, spec)
        backbones = resolve_backbones(spec, task.modality)
        ood = {} if rank_only or audit_only else ood_sets(task, spec)
        if not rank_only:
            check_rung_data(task, spec)
        out = caught.out = _prepare_out(spec, data, resume)
        stages = _Stages(out)
        if not resume:
            path = getattr(data, "reference", None) if isinstance(data, (Dataset, Task)) else str(Path(data).resolve())
            write_json_atomic({"schema": "transferlab.state/1", "data": path,
                               "mode": "audit" if audit_only else "rank" if rank_only else "run",
                               "spec": spec.to_dict()}, out / "run.json")
        (out / "error.txt").unlink(missing_ok=True)
        try:
            task, audit, embedded = run_audit_stage(task, backbones, spec, progress, stages, rank_only)
            if audit_only:
                return _finish({"task": _task_block(task), "audit": audit, "ranking": [], "rungs": []},
                               task, spec, out, time.perf_counter())
            return _run(task, backbones, spec, out, progress, rank_only, ood, audit, embedded, stages)
        except BaseException as exc:
            (out / "error.txt").write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
            raise


def ood_sets(task: Task, spec: RunSpec) -> dict[str, dict]:
    """Corrupted copies of a test subsample, and the user's OOD set: {name: items, y, test_idx, kind}."""
    from .data.splits import stratified_assign
    from .evaluation.corruptions import corrupted_sets

    sets: dict[str, dict] = {}
    test_idx = task.indices("test")
    if spec.corruptions and len(test_idx):
        if len(test_idx) > spec.ood_max_items:
            rng = np.random.default_rng(spec.seed + 2)
            keep = stratified_assign(task.y[test_idx], {"keep": spec.ood_max_items / len(test_idx)}, rng) == "keep"
            test_idx = test_idx[keep]
        positions = np.searchsorted(task.indices("test"), test_idx)  # rows of the test predictions
        items = [task.items[i] for i in test_idx]
        for name, corrupted in corrupted_sets(task.modality, items, spec.seed).items():
            sets[name] = {"items": corrupted, "y": task.y[test_idx], "test_positions": positions, "kind": "corruption"}
    if spec.ood:
        ds = load_data(spec.ood, text_column=spec.text_column, label_column=spec.label_column)
        if ds.modality != task.modality:
            raise ConfigError(f"--ood {spec.ood} holds {ds.modality} data but the training data is {task.modality}.")
        index = {c: i for i, c in enumerate(task.classes)}
        for origin, label in zip(ds.origins, ds.labels):
            if label not in index:
                raise DataError(f"{origin}: label '{label}' of the OOD set is not a class of the training data "
                                f"({', '.join(task.classes)}). Remove the row or fix the label.")
        sets["ood:" + Path(spec.ood).name] = {"items": ds.items, "y": np.array([index[l] for l in ds.labels]),
                                              "test_positions": None, "kind": "user"}
    return sets


def _score_ood(result, sets: dict[str, dict], task: Task) -> dict:
    """Each OOD set's metrics and the drop from the same rung on clean test examples."""
    if result.predict_proba is None:
        return {}
    y_test = task.part("test")[1]
    out = {}
    for name, s in sets.items():
        pred = result.predict_proba(s["items"]).argmax(1)
        scores = evaluate(s["y"], pred, task.classes, with_details=False)
        pos = s["test_positions"]
        clean_y, clean_pred = (y_test, result.test_pred) if pos is None else (y_test[pos], result.test_pred[pos])
        clean = evaluate(clean_y, clean_pred, task.classes, with_details=False, n_resamples=1)
        scores["drop"] = {m: clean[m]["mean"] - scores[m]["mean"] for m in ("accuracy", "balanced_accuracy", "macro_f1")}
        scores["kind"] = s["kind"]
        out[name] = scores
    return out


def run_audit_stage(task: Task, backbones: list, spec: RunSpec, progress: Progress,
                    stages: _Stages | None = None, rank_only: bool = False) -> tuple[Task, dict, dict | None]:
    """Audit the split data, then apply the leakage policy; returns the (deduplicated) task.

    The first backbone embeds every example for the embedding-based near-duplicate search; the
    embeddings are kept so the rungs do not embed the same examples again.
    """
    if not spec.audit:
        return task, {"findings": [], "skipped": [], "seconds": {}}, None
    from .auditing import AuditInputs, apply_leakage_policy, run_audit
    from .features import extract

    embedded = None
    if backbones:
        b = backbones[0]
        with progress.task(f"embed all {len(task.items)} examples with {b.name} for the audit", len(task.items)) as update:
            ex = extract(b, task.items, task.hashes, cache_dir=spec.cache_dir, batch_size=spec.extract_batch_size,
                         progress=update)
        embedded = {"backbone": b.name, "rows": {h: i for i, h in enumerate(task.hashes)}, "features": ex.features,
                    "seconds": ex.seconds, "items": len(task.items), "from_cache": ex.from_cache}
    stages = stages or _Stages(Path("."), enabled=False)
    fingerprint = _fingerprint(task)
    saved = stages.load("audit")
    if saved is not None and saved.get("fingerprint") == fingerprint:
        progress.log("audit: read back from the unfinished run")
        task = task.select(np.asarray(saved["kept"], dtype=np.int64), saved["audit"]["actions"])
        return task, saved["audit"], embedded
    with progress.task("audit"):
        report = run_audit(AuditInputs(task, features=None if embedded is None else np.asarray(embedded["features"]),
                                       groups=task.groups, times=task.times))
    audit = report.to_dict()
    from .auditing.runner import LEAKAGE_CHECKS

    # every (near-)duplicate pair, by content hash, so redrawn splits keep copies together (not written out)
    audit["_pairs"] = [(task.hashes[a], task.hashes[b]) for f in report.findings if f.check in LEAKAGE_CHECKS
                       for a, b in f.pairs]
    row = {origin: i for i, origin in enumerate(task.origins)}  # origins (file, row) are unique
    # audit and rank report, and score no test set: they never stop to ask before removing copies
    deduped, notes = apply_leakage_policy(task, report, spec.on_leakage, confirmed=spec.confirm_dedupe,
                                          max_share=None if rank_only else spec.max_dedupe_share)
    audit["policy"] = spec.on_leakage
    audit["actions"] = notes
    if spec.on_leakage == "dedupe":
        audit.update(_dedupe_record(task, deduped, report, spec))
    if task.modality == "image":
        _add_thumbnails([e for f in audit["findings"] for e in f.get("examples") or []] + audit.get("removed", []),
                        task)
    if embedded:
        audit["embedding_backbone"] = embedded["backbone"]
    kept = [row[origin] for origin in deduped.origins]
    audit = stages.save("audit", {"fingerprint": fingerprint, "kept": kept, "audit": audit})["audit"]
    deduped.notes.extend(notes)
    for f in report.findings:
        if f.severity == "error":
            progress.log(f"[red]audit:[/] {f.message}")
    return deduped, audit, embedded


def _dedupe_record(before: Task, after: Task, report, spec: RunSpec) -> dict:
    """What dedupe removed, for results.json: counts and shares per split, and the removed copies next
    to the examples they duplicated (the first few; ``dedupe.removed`` has the totals)."""
    from .auditing.runner import removal_shares, removed_pairs

    kept = set(after.origins)
    removal = removal_shares(before, [i for i, origin in enumerate(before.origins) if origin not in kept])
    over = any(share > spec.max_dedupe_share for _, _, share in removal.values())
    return {"dedupe": {"removed": {s: n for s, (n, _, _) in removal.items()},
                       "share": {s: round(share, 4) for s, (_, _, share) in removal.items()},
                       "max_share": spec.max_dedupe_share, "over_max_share": over, "confirmed": spec.confirm_dedupe},
            "removed": removed_pairs(before, report) if len(after.items) < len(before.items) else []}


def _fingerprint(task: Task) -> str:
    """What the data and its split were, to check that a resumed run reads the same examples."""
    import hashlib

    h = hashlib.sha256()
    for item_hash, split, y in zip(task.hashes, task.split, task.y):
        h.update(f"{item_hash}{split}{int(y)}".encode())
    return h.hexdigest()


def _add_thumbnails(examples: list[dict], task: Task, size: int = 64) -> None:
    """Small PNGs of the images in example pairs, so the report can show them side by side."""
    import base64
    import io

    from .backbones.images import load_image

    cache: dict[int, str] = {}

    def thumbnail(i: int) -> str:
        if i not in cache:
            im = load_image(task.items[i])
            im.thumbnail((size, size))
            buf = io.BytesIO()
            im.save(buf, format="PNG")
            cache[i] = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
        return cache[i]

    for example in examples:
        for side in ("a", "b"):
            entry = example.get(side) if isinstance(example, dict) else None
            if isinstance(entry, dict) and isinstance(entry.get("index"), int):
                entry["thumbnail"] = thumbnail(entry["index"])


def _task_block(task: Task) -> dict:
    return {"modality": task.modality, "labels": task.classes, "splits": task.sizes(), "source": task.description}


def _finish(sections: dict, task: Task, spec: RunSpec, out: Path, started: float) -> RunResults:
    """Write results.json and report.html (atomically, last) and return the results."""
    from .report import write_html

    write_manifest(task, out / "split_manifest.csv")
    if isinstance(sections.get("audit"), dict):  # keys with a leading underscore are working data
        sections["audit"] = {k: v for k, v in sections["audit"].items() if not k.startswith("_")}
    results = RunResults({
        "schema": SCHEMA, "notes": list(spec.notes) + task.notes, "verdicts": [], "recommendation": None,
        **sections,
        "environment": {**_environment(spec), "wall_seconds": round(time.perf_counter() - started, 1)},
        "artifacts": {"split manifest": "split_manifest.csv", "run spec": "spec.json", "results": "results.json"},
    })
    write_json_atomic({"schema": "transferlab.spec/1", **spec.to_dict()}, out / "spec.json")
    write_json_atomic(results, out / "results.json")
    write_html(results, out / "report.html")
    results.path = out
    if spec.mlflow:  # after the run is saved; a tracking failure is reported, never raised
        from .tracking import log_to_mlflow

        log_to_mlflow(results, out, spec)
    return results


def _run(task: Task, backbones: list, spec: RunSpec, out: Path, progress: Progress, rank_only: bool,
         ood: dict[str, dict], audit: dict, embedded: dict | None, stages: _Stages | None = None) -> RunResults:
    import torch

    from .rungs import RUNGS

    if spec.threads:
        torch.set_num_threads(spec.threads)
    started = time.perf_counter()
    sizes = task.sizes()
    progress.log(f"[bold]transferlab[/] {task.description}: {task.modality}, {len(task.classes)} classes, "
                 f"train {sizes['train']} / val {sizes['val']} / test {sizes['test']}")
    features = {b.name: _Features(b, task, spec, progress, embedded if embedded and embedded["backbone"] == b.name
                                  else None) for b in backbones}
    stages = stages or _Stages(out, enabled=False)
    saved = stages.load("ranking")
    if saved is not None and [c["backbone"] for c in saved["ranking"]] and \
            sorted(c["backbone"] for c in saved["ranking"]) == sorted(b.name for b in backbones):
        ranking = saved["ranking"]
    else:
        ranking = [_rank_candidate(b, features[b.name], task, spec, progress) for b in backbones]
        ranking = stages.save("ranking", {"ranking": ranking})["ranking"]
    from .ranking.scores import LEAD_SCORE

    ranking.sort(key=lambda c: c["scores"].get(LEAD_SCORE, float("-inf")), reverse=True)
    order = {c["backbone"]: i for i, c in enumerate(ranking)}
    backbones = sorted(backbones, key=lambda b: order[b.name])
    trained = {b.name for b in backbones[: spec.top_k or len(backbones)]}

    plan = [(s, None) for s in spec.rungs if not RUNGS.get(s).needs_backbone]
    plan += [(s, b) for b in backbones for s in spec.rungs
             if RUNGS.get(s).needs_backbone and (RUNGS.get(s).cheap or b.name in trained)]
    if rank_only:
        plan = []
    for strategy, backbone in [p for p in plan if p[1] is not None]:
        reason = RUNGS.get(strategy)().applies_to(backbone, spec)
        if reason:  # e.g. lora on layers PEFT cannot adapt, zero_shot on an image model without a text tower
            progress.log(f"rung [bold]{strategy}:{backbone.name}[/] not applicable: {reason}")
            task.notes.append(f"{strategy}:{backbone.name} was not run: {reason}")
            plan.remove((strategy, backbone))
    if spec.top_k and len(backbones) > spec.top_k:
        cheap = [s for s in spec.rungs if RUNGS.get(s).needs_backbone and RUNGS.get(s).cheap]
        progress.log(f"--top-k {spec.top_k}: training only {', '.join(sorted(trained))} (best {LEAD_SCORE.replace('_', ' ')}); "
                     f"the others get only {', '.join(cheap) or 'no backbone rung'}.")
    clusters = duplicate_clusters(task, audit)
    stage_of, pending = {}, []
    for strategy, backbone in plan:
        name = f"{strategy}:{backbone.name}" if backbone else strategy
        saved = stages.load(f"rungs/{_safe_name(name)}")
        if saved is None:
            pending.append((strategy, backbone))
        else:
            progress.log(f"rung [bold]{name}[/]: read back from the unfinished run")
            stage_of[name] = saved

    def done(strategy: str, backbone, stage: dict) -> None:
        name = f"{strategy}:{backbone.name}" if backbone else strategy
        stage_of[name] = stages.save(f"rungs/{_safe_name(name)}", stage)

    if spec.executor == "ray" and pending:
        from .executors import run_rungs_on_ray

        used = {b.name for _, b in pending if b is not None}
        run_rungs_on_ray(pending, task, spec, out, {n: f for n, f in features.items() if n in used}, progress, ood,
                         clusters, done)
    else:
        for strategy, backbone in pending:
            done(strategy, backbone, _rung_stage(strategy, backbone, features, task, spec, out, progress, ood, clusters))
    records, curves = [], {}
    for strategy, backbone in plan:
        name = f"{strategy}:{backbone.name}" if backbone else strategy
        records.append(stage_of[name]["record"])
        if stage_of[name].get("learning_curve"):
            curves[name] = stage_of[name]["learning_curve"]

    from .verdicts import VerdictContext, run_verdicts
    from .verdicts.recommendation import recommend

    ctx = VerdictContext(records, task.part("test")[1], task.part("train")[1], task.classes, spec.metric,
                         audit["findings"], audit.get("policy", ""), y_val=task.part("val")[1],
                         split_by="time" if task.times is not None else "group" if task.groups is not None else "",
                         dedupe=audit.get("dedupe") or {})
    verdicts = run_verdicts(ctx)
    return _finish({
        "task": _task_block(task),
        "audit": audit,
        "ranking": _with_achieved(ranking, records),
        "rungs": records,
        "verdicts": verdicts,
        "learning_curve": {"metric": spec.metric, "target": spec.target, "rungs": curves} if curves else {},
        "recommendation": recommend(ctx) if records else None,
    }, task, spec, out, started)


def _rung_stage(strategy: str, backbone, features: dict, task: Task, spec: RunSpec, out: Path,
                progress: Progress, ood: dict, clusters: np.ndarray | None) -> dict:
    """One rung on one backbone, all its seeds, in this process."""
    from .rungs import RUNGS

    rung = RUNGS.get(strategy)()
    name = f"{strategy}:{backbone.name}" if backbone else strategy
    progress.log(f"rung [bold]{name}[/] ...")
    feats = features[backbone.name] if backbone else None
    draws, notes = seed_draws(rung, task, spec, clusters)
    results, extras = [], {}
    for k, draw in draws:
        results.append(fit_seed(rung, name, k, len(draws), draw, spec, backbone, feats, progress))
        if k == 0:
            extras = first_seed_extras(results[0], rung, name, task, spec, feats, out, ood, progress)
    return assemble_rung(name, rung, backbone, results, [spec.seed + k for k, _ in draws], notes, extras, task,
                         progress)


def _rank_candidate(backbone, feats: _Features, task: Task, spec: RunSpec, progress: Progress) -> dict:
    """Transferability scores on the training split's cached features, next to the cost, and the
    frozen accuracy they predict (with its interval)."""
    from .ranking import score_features
    from .ranking.confidence import pack, predicted_accuracy
    from .ranking.cost import batch_memory, source_probabilities

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
            "_probe_correct": pack(probe),  # for p_best across candidates, dropped in _with_achieved
            "params": backbone.num_params(), "feature_dim": backbone.feature_dim,
            "items_per_second": feats.items_per_second, "features_from_cache": feats.from_cache,
            "pretrained_on": backbone.provenance.get("pretrained_on", "unknown"),
            "licence": backbone.provenance.get("licence", "unknown"),
            "source": backbone.provenance.get("source", backbone.name)}


def _with_achieved(ranking: list[dict], records: list[dict]) -> list[dict]:
    """Beside each candidate's scores, the probability that it is the best candidate and the test
    accuracy its rungs achieved (score vs outcome)."""
    from .ranking.confidence import p_best, unpack

    bits = [c.pop("_probe_correct", None) for c in ranking]
    if len(ranking) > 1 and all(bits) and len({len(b) for b in bits}) == 1:
        for c, p in zip(ranking, p_best([unpack(b) for b in bits])):
            c["p_best"] = float(p)
    for c in ranking:
        achieved = {r["strategy"]: r["test"]["accuracy"]["mean"] for r in records if r["backbone"] == c["backbone"]}
        if achieved:
            c["achieved_test_accuracy"] = achieved
    return ranking


__all__ = ["run", "rank", "audit", "prepare_task", "resolve_backbones", "TransferlabError"]
