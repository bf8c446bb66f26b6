"""Contract tests run over every registered entry of every registry: rungs, backbone sources, audit
checks and verdict rules. A new entry is tested by being registered (in the manner of
scikit-learn's ``parametrize_with_checks``); the parameters are read from the registries when the
tests are collected, so nothing here lists the entries by hand."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import synthetic_reviews

from transferlab.auditing import CHECKS, AuditInputs, Finding
from transferlab.auditing.base import SEVERITIES
from transferlab.backbones import Backbone, list_backbones, resolve
from transferlab.config import RunSpec
from transferlab.data import from_arrays, make_task
from transferlab.errors import ArtifactError, MissingDependencyError
from transferlab.evaluation import evaluate
from transferlab.progress import Progress
from transferlab.rungs import FITTED, ROLES, RUNGS, SEEDINGS, Context, Fitted, Rung, strategies
from transferlab.stages import CachedFeatures
from transferlab.verdicts import RULES, VerdictContext, decidable, rules  # noqa: F401  (registration)

DECLARED_FLAGS = (
    "needs_backbone",
    "needs_features",
    "trains_backbone",
    "learns_from_labels",
    "cheap",
    "in_default_ladder",
    "trained_learning_curve",
)


# --- rungs ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", RUNGS.list_())
def test_rung_declares_a_valid_role(name):
    rung = RUNGS.get(name)
    assert issubclass(rung, Rung) and rung.strategy == name, "registered under its strategy name"
    assert rung.description.strip()
    assert rung.role in ROLES and rung.seeding in SEEDINGS
    assert all(isinstance(getattr(rung, flag), bool) for flag in DECLARED_FLAGS)
    assert isinstance(rung.simplicity, int) and not isinstance(rung.simplicity, bool)
    if rung.needs_features or rung.cheap or rung.trains_backbone:
        assert rung.needs_backbone, "features, --top-k and training all concern a backbone the rung gets"
    if rung.trains_backbone:
        assert rung.role == "transfer", "a rung that trains a pretrained backbone is a transfer rung"
    if rung.trained_learning_curve:
        assert rung.seeding == "train", "the trained learning curve is for rungs whose every fit is a training run"
    assert name in strategies() and name in strategies(role=rung.role)


def test_strategies_are_simplest_first_and_refuse_unknown_attributes():
    ranks = [RUNGS.get(n).simplicity for n in strategies()]
    assert ranks == sorted(ranks) and sorted(strategies()) == RUNGS.list_()
    assert set(strategies(role="control")) | set(strategies(role="transfer")) | set(strategies(role="baseline")) == set(
        RUNGS.list_()
    )
    assert RunSpec().rungs == strategies(in_default_ladder=True)
    with pytest.raises(TypeError, match="no attribute 'colour'"):
        strategies(colour="red")


@pytest.fixture(scope="module")
def tiny_text_task():
    texts, labels = synthetic_reviews(12, seed=3)
    return make_task(from_arrays(texts, labels), seed=0)


@pytest.fixture(scope="module")
def tiny_image_task():
    """Bright squares on dark and dark squares on bright, 32 px, 12 of each."""
    rng = np.random.default_rng(3)
    images, labels = [], []
    for i in range(24):
        bright = i % 2 == 0
        img = np.full((32, 32, 3), 30 if bright else 220, dtype=np.uint8)
        x, y = rng.integers(0, 16, 2)
        img[y : y + 12, x : x + 12] = 220 if bright else 30
        images.append(img)
        labels.append("bright" if bright else "dark")
    return make_task(from_arrays(images, labels), seed=0)


def _spec(name: str) -> RunSpec:
    return RunSpec(
        rungs=[name],
        epochs=1,
        head_epochs=1,
        unfreeze_stages=1,
        patience=1,
        small_epochs=2,
        small_patience=1,
        batch_size=8,
        max_length=16,
        image_size=32,
        extract_batch_size=16,
        learning_curve_trained=True,
    )


def _fit(rung: type[Rung], task, spec: RunSpec, backbone: Backbone | None):
    """The rung fitted on ``task`` the way the runner does it: features through the runner's cache."""
    feats = CachedFeatures(backbone, task, spec, Progress(quiet=True)) if rung.needs_features else None
    return rung().run(Context(task, spec, spec.seed, backbone if rung.needs_backbone else None, feats))


def _shuffled_test_labels(task):
    test = task.indices("test")
    y = task.y.copy()
    y[test] = np.roll(y[test], 1)
    if np.array_equal(y, task.y):
        y[test] = (y[test] + 1) % len(task.classes)
    return replace(task, y=y)


def test_context_hides_the_test_labels(tiny_text_task):
    task = tiny_text_task
    seen = Context(task, _spec("majority"), 0).task
    assert (seen.part("test")[1] == -1).all() and seen.part("test")[0] == task.part("test")[0]
    for split in ("train", "val"):
        assert np.array_equal(seen.part(split)[1], task.part(split)[1])
    assert (task.part("test")[1] >= 0).all(), "the runner's own task keeps its labels"
    feats = CachedFeatures(None, task, _spec("frozen"), Progress(quiet=True))  # ctx.features, and its view for a redraw
    assert (feats.task.part("test")[1] == -1).all() and (feats.view(task).task.part("test")[1] == -1).all()


@pytest.mark.parametrize("modality", ["text", "image"])
@pytest.mark.parametrize("name", RUNGS.list_())
def test_rung_runs_on_tiny_data_and_never_sees_test_labels(name, modality, request, tmp_path):
    """Predictions of the right shape; and shuffling the test labels changes none of them, nor the
    learning-curve refits, nor the probabilities: whatever the rung reads, test labels are not in it."""
    torch.set_num_threads(1)
    rung, task, spec = RUNGS.get(name), request.getfixturevalue(f"tiny_{modality}_task"), _spec(name)
    model = {"text": "hf:{}", "image": "clip:{}"}[modality]  # a tiny CLIP: zero_shot needs a text tower
    folder = request.getfixturevalue({"text": "tiny_bert", "image": "tiny_clip"}[modality])
    backbone = resolve(model.format(folder), max_length=16, image_size=32) if rung.needs_backbone else None
    reason = rung().applies_to(backbone, spec) if backbone is not None else None
    if reason:
        pytest.skip(f"{name} does not apply to a tiny {modality} backbone: {reason}")
    rung().check_data(task, spec)
    try:
        out = _fit(rung, task, spec, backbone)
    except MissingDependencyError as exc:
        pytest.skip(str(exc))
    n_val, n_test, k = len(task.indices("val")), len(task.indices("test")), len(task.classes)
    assert np.shape(out.val_pred) == (n_val,) and np.shape(out.test_pred) == (n_test,)
    assert set(np.asarray(out.test_pred).tolist()) <= set(range(k))
    if out.test_proba is not None:
        assert out.test_proba.shape == (n_test, k) and np.allclose(out.test_proba.sum(1), 1, atol=1e-5)
    if out.predict_proba is not None:
        assert out.predict_proba(task.part("test")[0][:3]).shape == (3, k)
    if out.save is not None:
        (tmp_path / "model").mkdir()
        assert isinstance(out.save(tmp_path / "model"), dict) and (tmp_path / "model" / "model.safetensors").is_file()

    blind = _fit(rung, _shuffled_test_labels(task), spec, backbone)
    assert np.array_equal(blind.test_pred, out.test_pred) and np.array_equal(blind.val_pred, out.val_pred)
    if out.test_proba is not None:
        assert np.allclose(blind.test_proba, out.test_proba)
    if out.refit_predict is not None:
        half = np.arange(0, len(task.indices("train")), 2)  # every other training row: both classes
        assert np.array_equal(blind.refit_predict(half), out.refit_predict(half))


# a tiny random model of each kind of backbone a fitted model may hold: (name to resolve, modality);
# "image" also runs the rungs without a backbone, the others only those with one
SAVE_BACKBONES = {
    "text": (lambda f, tmp: f"hf:{f('tiny_bert')}", "text"),
    "image": (lambda f, tmp: f"torchvision:mobilenet_v3_small@{f('tiny_torchvision_weights')}", "image"),
    "clip": (lambda f, tmp: f"clip:{f('tiny_clip')}", "image"),
    "timm": (lambda f, tmp: _tiny_timm(tmp), "image"),
}


@pytest.mark.parametrize("backbone", list(SAVE_BACKBONES))
@pytest.mark.parametrize("name", RUNGS.list_())
def test_fitted_model_saves_and_loads_bit_for_bit(name, backbone, request, tmp_path):
    """Every rung returns its fitted model, whose probabilities are the run's own; saved and loaded
    again, it predicts the test items with exactly those probabilities. A model that cannot be
    saved in a loadable form says why, and loading it refuses with that reason."""
    torch.set_num_threads(1)
    rung = RUNGS.get(name)
    if backbone not in ("text", "image") and not rung.needs_backbone:
        pytest.skip(f"{name} uses no backbone: the 'image' case covers it")
    source, modality = SAVE_BACKBONES[backbone]
    task = request.getfixturevalue(f"tiny_{modality}_task")
    # batches of 2: the loaded model must batch (and so pad) the test items as the run did
    spec = replace(_spec(name), cache_dir=str(tmp_path / "cache"), extract_batch_size=2)
    resolved = (
        resolve(source(request.getfixturevalue, tmp_path), max_length=16, image_size=32)
        if rung.needs_backbone
        else None
    )
    reason = rung().applies_to(resolved, spec) if resolved is not None else None
    if reason:
        pytest.skip(f"{name} does not apply to a tiny {backbone} backbone: {reason}")
    out = _fit(rung, task, spec, resolved)
    test_items = task.part("test")[0]
    assert isinstance(out.model, Fitted) and out.model.n_classes == len(task.classes)
    assert type(out.model).kind in FITTED
    assert np.array_equal(out.model.predict_proba(test_items), out.test_proba), "the model is the one the run scored"
    folder = tmp_path / "model"
    folder.mkdir()
    meta = out.save(folder)
    assert (folder / "model.safetensors").is_file() and not [
        f for f in folder.rglob("*") if f.suffix in (".pkl", ".pt")
    ]
    why = out.model.not_exportable
    if why is not None:
        assert isinstance(why, str) and why.strip() and meta["not_exportable"] == why
        with pytest.raises(ArtifactError, match="cannot be loaded: "):
            Fitted.load(folder)
        return
    loaded = Fitted.load(folder)
    assert type(loaded).kind == type(out.model).kind and loaded is not out.model
    proba = loaded.predict_proba(test_items)
    assert proba.dtype == np.float64 and proba.shape == out.test_proba.shape
    assert np.array_equal(proba, out.test_proba), f"max difference {np.abs(proba - out.test_proba).max()}"
    if hasattr(out.model, "features"):  # the features too: saturated probabilities could hide a difference
        dense = [
            f.toarray() if hasattr(f, "toarray") else np.asarray(f)
            for f in (out.model.features(test_items), loaded.features(test_items))
        ]
        assert np.array_equal(*dense)
    assert loaded.predict_proba([]).shape == (0, len(task.classes))


# --- backbone sources -----------------------------------------------------------------------------------


def _tiny_timm(tmp_path) -> str:
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(1234)
    path = tmp_path / "test_resnet.safetensors"
    save_file({k: v.contiguous() for k, v in timm.create_model("test_resnet").state_dict().items()}, str(path))
    return f"timm:test_resnet@{path}"


TEXT = ["great taste", "awful stale box really"]
IMAGES = [np.zeros((20, 20, 3), np.uint8), np.full((20, 20), 200, np.uint8)]
# a tiny local model for each packaged source: (name to resolve, items); fixtures are looked up by name
TINY_SOURCES = {
    "hf": lambda f, tmp: (f"hf:{f('tiny_bert')}", TEXT),
    "clip": lambda f, tmp: (f"clip:{f('tiny_clip')}", IMAGES),
    "timm": lambda f, tmp: (_tiny_timm(tmp), IMAGES),
    "torchvision": lambda f, tmp: (f"torchvision:mobilenet_v3_small@{f('tiny_torchvision_weights')}", IMAGES),
}


def _meets_the_backbone_contract(b: Backbone, items: list) -> None:
    enc = b.encoder()
    with torch.inference_mode():
        feats = enc(**b.preprocess(items))
    assert feats.shape == (len(items), b.feature_dim)
    groups = b.layer_groups(enc)
    assert len(groups) >= 3  # stem, blocks, top
    ids = [id(p) for g in groups for p in g]
    assert len(ids) == len(set(ids)) and set(ids) == {id(p) for p in enc.parameters()}
    assert b.num_params() == sum(p.numel() for p in enc.parameters())
    assert b.provenance["pretrained_on"] and b.provenance["licence"] and b.modality
    assert isinstance(b.preprocessing_id(), str) and b.preprocessing_id()


@pytest.mark.parametrize("source", [s.rstrip(":") for s in list_backbones()["sources"]])
def test_backbone_source_meets_the_contract(source, request, tmp_path):
    if source not in TINY_SOURCES:
        pytest.skip(f"no tiny local model for source '{source}': add a recipe to TINY_SOURCES")
    name, items = TINY_SOURCES[source](request.getfixturevalue, tmp_path)
    b = resolve(name, image_size=32, max_length=16)
    _meets_the_backbone_contract(b, items)
    enc = b.encoder()
    scratch = b.trainable_copy(pretrained=False)  # the scratch rung: same architecture, other weights
    assert [p.shape for p in scratch.parameters()] == [p.shape for p in enc.parameters()]
    assert any(not torch.equal(a, c) for a, c in zip(scratch.parameters(), enc.parameters()))
    copy = b.trainable_copy(pretrained=True)  # a trainable copy never aliases the shared pretrained encoder
    assert all(a.data_ptr() != c.data_ptr() for a, c in zip(copy.parameters(), enc.parameters()))


@pytest.mark.integration
@pytest.mark.parametrize("name", list_backbones()["packaged"])
def test_packaged_backbone_meets_the_contract(name, spoken_words):
    try:
        b = resolve(name, image_size=64, max_length=16)
    except MissingDependencyError as exc:
        pytest.skip(str(exc))
    items = {"text": TEXT, "image": IMAGES, "audio": [str(p) for p in sorted(spoken_words.rglob("*.wav"))[:2]]}[
        b.modality
    ]
    _meets_the_backbone_contract(b, items)


# --- audit checks -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def audit_inputs():
    """A tiny text task with a copy across splits and a group shared by train and test, with every
    optional input given, so no check is skipped for want of one."""
    texts, labels = synthetic_reviews(15, seed=5)
    texts[1] = texts[0]
    n = len(texts)
    task = make_task(from_arrays(texts, labels), seed=0)
    rng = np.random.default_rng(0)
    return AuditInputs(
        task,
        features=rng.normal(size=(n, 8)).astype(np.float32),
        groups=np.arange(n) % 7,
        times=np.arange(n, dtype=float),
    )


@pytest.mark.parametrize("name", CHECKS.list_())
def test_audit_check_meets_the_contract(name, audit_inputs):
    check = CHECKS.get(name)()
    assert check.name == name and check.description.strip()
    assert set(check.requires) <= {"items", "features", "groups", "times"}
    reason = check.skip_reason(audit_inputs)
    if reason:
        pytest.skip(f"{name} does not apply to a tiny text task: {reason}")
    found = check.run(audit_inputs)
    assert isinstance(found, list) and found, "a check reports something, if only that all is well"
    for f in found:
        assert isinstance(f, Finding) and f.check == name and f.severity in SEVERITIES
        assert isinstance(f.count, int) and f.count >= 0 and f.message.strip()
        json.dumps(f.to_dict())  # results.json holds it
    if set(check.requires) - {"items"}:  # without its inputs it says why it skips
        assert check.skip_reason(AuditInputs(audit_inputs.task))


# --- verdict rules ------------------------------------------------------------------------------------------

CLASSES = ["a", "b"]
RNG = np.random.default_rng(0)
Y_TEST, Y_TRAIN, Y_VAL = RNG.integers(0, 2, 300), np.array([0] * 500 + [1] * 100), RNG.integers(0, 2, 200)
CURVES = {
    "epoch": [0, 1, 2],
    "phase": ["head warm-up", "top", "all"],
    "train_metric": [0.6, 0.9, 1.0],
    "val_metric": [0.62, 0.6, 0.5],
    "metric": "accuracy",
}


def _near(y: np.ndarray, accuracy: float | None, seed: int) -> np.ndarray:
    """Predictions right on about ``accuracy`` of ``y``; None: mostly the majority class, a few right."""
    rng = np.random.default_rng(seed)
    if accuracy is None:
        return np.where(rng.random(len(y)) < 0.9, 0, y)
    return np.where(rng.random(len(y)) < accuracy, y, 1 - y)


def _record(strategy: str, accuracy: float | None, seed: int) -> dict:
    """A results.json rung record; a baseline always predicts the training majority class."""
    rung = RUNGS.get(strategy)
    backbone = "m" if rung.needs_backbone else None
    test, val = _near(Y_TEST, accuracy, seed), _near(Y_VAL, accuracy, seed + 100)
    if rung.role == "baseline":
        test, val = np.zeros_like(Y_TEST), np.zeros_like(Y_VAL)
    return {
        "name": f"{strategy}:m" if backbone else strategy,
        "strategy": strategy,
        "backbone": backbone,
        "test": evaluate(Y_TEST, test, CLASSES),
        "val": evaluate(Y_VAL, val, CLASSES, with_details=False),
        "predictions": {"test": test.tolist(), "val": val.tolist()},
        "curves": CURVES if rung.seeding == "train" else {},
        "cost": {
            "fit_seconds": 100.0 if rung.trains_backbone else 1.0,
            "extract_seconds": 0.5,
            "predict_ms_per_item": 1.0,
        },
    }


@pytest.fixture(scope="module")
def scenarios() -> list[VerdictContext]:
    """A run of every registered rung with transfer ahead of, behind, level with the controls, and
    everything close to the majority guess; a leaky audit; and a one-class test split."""
    duplicate = {"check": "exact_duplicates", "severity": "error", "count": 3, "message": "3 copies"}
    out = []
    for i, (transfer_acc, control_acc) in enumerate(((0.95, 0.8), (0.6, 0.8), (0.8, 0.8), (None, None))):
        recs = [
            _record(s, control_acc if RUNGS.get(s).role == "control" else transfer_acc, seed)
            for seed, s in enumerate(strategies())
        ]
        if i == 1:  # transfer behind: the recipe's rate was too high, a lower one of the screen did better
            for r in recs:
                if RUNGS.get(r["strategy"]).trains_backbone:
                    r["chosen"] = {
                        "lr": 1e-5,
                        "lr_trials": [
                            {"lr": 1e-4, "factor": 1, "chosen": False, "screen_val_metric": 0.4, "val_metric": 0.4},
                            {"lr": 1e-5, "factor": 0.1, "chosen": True, "screen_val_metric": 0.7, "val_metric": 0.75},
                        ],
                    }
        out.append(
            VerdictContext(
                recs, Y_TEST, Y_TRAIN, CLASSES, "accuracy", [duplicate] if i == 1 else [], "warn", y_val=Y_VAL
            )
        )
    one_class = VerdictContext(
        [_record(s, 0.8, 7) for s in strategies()], np.zeros(300, dtype=int), Y_TRAIN, CLASSES, "accuracy", y_val=Y_VAL
    )
    return out + [one_class]


@pytest.mark.parametrize("name", RULES.list_())
def test_verdict_rule_meets_the_contract(name, scenarios):
    said = []
    for ctx in scenarios:
        names = {r["name"] for r in ctx.rungs}
        for v in RULES.get(name)(ctx):
            assert set(v) == {"code", "severity", "rungs", "message", "action", "evidence"}
            assert v["severity"] in SEVERITIES and v["code"] and v["message"].strip() and v["action"].strip()
            assert set(v["rungs"]) <= names and isinstance(v["evidence"], dict)
            json.dumps(v, default=float)  # results.json holds it
            said.append(v)
    assert said, f"rule '{name}' said nothing on any contract scenario: add one where it should speak"
