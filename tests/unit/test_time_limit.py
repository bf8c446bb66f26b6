"""--time-limit: the costly rungs are cut in a documented order to fit, a rung still training at
its deadline stops keeping its best epoch, and the run still writes a complete report."""

import json
import math
import time

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import transferlab
from transferlab.cli import app
from transferlab.config import RunSpec
from transferlab.errors import ConfigError
from transferlab.stages import RungJob, rung_key
from transferlab.stages import clock as clock_module
from transferlab.stages import costplan as costplan_module
from transferlab.stages import timelimit as timelimit_module
from transferlab.stages.costplan import StagePlan
from transferlab.stages.plan import trained_subsample
from transferlab.stages.timelimit import cut_steps, fit_to_limit, summary
from transferlab.training import LoopConfig, fit_epochs
from transferlab.training.deadline import deadline
from transferlab.training.schedule import ParamGroup

pytestmark = pytest.mark.real_pace  # runs under a limit plan as a user's do: timing this machine's pace

TEXT = {"text_column": "review", "label_column": "stars", "max_length": 16, "head_epochs": 2}


@pytest.mark.parametrize(
    "value, seconds", [(90, 90.0), ("90", 90.0), ("90s", 90.0), ("30m", 1800.0), ("1h30m", 5400.0)]
)
def test_time_limit_reads_seconds_and_units(value, seconds):
    assert RunSpec(time_limit=value).limit_seconds() == seconds


@pytest.mark.parametrize("value", ["30x", "-5", 0, "1h1h", True])
def test_a_bad_time_limit_says_what_is_expected(value):
    with pytest.raises(ConfigError, match="'time_limit' setting must be a duration.*30m"):
        RunSpec(time_limit=value)


def test_cli_rejects_a_bad_time_limit_without_a_traceback(tmp_path):
    result = CliRunner().invoke(app, ["plan", str(tmp_path), "--time-limit", "soon"])
    assert result.exit_code == 2 and "time_limit" in result.output and "Traceback" not in result.output


# --- the order of the cuts ------------------------------------------------------------------------
class _Backbone:
    def __init__(self, name):
        self.name = name


def _fake_plan(jobs):
    """Seconds of a trained rung: proportional to what each cut reduces (full costs twice finetune)."""
    out = []
    for job in jobs:
        s = dict(job.overrides)
        seconds = (
            (2.0 if job.strategy == "full" else 1.0)
            * s.get("epochs", 10)
            * len(s.get("lr_factors", [10, 1, 0.1]))
            * s.get("trained_fraction", 1.0)
            * s.get("train_seeds", 2)
            * (1.75 if s.get("learning_curve_trained", True) else 1.0)
        )
        out.append(StagePlan(job.name, seconds, 0, ""))
    return out


def test_cuts_come_in_the_documented_order_and_stop_once_it_fits():
    spec = RunSpec(epochs=10, train_seeds=2, learning_curve_trained=True)
    bb = _Backbone("b")
    jobs = [RungJob("classical"), RungJob("frozen", bb), RungJob("finetune", bb), RungJob("full", bb)]
    order = [what for what, _ in cut_steps(spec)]
    assert order[0].startswith("no learning-curve") and order[1] == "1 seed instead of 2"
    assert order[2] == "no out-of-distribution scores for the trained rungs"
    assert order.index("the recipe's learning rate only, no screen of 3") > order.index("3 epochs instead of 10")
    assert order.index("trained on 50% of the training split") > order.index(
        "the recipe's learning rate only, no screen of 3"
    )
    full_cost = sum(s.seconds for s in _fake_plan(jobs[2:]))
    assert fit_to_limit(jobs, spec, full_cost + 1, _fake_plan).cuts == []
    previous: list[str] = []
    for available in (full_cost * 0.9, full_cost * 0.4, 20.0, 3.0, 0.2, 0.05):
        fitted = fit_to_limit(jobs, spec, available, _fake_plan)
        if len(fitted.skipped) == 2:  # no trained rung left: no cuts to describe
            assert fitted.cuts == [] and fitted.overrides == {}
            continue
        assert len(fitted.cuts) >= len(previous)
        previous = fitted.cuts
        assert sum(fitted.planned.values()) <= available
        assert [j.name for j in fitted.jobs][:2] == ["classical", "frozen:b"]  # the cheap rungs always run
        assert all(dict(j.overrides) == fitted.overrides for j in fitted.jobs if j.strategy in ("finetune", "full"))
    assert list(fit_to_limit(jobs, spec, 0.2, _fake_plan).skipped) == ["full:b"]  # the costliest first
    fitted = fit_to_limit(jobs, spec, 0.05, _fake_plan)
    assert list(fitted.skipped) == ["full:b", "finetune:b"]
    assert "time limit" in fitted.skipped["full:b"] and [j.name for j in fitted.jobs] == ["classical", "frozen:b"]
    squeezed = fit_to_limit(jobs, spec, 0.3 * full_cost / 70, _fake_plan)  # fits once the subsample is cut
    assert squeezed.overrides["lr_factors"] == [1.0]
    assert "trained_fraction" in squeezed.overrides and not squeezed.skipped
    # the last cut gives back what still fits: 9 x share <= 1.35 -> 14% of the data, not the 10% step;
    # then a share of a 4th epoch fills the rest: 3 x 0.14 x 3.2 = 1.344
    assert squeezed.overrides["trained_fraction"] == 0.14 and "trained on 14% of the training split" in squeezed.cuts
    assert squeezed.overrides["epochs"] == 3.2 and "3.2 epochs instead of 10" in squeezed.cuts
    assert 0.99 * 1.35 <= sum(squeezed.planned.values()) <= 1.35
    late = fit_to_limit(jobs, spec, 0.5, _fake_plan)  # fits only at 1 epoch; then 16% of the data still fits
    assert late.overrides["epochs"] == 1 and late.overrides["trained_fraction"] == 0.16
    assert "trained on 16% of the training split" in late.cuts and "1 epoch instead of 10" in late.cuts
    spare = fit_to_limit(jobs, spec, 9 * 8, _fake_plan)  # the step to 7 epochs fits; so does 8 (9 x 8)
    assert spare.overrides["epochs"] == 8 and spare.cuts[-1] == "8 epochs instead of 10"


def test_a_cut_made_on_the_way_is_undone_when_the_plan_fits_without_it():
    """Out-of-distribution scores (1 s a rung) are cut before epochs (1 s an epoch for finetune, 2
    for full); once 7 epochs fit, the scores come back wherever the time left holds them."""

    def plan(jobs):
        out = []
        for job in jobs:
            s = dict(job.overrides)
            per_epoch = 2.0 if job.strategy == "full" else 1.0
            seconds = per_epoch * s.get("epochs", 10) + (1.0 if s.get("ood_trained", True) else 0.0)
            out.append(StagePlan(job.name, seconds, 0, ""))
        return out

    spec = RunSpec(epochs=10, train_seeds=1, learning_curve_trained=False, lr_factors=[1.0])
    bb = _Backbone("b")
    jobs = [RungJob("classical"), RungJob("finetune", bb), RungJob("full", bb)]
    # 7 epochs (21 s) fit, with the scores (23 s) not; then 0.3 of an 8th epoch (21.9 s) fills the rest
    tight = fit_to_limit(jobs, spec, 22.0, plan)
    assert tight.overrides == {"ood_trained": False, "epochs": 7.3}
    assert tight.cuts == ["no out-of-distribution scores for the trained rungs", "7.3 epochs instead of 10"]
    roomy = fit_to_limit(jobs, spec, 23.5, plan)  # 8 epochs (24 s) do not fit; the scores do, then 0.1 epoch
    assert roomy.overrides == {"epochs": 7.1} and roomy.cuts == ["7.1 epochs instead of 10"]
    assert sum(roomy.planned.values()) == pytest.approx(23.3)
    whole = fit_to_limit(jobs, spec, 31.0, plan)  # every epoch fits without the scores (30 s), not with them (32 s)
    assert whole.overrides == {"ood_trained": False} and whole.cuts == [
        "no out-of-distribution scores for the trained rungs"
    ]


# --- the loop stops at its deadline -----------------------------------------------------------------
def test_the_loop_stops_at_the_deadline_and_keeps_its_best_epoch():
    torch.manual_seed(0)
    x = torch.randn(400, 8)
    y = (x[:, 0] > 0).long().numpy()
    model = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 2))

    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = model

        def forward(self, features):
            return self.net(features)

    wrapped = Wrap()
    batch = lambda idx, train: {"features": x[list(idx)]}  # noqa: E731
    cfg = LoopConfig(epochs=100_000, patience=100_000, batch_size=16)
    groups = [ParamGroup("all", list(wrapped.parameters()), 1e-3)]
    train, val = (list(range(64)), y[:64]), (list(range(300, 400)), y[300:])
    list(fit_epochs(wrapped, batch, train, val, groups, LoopConfig(epochs=1)))  # first-call setup, untimed
    start = time.time()
    with deadline(start + 1.0):
        runs = list(fit_epochs(wrapped, batch, train, val, groups, cfg))
    took = time.time() - start
    result = runs[-1]
    assert result.stopped_at_limit and 1.0 <= took < 3.0
    assert 2 <= len(result.curves["epoch"]) < 100_000
    assert result.best_val == max(result.curves["val_metric"])
    with torch.inference_mode():  # the restored weights are the best epoch's
        val_acc = float((wrapped(x[300:]).argmax(1).numpy() == y[300:]).mean())
    assert val_acc == pytest.approx(result.best_val)


def test_a_deadline_in_the_first_epoch_still_scores_what_was_trained():
    x = torch.randn(64, 4)
    y = np.arange(64) % 2

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 2)

        def forward(self, features):
            return self.lin(features)

    m = M()
    with deadline(time.time() - 1):  # already passed: one step, then the epoch is scored
        runs = list(
            fit_epochs(
                m,
                lambda idx, train: {"features": x[list(idx)]},
                (list(range(48)), y[:48]),
                (list(range(48, 64)), y[48:]),
                [ParamGroup("all", list(m.parameters()), 1e-3)],
                LoopConfig(epochs=5, batch_size=4),
            )
        )
    assert runs[-1].stopped_at_limit and runs[-1].curves["epoch"] == [1]
    assert "stopped at the time limit" in runs[-1].curves["phase"][0]


def _timed_fit(step_seconds: float, epochs: float, seconds: float, fill: float | None):
    """A tiny model whose training steps take ``step_seconds`` (a sleep in the batch), 10 steps an
    epoch, under a deadline ``seconds`` away: (the last result, the seconds it took)."""
    from transferlab.training.deadline import filling

    x = torch.randn(200, 4)
    y = (x[:, 0] > 0).long().numpy()
    m = nn.Linear(4, 2)
    wrapped = nn.Sequential()
    wrapped.forward = lambda features: m(features)
    wrapped.add_module("m", m)

    def batch(idx, train):
        if train:
            time.sleep(step_seconds)
        return {"features": x[list(idx)]}

    cfg = LoopConfig(epochs=epochs, batch_size=16, patience=1000, fill_epochs=fill)
    groups = [ParamGroup("all", list(m.parameters()), 1e-2)]
    train, val = (list(range(160)), y[:160]), (list(range(160, 200)), y[160:])
    list(fit_epochs(wrapped, lambda idx, _: {"features": x[list(idx)]}, train, val, groups, LoopConfig(epochs=1)))
    start = time.time()  # (the first fit of a process pays its set-up: untimed above)
    with deadline(start + seconds), filling(fill):
        runs = list(fit_epochs(wrapped, batch, train, val, groups, cfg))
    return runs[-1], time.time() - start


def test_a_run_that_trains_once_refills_its_steps_to_end_at_its_deadline():
    """Planned at 2 epochs (20 steps of 20 ms, 0.4 s) with 2 s to its deadline: it re-plans from the
    speed it measures and trains about 4 epochs more, ending its schedule before the deadline; at 50
    ms a step with 10 epochs planned (5 s) it trains fewer steps and still ends them whole."""
    faster, took = _timed_fit(0.02, 2, 2.0, fill=10)
    assert faster.planned_steps == 20 and 40 <= faster.steps <= 100 and not faster.stopped_at_limit
    assert took <= 2.25 and len(faster.curves["epoch"]) == math.ceil(faster.steps / 10)
    assert not any("batches" in p for p in faster.curves["phase"][:-1])  # only the last epoch may be partial
    slower, took = _timed_fit(0.05, 10, 2.0, fill=10)
    assert slower.planned_steps == 100 and 10 <= slower.steps < 40 and took <= 2.3
    unfilled, took = _timed_fit(0.02, 2, 2.0, fill=None)  # without filling: the steps as planned
    assert unfilled.steps == unfilled.planned_steps == 20 and took < 1.5
    # planned at one epoch (a tight limit leaves many rungs one): it re-plans within that epoch,
    # before any validation pass has been timed, and still ends its schedule before the deadline
    single, took = _timed_fit(0.02, 1, 2.0, fill=10)
    assert single.planned_steps == 10 and 40 <= single.steps <= 100 and not single.stopped_at_limit
    assert took <= 2.25


def test_the_report_says_how_far_each_rung_re_planned_its_epochs():
    spec = RunSpec(epochs=10, time_limit="8m")
    plan = {"time_limit": {"cuts": ["3 epochs instead of 10"], "settings": {"epochs": 3}}}
    curves = {"epoch": [1, 2, 3, 4, 5], "val_metric": [0.1, 0.2, 0.3, 0.4, 0.5], "best_epoch": 5}
    rungs = [
        {"name": "full:b", "chosen": {"steps": {"planned": 300, "replanned": 490, "trained": 470}}, "curves": curves},
        {"name": "scratch:b", "chosen": {}, "curves": curves},
    ]
    lines = summary(spec, plan, rungs, {}, 470.0)
    assert "Planned at 3 epochs, these re-planned their steps" in lines[1] and "full:b 4.9 epochs." in lines[1]
    assert "so the cut from 10 epochs likely cost them accuracy: full:b, scratch:b." in lines[2]


def test_the_small_control_gets_a_deadline_at_its_share_of_the_time_left():
    """scratch_small trains a network to early stopping, and on a machine that slowed it ran 1.75x
    its plan past the limit: it gets its planned share of the time left among every rung still to
    run, less its predictions; a logistic regression (frozen) runs whole, without a deadline."""
    from transferlab.stages.timelimit import Fit, RungDeadlines, reserve

    fitted = Fit(jobs=[], cuts=[], overrides={}, skipped={}, planned={"full:b": 200.0}, available=0.0)
    started = time.time() - 100  # 100 s of the 600 already spent
    cheap = {"scratch_small": 100.0, "frozen:b": 100.0}
    limits = RungDeadlines(600, started, fitted, {"scratch_small": 2.0}, RunSpec(), cheap)
    at, now = limits.deadline_for(RungJob("scratch_small")), time.time()
    assert at - now == pytest.approx((started + 600 - reserve(600) - now) * 100 / 400 - 2.0, abs=0.05)
    assert limits.deadline_for(RungJob("majority")) is None and limits.fill_epochs(RungJob("scratch_small")) is None
    with limits.rung(RungJob("scratch_small")):
        pass
    assert "scratch_small" in limits.done


def test_nested_deadlines_keep_the_earlier():
    from transferlab.training import deadline as d

    with d.deadline(100.0):
        with d.deadline(200.0):
            assert d.current() == 100.0
        with d.deadline(50.0):
            assert d.current() == 50.0
    assert d.current() is None


# --- the subsample and the key ------------------------------------------------------------------------
def test_trained_subsample_is_stratified_and_keeps_validation_and_test_whole(reviews_csv):
    from transferlab.stages import prepare_task

    task = prepare_task(reviews_csv, RunSpec(**TEXT))
    sub = trained_subsample(task, 0.25, seed=0)
    for split in ("val", "test"):
        assert sub.part_hashes(split) == task.part_hashes(split)
    y_all, y_sub = task.part("train")[1], sub.part("train")[1]
    for label in np.unique(y_all):
        assert (y_sub == label).sum() == max(2, round((y_all == label).sum() * 0.25))
    assert set(sub.part_hashes("train")) < set(task.part_hashes("train"))


def test_a_cut_setting_changes_the_rung_key_and_nothing_else(tiny_bert, reviews_csv, tmp_path):
    from transferlab.stages import prepare_task, resolve_backbones

    spec = RunSpec(backbones=[f"hf:{tiny_bert}"], rungs="frozen,full", **TEXT)
    task = prepare_task(reviews_csv, spec)
    bb = resolve_backbones(spec, task.modality)[0]
    key = lambda job: rung_key(job, task, spec, None, "ood")  # noqa: E731
    full = RungJob("full", bb)
    assert key(full) == key(RungJob("full", bb, overrides=()))
    assert key(full) != key(RungJob("full", bb, overrides=(("epochs", 3),)))
    assert key(full) != key(RungJob("full", bb, overrides=(("trained_fraction", 0.5),)))
    assert key(RungJob("frozen", bb)) == key(RungJob("frozen", bb, overrides=(("epochs", 3),)))


# --- whole runs ---------------------------------------------------------------------------------------
def _common(tiny_bert, tmp_path):
    return dict(
        backbones=[f"hf:{tiny_bert}"],
        rungs="majority,classical,frozen,finetune,full",
        epochs=300,
        patience=300,
        learning_curve=False,  # the cheap rungs' refits: seconds a loaded machine can stretch past the limit
        out=str(tmp_path / "run"),
        **TEXT,
    )


def test_a_run_fits_its_limit_by_cutting_epochs_and_says_so(tiny_bert, reviews_csv, tmp_path, monkeypatch):
    monkeypatch.setattr(clock_module, "RETIME_SHARE", 0.5)  # 20 s is too short to spend 10% re-timing, by default
    limit = 20.0
    start = time.time()
    # more epochs than fit (about 5 s a rung for 300 on an idle machine), so the plan must cut them
    settings = {**_common(tiny_bert, tmp_path), "epochs": 1000, "patience": 1000}
    r = transferlab.run(reviews_csv, time_limit=limit, quiet=True, **settings)
    took = time.time() - start
    assert took <= limit * 1.05, took
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    cut = saved["plan"]["time_limit"]
    assert cut["settings"]["epochs"] < 1000 and any("epochs instead of 1000" in c for c in cut["cuts"])
    names = [rung["name"] for rung in r["rungs"]]
    assert names[:3] == ["majority", "classical", f"frozen:hf:{tiny_bert}"]  # cheap first, all of them
    for rung in r["rungs"][3:]:
        if "steps" in rung["chosen"]:  # it re-planned its steps from their speed: within the epochs asked for
            assert (
                rung["chosen"]["steps"]["trained"]
                <= 1000 * rung["chosen"]["steps"]["planned"] / cut["settings"]["epochs"]
            )
        else:
            assert len(rung["curves"]["epoch"]) <= math.ceil(cut["settings"]["epochs"]) + 1  # finetune adds its epoch 0
    assert any("time limit of 20.0 s" in note for note in saved["notes"])
    assert "Run under a time limit" in (tmp_path / "run" / "report.html").read_text()
    # the plan wanted more than the time left: the training step was timed again before the cuts
    retimed = saved["plan"]["retimed"]
    assert list(retimed) == [f"hf:{tiny_bert}"] and retimed[f"hf:{tiny_bert}"] > 0
    assert saved["plan"]["probes"][f"hf:{tiny_bert}"]["train_step"] > 0


def test_a_rung_still_training_at_its_deadline_stops_and_is_not_cached(tiny_bert, reviews_csv, tmp_path, monkeypatch):
    # the plan believes training is nearly free, so nothing is cut and the deadlines must stop it
    real = costplan_module._trained_seed

    def optimistic(rung, job, task, spec, t):
        seconds, peak, how = real(rung, job, task, spec, t)
        return seconds / 1000, peak, how

    monkeypatch.setattr(costplan_module, "_trained_seed", optimistic)
    # as a rung that trains several times (seeds, refits) does, the rungs keep their planned steps
    monkeypatch.setattr(timelimit_module.RungDeadlines, "fill_epochs", lambda self, job: None)
    limit = 25.0
    start = time.time()
    # more epochs than a warm process trains in the time left, so the deadline, not the epochs, ends them
    endless = {**_common(tiny_bert, tmp_path), "epochs": 5000, "patience": 5000}
    r = transferlab.run(reviews_csv, time_limit=limit, quiet=True, **endless)
    took = time.time() - start
    assert took <= limit * 1.05, took
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["plan"]["time_limit"]["cuts"] == []
    stopped = [rung for rung in r["rungs"] if rung.get("stopped_at_limit")]
    assert {rung["strategy"] for rung in stopped} == {"finetune", "full"}
    for rung in stopped:
        assert any("Stopped at the time limit" in n or "Not tried" in n for n in rung["notes"]), rung["notes"]
        assert rung["test"]["accuracy"]["mean"] >= 0  # scored: the report is complete
    assert any("Stopped at the time limit" in note for note in saved["notes"])
    # a rung cut short is not kept for reuse; the cheap ones are
    again = transferlab.run(
        reviews_csv, quiet=True, **{**_common(tiny_bert, tmp_path), "out": str(tmp_path / "again"), "epochs": 1}
    )
    reused = {rung["name"] for rung in again["rungs"] if rung.get("reused_from")}
    assert "classical" in reused and not any(n.startswith(("finetune", "full")) for n in reused)


def test_a_rung_that_trains_once_replans_its_steps_and_ends_whole_within_the_limit(
    tiny_bert, reviews_csv, tmp_path, monkeypatch
):
    """The plan believes training is nearly free, so nothing is cut: each trained rung measures its
    steps, re-plans far fewer than its 5,000 epochs, and ends its schedule before its deadline."""
    real = costplan_module._trained_seed
    monkeypatch.setattr(costplan_module, "_trained_seed", lambda *a: (lambda s, p, h: (s / 1000, p, h))(*real(*a)))
    limit = 25.0
    start = time.time()
    r = transferlab.run(
        reviews_csv, time_limit=limit, quiet=True, **{**_common(tiny_bert, tmp_path), "epochs": 5000, "patience": 5000}
    )
    assert time.time() - start <= limit * 1.05
    trained = [rung for rung in r["rungs"] if rung["strategy"] in ("finetune", "full")]
    assert len(trained) == 2
    for rung in trained:
        steps = rung["chosen"]["steps"]
        assert 0 < steps["trained"] <= steps["replanned"] < steps["planned"], steps
    # a pause of the machine near the end can still leave one to its deadline (a loaded machine's
    # steps of a few ms jump 10x); the deterministic case is test_..._refills_its_steps_...
    ended = [rung for rung in trained if not rung.get("stopped_at_limit")]
    assert ended and all(any("re-planned from the speed" in n for n in rung["notes"]) for rung in ended)


def test_a_rung_that_cannot_fit_is_skipped_with_the_reason(tiny_bert, reviews_csv, tmp_path, monkeypatch):
    def hopeless(rung, job, task, spec, t):
        return 1e6, 0, "planned as hopeless"

    monkeypatch.setattr(costplan_module, "_trained_seed", hopeless)
    r = transferlab.run(reviews_csv, time_limit=60, quiet=True, **{**_common(tiny_bert, tmp_path), "epochs": 1})
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert [rung["strategy"] for rung in r["rungs"]] == ["majority", "classical", "frozen"]
    skipped = saved["plan"]["time_limit"]["skipped"]
    assert {s["rung"].split(":")[0] for s in skipped} == {"finetune", "full"}
    assert all("time limit" in s["reason"] for s in skipped)
    assert sum("was not run: the time limit" in note for note in saved["notes"]) == 2
    assert "verdicts" in saved and (tmp_path / "run" / "report.html").exists()
    # the comparisons say they judge the budget: finetune and full never ran
    from transferlab.stages.judge import LIMITED_CODES

    compared = [v for v in saved["verdicts"] if v["code"] in LIMITED_CODES]
    assert compared and all("Under the time limit (not run: " in v["message"] for v in compared)
    assert all(v["evidence"]["time_limit"]["skipped"] for v in compared)
    assert "Under the time limit" in saved["recommendation"]["why"]


def test_plan_shows_the_cuts_a_limit_makes(tiny_bert, reviews_csv, tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "plan",
            str(reviews_csv),
            "--backbone",
            f"hf:{tiny_bert}",
            "--rungs",
            "majority,full",
            "--epochs",
            "300",
            "--time-limit",
            "5s",
            "--text-column",
            "review",
            "--label-column",
            "stars",
            "--max-length",
            "16",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "time limit:" in result.output and ("epochs instead of 300" in result.output or "not run" in result.output)


def test_a_resumed_run_under_a_limit_counts_its_finished_rungs_as_free(tiny_bert, reviews_csv, tmp_path):
    import shutil

    settings = {**_common(tiny_bert, tmp_path), "epochs": 2, "patience": 2}
    first = transferlab.run(reviews_csv, time_limit=120, quiet=True, **settings)
    run_dir = tmp_path / "run"
    (run_dir / "results.json").unlink()  # as if killed just before writing its results
    shutil.rmtree(tmp_path / "cache" / "rungs", ignore_errors=True)  # only --resume's stage files remain
    again = transferlab.resume(str(run_dir), quiet=True)
    stages = {s["name"]: s for s in again["plan"]["stages"] if s["kind"] == "rung"}
    assert stages and all(s["seconds"] == 0 and "already fitted" in s["how"] for s in stages.values()), stages
    assert again["plan"]["time_limit"]["cuts"] == []
    assert [r["test"]["accuracy"]["mean"] for r in again["rungs"]] == [
        r["test"]["accuracy"]["mean"] for r in first["rungs"]
    ]


@pytest.mark.parametrize("train_seeds, kept", [(1, 0.1), (2, 0.3)])
def test_a_slower_re_timing_is_not_used_when_the_rungs_re_plan_their_steps(monkeypatch, train_seeds, kept):
    """With one seed (the trained rungs re-plan their steps as they run) a re-timing 3x slower than
    the plan is recorded but the plan keeps its step; with two seeds (no re-planning) it is used."""
    from transferlab.progress import Progress
    from transferlab.stages.clock import RunClock, retime
    from transferlab.stages.costplan import RunPlan
    from transferlab.training.probe import BackboneTiming

    monkeypatch.setattr(
        "transferlab.training.probe.retime_training",
        lambda *a, **k: BackboneTiming("b", 0.0, 0, train_step=0.3, train_first_step=0.3, train_forward=0.1),
    )
    plan = RunPlan(
        [StagePlan("full:b", 500.0, 0, "")],
        probes={"b": BackboneTiming("b", 0.01, 0, train_step=0.1, train_first_step=0.1, train_forward=0.03)},
    )
    clock = RunClock(plan, Progress(quiet=True))
    spec = RunSpec(time_limit="10m", train_seeds=train_seeds)
    task = type("T", (), {"part": lambda self, split: ([], [])})()
    out = retime(clock, [RungJob("full", _Backbone("b"))], task, spec, lambda job: False, Progress(quiet=True))
    assert out == {"b": 3.0} and plan.retimed == {"b": 3.0}
    assert plan.probes["b"].train_step == kept
