"""The run plan: every stage's time and memory predicted from timed batches, before the run pays it."""

import json

import pytest
from typer.testing import CliRunner

import transferlab
from transferlab.cli import app
from transferlab.config import RunSpec
from transferlab.progress import Progress
from transferlab.stages import clock as clock_module
from transferlab.stages import costplan, make_plan, ood_item_count, prepare_task, resolve_backbones
from transferlab.stages.clock import RunClock
from transferlab.stages.costplan import RunPlan, StagePlan

TEXT = {"text_column": "review", "label_column": "stars", "max_length": 16, "head_epochs": 2}


def _spec(tiny_bert, tmp_path, **settings):
    return RunSpec(backbones=[f"hf:{tiny_bert}"], cache_dir=str(tmp_path / "cache"), **{**TEXT, **settings})


def _plan(reviews_csv, spec, like=None):
    """The plan of ``spec``; with the measurements (probes and pace) of the plan ``like``, if given."""
    task = prepare_task(reviews_csv, spec)
    return make_plan(
        task,
        resolve_backbones(spec, task.modality),
        spec,
        probes=like.probes if like else None,
        pace=like.pace if like else None,
        ood_items=ood_item_count(task, spec),
    )


def _rung_seconds(plan):
    return {s.name: s.seconds for s in plan.stages if s.kind == "rung"}


def test_plan_grows_with_data_and_epochs(tiny_bert, reviews_csv, tmp_path):
    rungs = "majority,classical,frozen,finetune,full,scratch"
    base = _plan(reviews_csv, _spec(tiny_bert, tmp_path, rungs=rungs, max_train=20, epochs=1))
    probes = base.probes  # the same measurements for every variant: only the extrapolation differs
    more_data = _plan(reviews_csv, _spec(tiny_bert, tmp_path, rungs=rungs, epochs=1), base)
    more_epochs = _plan(reviews_csv, _spec(tiny_bert, tmp_path, rungs=rungs, max_train=20, epochs=3), base)
    for bigger in (more_data, more_epochs):
        assert bigger.total_seconds > base.total_seconds
        for name, seconds in _rung_seconds(base).items():
            assert _rung_seconds(bigger)[name] >= seconds, name
    trained = [n for n in _rung_seconds(base) if n.split(":")[0] in ("finetune", "full", "scratch")]
    assert all(_rung_seconds(more_epochs)[n] > _rung_seconds(base)[n] for n in trained)
    # a share of an epoch costs in between: 2.5 epochs train 2 and half of a third's batches
    between = _plan(reviews_csv, _spec(tiny_bert, tmp_path, rungs=rungs, max_train=20, epochs=2.5), base)
    two = _plan(reviews_csv, _spec(tiny_bert, tmp_path, rungs=rungs, max_train=20, epochs=2), base)
    assert all(_rung_seconds(two)[n] < _rung_seconds(between)[n] < _rung_seconds(more_epochs)[n] for n in trained)
    assert probes[f"hf:{tiny_bert}"].train_step > 0 and probes[f"hf:{tiny_bert}"].forward_per_item > 0


def test_each_learning_rate_screened_costs_an_epoch(tiny_bert, reviews_csv, tmp_path):
    one = _plan(reviews_csv, _spec(tiny_bert, tmp_path, rungs="full", epochs=2, lr_factors=[1.0]))
    three = _plan(reviews_csv, _spec(tiny_bert, tmp_path, rungs="full", epochs=2, lr_factors=[10.0, 1.0, 0.1]), one)
    name = f"full:hf:{tiny_bert}"
    assert three.stage(name).seconds > one.stage(name).seconds
    assert "3 rates screened" in three.stage(name).how


def test_run_records_plan_with_actuals_and_report_shows_them(tiny_bert, reviews_csv, tmp_path):
    r = transferlab.run(
        reviews_csv,
        backbones=[f"hf:{tiny_bert}"],
        rungs="majority,frozen,finetune,lora",
        lora_targets=["no_such_layer"],
        epochs=1,
        out=str(tmp_path / "run"),
        cache_dir=str(tmp_path / "cache"),
        quiet=True,
        **TEXT,
    )
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    plan = saved["plan"]
    rung_stages = [s["name"] for s in plan["stages"] if s["kind"] == "rung"]
    assert rung_stages == [rung["name"] for rung in r["rungs"]]  # every rung that ran, in order
    assert any(s.startswith(f"lora:hf:{tiny_bert}") for s in plan["skipped"])  # and the one that did not
    assert [s["name"] for s in plan["stages"][:3]] == ["audit", f"embed:hf:{tiny_bert}", "ranking"]
    for stage in plan["stages"]:
        assert stage["seconds"] >= 0 and stage["peak_bytes"] >= 0 and stage["how"]
        assert stage["actual_seconds"] >= 0, stage
    assert plan["actual_total_seconds"] > 0 and plan["total_seconds"] > 0
    assert plan["probes"][f"hf:{tiny_bert}"]["train_step"] > 0
    html = (tmp_path / "run" / "report.html").read_text()
    assert "Time: predicted and actual" in html and f"finetune:hf:{tiny_bert}" in html


def test_cli_plan_prints_a_table_and_trains_nothing(tiny_bert, reviews_csv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(
        app,
        [
            "plan",
            str(reviews_csv),
            "--text-column",
            "review",
            "--label-column",
            "stars",
            "--backbone",
            f"hf:{tiny_bert}",
            "--rungs",
            "majority,frozen,full",
            "--max-length",
            "16",
            "--epochs",
            "2",
            "--out",
            str(tmp_path / "run"),
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
    )
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0].split()[:3] == ["stage", "time", "memory"]
    for name in ("audit", "ranking", "majority", f"frozen:hf:{tiny_bert}", f"full:hf:{tiny_bert}"):
        assert any(line.startswith(name + " ") for line in lines), name
    assert any(line.startswith("total ") for line in lines) and "Predicted:" in res.stdout
    assert not (tmp_path / "run").exists() and not (tmp_path / "runs").exists()


def test_cli_plan_json(tiny_bert, reviews_csv, tmp_path):
    res = CliRunner().invoke(
        app,
        [
            "plan",
            str(reviews_csv),
            "--text-column",
            "review",
            "--label-column",
            "stars",
            "--backbone",
            f"hf:{tiny_bert}",
            "--rungs",
            "majority,scratch",
            "--max-length",
            "16",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert [s["name"] for s in data["stages"] if s["kind"] == "rung"] == ["majority", f"scratch:hf:{tiny_bert}"]
    assert data["total_seconds"] == pytest.approx(sum(s["seconds"] for s in data["stages"]), abs=0.05)


@pytest.mark.parametrize(
    "args, named",
    [
        (["--epochs", "0"], "epochs"),
        (["--rungs", "majority,lora-ish"], "lora-ish"),
        (["--label-column", "nope"], "nope"),
    ],
)
def test_cli_plan_bad_option_is_a_clear_error(reviews_csv, tmp_path, args, named):
    base = ["plan", str(reviews_csv), "--text-column", "review", "--label-column", "stars", "--rungs", "majority"]
    res = CliRunner().invoke(app, base + args)
    assert res.exit_code == 2, res.output
    assert named in res.output and "Traceback" not in res.output


class _Recorded(Progress):
    def __init__(self):
        super().__init__(quiet=True)
        self.lines = []

    def log(self, message):
        self.lines.append(message)


def test_clock_shows_stage_k_of_n_and_corrects_remaining_time():
    plan = RunPlan(
        [StagePlan("audit", 10.0, 0, "x", "audit"), StagePlan("a", 10.0, 0, "x"), StagePlan("b", 30.0, 0, "x")]
    )
    progress = _Recorded()
    clock = RunClock(plan, progress)
    assert clock.remaining(set()) == pytest.approx(50.0)
    with clock.stage("audit"):
        assert progress.prefix == "[1/3] "
    assert progress.prefix == ""
    clock.actual["audit"] = 20.0  # the first stage took twice its prediction: the rest is scaled alike
    assert clock.remaining({"audit"}) == pytest.approx(80.0)
    with clock.stage("a"):
        pass
    assert progress.lines[0].startswith("[dim]stage 1 of 3: audit") and "remaining" in progress.lines[0]
    assert "stage 2 of 3: a" in progress.lines[1] and "remaining ~1.3 min" in progress.lines[1]
    record = clock.record()
    assert record["stages"][0]["actual_seconds"] == 20.0 and "actual_seconds" not in record["stages"][2]


def test_out_of_distribution_items_are_embedded_once_per_backbone(tiny_bert, reviews_csv, tmp_path):
    plan = _plan(reviews_csv, _spec(tiny_bert, tmp_path, rungs="zero_shot,frozen,full", epochs=1))
    how = {s.name.split(":")[0]: s.how for s in plan.stages if s.kind == "rung"}
    assert "out-of-distribution" in how["zero_shot"]  # embeds the corrupted copies; the cache keeps them
    assert "out-of-distribution" not in how["frozen"]  # reads them back
    assert "out-of-distribution" in how["full"]  # predicts through its own trained copy
    no_ood = _plan(
        reviews_csv, _spec(tiny_bert, tmp_path, rungs="zero_shot,frozen,full", epochs=1, corruptions=False), plan
    )
    assert no_ood.total_seconds < plan.total_seconds


def test_after_the_ranking_the_rung_stages_are_those_of_the_jobs_that_run(tiny_bert, reviews_csv, tmp_path):
    """With --top-k the plan is made before the ranking picks which backbones train; once it has,
    the rung stages are re-planned from the same probes, and every candidate was probed for training."""
    from transferlab.stages import plan_rungs, replan_rungs

    spec = _spec(tiny_bert, tmp_path, rungs="majority,frozen,full", top_k=1, epochs=1)
    task = prepare_task(reviews_csv, spec)
    backbones = resolve_backbones(spec, task.modality)
    plan = make_plan(task, backbones, spec, ood_items=0)
    assert plan.probes[f"hf:{tiny_bert}"].train_step > 0
    before = [s.name for s in plan.stages if s.kind != "rung"]
    other = _spec(tiny_bert, tmp_path, rungs="majority,frozen", top_k=1, epochs=1)
    jobs = plan_rungs(other, backbones, task, Progress(quiet=True), False)
    replan_rungs(plan, jobs, task, other)
    assert [s.name for s in plan.stages if s.kind != "rung"] == before
    assert [s.name for s in plan.stages if s.kind == "rung"] == [j.name for j in jobs]
    assert f"full:hf:{tiny_bert}" not in [s.name for s in plan.stages]


def test_the_run_replans_from_the_speed_its_embedding_measured(tiny_bert, reviews_csv, tmp_path, monkeypatch):
    """A probe that caught the machine 10x slower than the run found it: once the embedding has
    been timed on every item, inference runs at the measured speed, and training steps speed up
    by as much as the embedding can say of them (``TRAIN_FASTER_AT_MOST``)."""
    import dataclasses

    import transferlab.training.probe as probe_module

    real = probe_module.probe_backbone
    measured: dict = {}  # one measurement for the run and the plan it is compared with

    def pessimistic(*args, **kwargs):
        if "t" not in measured:
            t = real(*args, **kwargs)
            measured["t"] = dataclasses.replace(
                t,
                forward_per_item=t.forward_per_item * 10,
                train_step=t.train_step * 10,
                train_forward=t.train_forward * 10,
                train_first_step=(t.train_first_step or t.train_step) * 10,
            )
        return measured["t"]

    monkeypatch.setattr(probe_module, "probe_backbone", pessimistic)
    r = transferlab.run(
        reviews_csv,
        backbones=[f"hf:{tiny_bert}"],
        rungs="majority,frozen,full",
        epochs=1,
        lr_factors=[1.0],
        out=str(tmp_path / "run"),
        cache_dir=str(tmp_path / "cache"),
        quiet=True,
        **TEXT,
    )
    plan = r["plan"]
    name = f"hf:{tiny_bert}"
    assert 0.05 <= plan["recalibrated"][name] < 0.4  # about 1/10, however busy the machine is
    first = _plan(reviews_csv, _spec(tiny_bert, tmp_path, rungs="majority,frozen,full", epochs=1, lr_factors=[1.0]))
    pessimistic_full = first.stage(f"full:{name}").seconds
    replanned = next(s for s in plan["stages"] if s["name"] == f"full:{name}")
    overhead = costplan.PER_FIT_OVERHEAD  # one seed's scoring, the same at any speed
    bound = clock_module.TRAIN_FASTER_AT_MOST
    assert replanned["seconds"] - overhead < (bound + 0.05) * (pessimistic_full - overhead)  # planned again
    probed, kept = first.probes[name], plan["probes"][name]
    assert kept["forward_per_item"] < 0.4 * probed.forward_per_item  # the embedding's own speed
    assert kept["train_step"] == pytest.approx(bound * probed.train_step, rel=0.3)  # the probe's speed-up, bounded


def test_the_cheap_stages_follow_the_pace_measured_today(tiny_bert, reviews_csv, tmp_path):
    """The cheap stages' per-item rates scale by how fast this machine ran each kind of cheap work
    when the plan was made; the stages priced by a backbone's timing do not."""
    from transferlab.stages.pace import CheapPace

    rungs = "majority,classical,scratch_small,frozen,full"
    spec = _spec(tiny_bert, tmp_path, rungs=rungs, epochs=1, seeds=1, train_seeds=1)
    base = _plan(reviews_csv, spec)
    assert set(base.to_dict()["pace"]) == {
        "numeric",
        "dense",
        "tfidf",
        "small",
        "features_per_item",
        "image_search",
        "small_epoch",
        "seconds",
    }
    assert base.pace.features_per_item is None  # text: TF-IDF is learnt inside the fit, nothing apart
    task = prepare_task(reviews_csv, spec)
    backbones = resolve_backbones(spec, task.modality)

    def plan(numeric, dense, tfidf, small):
        pace = CheapPace(numeric=numeric, dense=dense, tfidf=tfidf, small=small)
        return make_plan(task, backbones, spec, probes=base.probes, pace=pace, ood_items=0)

    one, slow = plan(1.0, 1.0, 1.0, 1.0), plan(2.0, 2.5, 1.5, 3.0)
    name = f"hf:{tiny_bert}"
    overhead = costplan.PER_FIT_OVERHEAD  # the seed's scoring: not a per-item rate
    # the text fit (TF-IDF and its sparse rows) at its own pace, embeddings at the dense one
    for rung, factor in (("classical", 1.5), ("frozen:" + name, 2.5), ("scratch_small", 3.0)):
        assert slow.stage(rung).seconds - overhead == pytest.approx(factor * (one.stage(rung).seconds - overhead))
        assert "pace today" in slow.stage(rung).how and "pace today" not in one.stage(rung).how
    assert slow.stage(f"full:{name}").seconds == pytest.approx(one.stage(f"full:{name}").seconds)
    checks = costplan.AUDIT_PER_ITEM["text"] * len(task.items)  # the audit's checks: its embedding is measured
    assert slow.stage("audit").seconds - one.stage("audit").seconds == pytest.approx(checks)


def test_pace_times_each_kind_of_cheap_work_it_is_asked_for(image_folder):
    """The numeric work always; the small model's and the hand-made features' only when the run
    has the rung; the features on the user's own images, in seconds per image."""
    from transferlab.data import load_data
    from transferlab.stages.pace import FACTOR_RANGE, measure_pace

    items = load_data(image_folder).items
    pace = measure_pace("image", items, small=True, features=True)
    assert all(FACTOR_RANGE[0] <= f <= FACTOR_RANGE[1] for f in (pace.numeric, pace.dense))
    assert 0 < pace.features_per_item < 1 and pace.seconds > 0
    assert pace.tfidf == 1.0  # the text fit: timed for text only
    assert pace.small == 1.0 and pace.small_epoch["items"] == len(items)  # images: the user's own CNN, timed
    bare = measure_pace("image", items, small=False, features=False)
    assert bare.small == 1.0 and bare.features_per_item is None and bare.small_epoch is None
    assert FACTOR_RANGE[0] <= measure_pace("text", ["a review"], features=False).small <= FACTOR_RANGE[1]
    text = measure_pace("text", ["a review"], small=False, features=True)  # the classical rung on text
    assert text.tfidf != 1.0 and FACTOR_RANGE[0] <= text.tfidf <= FACTOR_RANGE[1] and text.features_per_item is None
    assert measure_pace("text", ["a review"], small=False, features=False).tfidf == 1.0


def test_the_image_audit_is_priced_by_the_candidate_pairs_of_a_sample_of_the_users_images():
    """On look-alike images (scikit-learn's digits) the hash search proposes candidates for every
    share of pairs, so their confirmation grows with the square of the images: the plan takes that
    share from a sample of the user's images, whose decoding and hashing it times."""
    import numpy as np
    from sklearn.datasets import load_digits

    from transferlab.auditing.matching import Matcher
    from transferlab.auditing.matching import images as im
    from transferlab.auditing.matching.hamming import hamming_join
    from transferlab.data import from_arrays, make_task
    from transferlab.stages.pace import CheapPace, measure_pace

    d = load_digits()
    images, labels = [(x * 16).clip(0, 255).astype(np.uint8) for x in d.images], [str(t) for t in d.target]
    search = measure_pace("image", images, small=False, features=False, audit_items=images).image_search
    assert 2 <= search["images"] <= 400 and 0 < search["per_image"] < 0.1
    assert measure_pace("image", images, small=False, features=False).image_search is None  # no audit
    _, phash, _ = im.signatures(images)  # every pair of the 1,797 digits, for the true share
    q, other, _ = hamming_join(phash.ravel(), phash[:, 0], Matcher.image_phash_bits)
    share = np.count_nonzero(q // phash.shape[1] != other) / (len(images) * (len(images) - 1))
    assert share > 0.001 and 0.5 * share < search["hit_share"] < 2 * share

    spec = RunSpec(rungs=["majority"])
    sample = {"images": 400, "per_image": 1e-3, "hit_share": 0.01}

    def audit(n, pace):
        task = make_task(from_arrays(images[:n], labels[:n], modality="image"))
        return make_plan(task, [], spec, probes={}, pace=pace).stage("audit")

    small, large = audit(800, CheapPace(image_search=sample)), audit(1600, CheapPace(image_search=sample))
    hits = 0.01 * (1600 * 1599 - 2 * 800 * 799)  # what doubling the images adds beyond twice the work
    assert large.seconds - 2 * small.seconds == pytest.approx(costplan.AUDIT_CONFIRM_PER_HIT * hits)
    assert "25,584 candidate pairs" in large.how and "measured on 400" in large.how
    per_item = audit(800, CheapPace())  # nothing sampled (the pace was given): the per-image rate
    assert per_item.seconds == pytest.approx(costplan.AUDIT_PER_ITEM["image"] * 800)


def test_text_out_of_distribution_items_are_counted_at_the_training_length(tiny_bert, reviews_csv, tmp_path):
    """The corrupted copies of reviews embed in time about proportional to their padded length:
    truncated to half their words, they count for less than whole training reviews."""
    from transferlab.stages.oodcount import _length_share

    spec = _spec(tiny_bert, tmp_path, rungs="frozen", epochs=1)
    task = prepare_task(reviews_csv, spec)
    backbones = resolve_backbones(spec, task.modality)
    counted = ood_item_count(task, spec)  # from the settings: every item whole
    weighted = ood_item_count(task, spec, backbones=backbones)
    assert 0.4 * counted < weighted < counted
    train = task.part("train")[0]
    assert _length_share(backbones[0], task, train) == pytest.approx(1.0, rel=0.05)
    halves = [" ".join(t.split()[: max(1, len(t.split()) // 2)]) for t in train]
    assert _length_share(backbones[0], task, halves) < 0.8
    assert ood_item_count(task, spec, ood={}, backbones=backbones) == 0


def test_the_small_cnn_is_planned_from_itself_timed_on_the_users_images():
    """For images the plan times the small CNN scratch_small would build for this data (its width
    from the training set's size, its input from the images: scikit-learn's 8-pixel digits are
    grey and come up to the 16-pixel floor), on the user's own images; the stage is its decoding,
    the expected epochs and the predictions, and it may take up to all of small_epochs."""
    from types import SimpleNamespace

    import numpy as np
    from sklearn.datasets import load_digits

    from transferlab.data import from_arrays, make_task
    from transferlab.rungs.small_models import cnn_width
    from transferlab.stages.pace import measure_pace

    d = load_digits()
    images, labels = [(x * 16).clip(0, 255).astype(np.uint8) for x in d.images], [str(t) for t in d.target]
    task = make_task(from_arrays(images, labels, modality="image"))
    train = task.part("train")[0]
    pace = measure_pace("image", train, small=True, features=False, n_classes=10, batch_size=16)
    timed = pace.small_epoch
    assert timed["input"] == [1, 16, 16] and timed["width"] == cnn_width(len(train)) and timed["items"] == 32
    assert timed["training_reads"] == 2
    assert all(0 < timed[k] < 0.05 for k in ("forward_per_item", "per_item_epoch", "encode_per_item"))

    spec = RunSpec(rungs=["scratch_small"], audit=False, seeds=1, train_seeds=1, learning_curve=False)
    stage = make_plan(task, [], spec, probes={}, pace=pace).stage("scratch_small")
    n_train, n_val, n_test = (len(task.part(s)[1]) for s in ("train", "val", "test"))
    epochs = costplan.small_epochs_expected(task, spec)
    assert epochs == pytest.approx(costplan.SMALL_CNN_EPOCH_SHARE * spec.small_epochs)
    one = (
        timed["encode_per_item"] * (2 * n_train + n_val + n_test)  # a training image is read twice
        + timed["per_item_epoch"] * n_train * epochs
        + timed["forward_per_item"] * (n_val + n_test)
    )
    assert stage.seconds == pytest.approx(one + costplan.PER_FIT_OVERHEAD)
    assert stage.upto - stage.seconds == pytest.approx(timed["per_item_epoch"] * n_train * (spec.small_epochs - epochs))
    assert "small CNN (width 32, input 1x16x16)" in stage.how and f"of up to {spec.small_epochs}" in stage.how
    text = RunSpec(rungs=["scratch_small"], small_epochs=60, small_patience=15)
    assert costplan.small_epochs_expected(SimpleNamespace(modality="text"), text) == 30  # it peaks early
