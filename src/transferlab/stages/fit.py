"""Fitting a rung over its seeds: each seed's fit, what only the first seed's fitted model gives
(saved model, out-of-distribution scores, learning curve), and the rung's results.json record."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import RunSpec
from ..data import Task, load_data
from ..errors import ConfigError, DataError
from ..evaluation import evaluate, expected_calibration_error
from ..features.store import FeatureStore
from ..progress import Progress
from ..training import deadline
from .plan import RungJob, on_subsample, seed_draws, trains_network
from .store import safe_name


@dataclass
class RungStage:
    """A finished rung (all its seeds): its results.json record and its learning curve, if fitted."""

    record: dict
    learning_curve: dict | None = None

    def to_dict(self) -> dict:
        return {"record": self.record, "learning_curve": self.learning_curve}

    @classmethod
    def from_dict(cls, data: dict) -> RungStage:
        return cls(data["record"], data.get("learning_curve"))


def _save_model(save, out: Path, name: str) -> dict:
    """The rung's fitted model under models/<name>/, written to a temporary directory first."""
    import shutil

    safe = safe_name(name)
    final, tmp = out / "models" / safe, out / "models" / f".{safe}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    meta = save(tmp)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return {"path": f"models/{safe}", **(meta or {})}


def fit_seed(rung, name: str, k: int, n: int, draw: Task, spec: RunSpec, backbone, feats, progress: Progress):
    """One run of a rung: seed ``spec.seed + k`` on the train/validation draw ``draw``."""
    from ..rungs import Context

    label = name if n == 1 else f"{name} seed {k + 1}/{n}"
    with progress.task(label) as update:
        whole = k == 0 and not on_subsample(rung, spec)  # the run's own split
        view = None if feats is None else (feats if whole else feats.view(draw))
        return rung.run(Context(draw, spec, spec.seed + k, backbone, view, update))


def first_seed_extras(
    result, rung, name: str, task: Task, spec: RunSpec, feats, out: Path, ood: dict, progress: Progress
) -> dict:
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
    if ood and not spec.ood_trained and trains_network(rung):
        result.notes.append("Not scored on the out-of-distribution sets (ood_trained is off).")
    elif ood:
        with progress.task(f"{name} on {len(ood)} out-of-distribution sets"):
            extras["ood"] = _score_ood(result, ood, task)
    if spec.learning_curve and result.refit_predict is not None:
        extras["learning_curve"] = _learning_curve(result, rung, name, task, spec, progress)
    return extras


def _learning_curve(result, rung, name: str, task: Task, spec: RunSpec, progress: Progress) -> dict | None:
    """The rung refitted on nested fractions of the training split; for a trained rung, none once
    the time limit has passed (a curve cut short would mix finished and stopped refits)."""
    from ..evaluation.learning_curve import TRAINED_FRACTIONS, learning_curve

    trained = rung.seeding == "train"  # each point is a training run: fewer sizes, one subsample
    if on_subsample(rung, spec):
        result.notes.append("No learning curve: the rung was trained on a subsample of the training split.")
        return None
    if trained and deadline.current() is not None:
        refit = result.refit_predict

        def refit_predict(idx):
            if deadline.passed():
                raise deadline.TimeLimitReached
            pred = refit(idx)
            if deadline.passed():  # the refit stopped part-way
                raise deadline.TimeLimitReached
            return pred
    else:
        refit_predict = result.refit_predict
    try:
        with progress.task(f"{name} learning curve"):
            return learning_curve(
                refit_predict,
                task.part("train")[1],
                task.part("test")[1],
                metric=spec.metric,
                target=spec.target,
                **(
                    {"seeds": 1, "fractions": TRAINED_FRACTIONS, "full_predictions": result.test_pred}
                    if trained
                    else {}
                ),
            )
    except deadline.TimeLimitReached:
        result.notes.append("No learning curve: the time limit passed before its refits were done.")
        result.chosen["learning_curve_cut"] = True
        return None


def assemble_rung(
    name: str,
    rung,
    backbone,
    results: list,
    seeds: list[int],
    notes: list[str],
    extras: dict,
    task: Task,
    progress: Progress,
) -> RungStage:
    """The rung's stage: its results.json record (all seeds) and its learning curve."""
    results[0].notes.extend(notes)
    record = _rung_record(name, rung, backbone, results, task, seeds)
    if extras.get("artifact"):
        record["artifact"] = extras["artifact"]
    if extras.get("ood") is not None:
        record["ood"] = extras["ood"]
    t = record["test"]
    sd = f" ± {t['accuracy']['sd']:.3f} over {len(seeds)} seeds" if "sd" in t["accuracy"] else ""
    progress.log(
        f"  {name}: test accuracy {t['accuracy']['mean']:.3f}{sd}, macro-F1 {t['macro_f1']['mean']:.3f} "
        f"({results[0].fit_seconds:.1f} s)"
    )
    return RungStage(record, extras.get("learning_curve"))


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
        "name": name,
        "strategy": rung.strategy,
        "backbone": backbone.name if backbone else None,
        "seeds": seeds,
        "test": test,
        "predictions": predictions,
        # validation is the first seed's draw: the one every rung shares, so rungs compare on it
        "val": evaluate(y_val, out.val_pred, task.classes, with_details=False),
        "curves": out.curves,
        "cost": {
            "fit_seconds": out.fit_seconds,
            "extract_seconds": out.extract_seconds,
            "fit_seconds_all_seeds": float(sum(r.fit_seconds for r in results)),
            "trainable_params": out.trainable_params,
            "total_params": out.total_params,
            "predict_ms_per_item": 1000 * out.predict_seconds / n_test,
            **out.cost,
        },  # a rung's own cost columns (lora: adapter_params, adapter_bytes)
        "chosen": out.chosen,
        "notes": out.notes,
        "description": rung.description,
    }


def fit_rung(
    job: RungJob,
    features: dict[str, FeatureStore],
    task: Task,
    spec: RunSpec,
    out: Path,
    progress: Progress,
    ood: dict,
    clusters: np.ndarray | None,
) -> RungStage:
    """One rung on one backbone, all its seeds, in this process."""
    from ..rungs import RUNGS

    rung, backbone, name = RUNGS.get(job.strategy)(), job.backbone, job.name
    spec = job.spec_for(spec)  # with the time limit's cuts, if any
    progress.log(f"rung [bold]{name}[/] ...")
    feats = features[backbone.name] if backbone else None
    draws, notes = seed_draws(rung, task, spec, clusters)
    results, extras, cut = [], {}, False
    for k, draw in draws:
        if k and deadline.passed():
            notes.append(f"{k} of {len(draws)} seeds: the time limit had passed before seed {spec.seed + k}.")
            draws, cut = draws[:k], True
            break
        results.append(fit_seed(rung, name, k, len(draws), draw, spec, backbone, feats, progress))
        if k == 0:
            extras = first_seed_extras(results[0], rung, name, task, spec, feats, out, ood, progress)
    stage = assemble_rung(
        name, rung, backbone, results, [spec.seed + k for k, _ in draws], notes, extras, task, progress
    )
    if cut or any(r.chosen.get("stopped_at_limit") or r.chosen.get("learning_curve_cut") for r in results):
        stage.record["stopped_at_limit"] = True  # not kept in the rung cache: more time trains it whole
    return stage


def ood_sets(task: Task, spec: RunSpec) -> dict[str, dict]:
    """Corrupted copies of a test subsample, and the user's OOD set: {name: items, y, test_idx, kind}."""
    from ..data.splits import stratified_assign
    from ..evaluation.corruptions import corrupted_sets

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
                raise DataError(
                    f"{origin}: label '{label}' of the OOD set is not a class of the training data "
                    f"({', '.join(task.classes)}). Remove the row or fix the label."
                )
        sets["ood:" + Path(spec.ood).name] = {
            "items": ds.items,
            "y": np.array([index[l] for l in ds.labels]),
            "test_positions": None,
            "kind": "user",
        }
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
        scores["drop"] = {
            m: clean[m]["mean"] - scores[m]["mean"] for m in ("accuracy", "balanced_accuracy", "macro_f1")
        }
        scores["kind"] = s["kind"]
        out[name] = scores
    return out
