"""Finished rungs reused across runs (stages/cache.py): what is reused, what is refitted, and the key."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path

import pandas as pd
import pytest

import transferlab
from transferlab.config import SCOPES, RunSpec, setting_scope
from transferlab.rungs import RUNGS
from transferlab.stages import RungJob, prepare_task, resolve_backbones
from transferlab.stages.cache import ENTRY, MODEL, cache_root, code_files, code_salt, rung_key, rung_settings

# the rungs of every kind: a baseline, a control, a cheap frozen-feature rung, a trained one
RUNG_LIST = "majority,classical,frozen,full"
FAST = dict(
    rungs=RUNG_LIST,
    epochs=1,
    head_epochs=2,
    lr_factors=[1.0],
    max_length=16,
    seeds=2,
    learning_curve=True,
    corruptions=True,
    quiet=True,
    text_column="review",
    label_column="stars",
)
TIMING = ("fit_seconds", "extract_seconds", "fit_seconds_all_seeds", "predict_ms_per_item")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    from conftest import synthetic_reviews

    root = tmp_path_factory.mktemp("reviews")
    texts, labels = synthetic_reviews(24)
    pd.DataFrame({"review": texts, "stars": labels}).to_csv(root / "reviews.csv", index=False)
    return root / "reviews.csv"


@pytest.fixture(scope="module")
def first(tiny_bert, data, tmp_path_factory):
    """A cold run into a fresh cache folder; the cache folder is copied per test that changes it."""
    root = tmp_path_factory.mktemp("first")
    r = transferlab.run(
        data, backbones=[f"hf:{tiny_bert}"], out=str(root / "run"), cache_dir=str(root / "cache"), **FAST
    )
    return r, root / "cache"


def _cache(first, tmp_path) -> str:
    """A private copy of the first run's cache folder."""
    import shutil

    shutil.copytree(first[1], tmp_path / "cache")
    return str(tmp_path / "cache")


def _without(record: dict, *keys: str) -> dict:
    record = json.loads(json.dumps(record))
    for k in keys:
        record.pop(k, None)
    for k in TIMING:
        record["cost"].pop(k, None)
    record["notes"] = [n for n in record["notes"] if "items/s" not in n]
    return record


def _reused(results) -> dict[str, bool]:
    return {x["name"]: bool(x.get("reused_from")) for x in results["rungs"]}


def test_an_unchanged_rerun_reuses_every_rung_with_the_same_records(first, tiny_bert, data, tmp_path):
    r1, _ = first
    r2 = transferlab.run(
        data, backbones=[f"hf:{tiny_bert}"], out=str(tmp_path / "again"), cache_dir=_cache(first, tmp_path), **FAST
    )
    assert [x["name"] for x in r2["rungs"]] == [x["name"] for x in r1["rungs"]]
    assert all(_reused(r2).values()), _reused(r2)
    for a, b in zip(r1["rungs"], r2["rungs"]):
        assert b["reused_from"]["run"] == str(r1.path.resolve()) and len(b["reused_from"]["key"]) == 32
        assert {k: v for k, v in b.items() if k != "reused_from"} == a  # timing fields too: the first run's
    assert r2["learning_curve"] == r1["learning_curve"] and r1["learning_curve"]["rungs"]
    assert r2["verdicts"] == r1["verdicts"] and r2["recommendation"] == r1["recommendation"]
    # the plan knew: every rung predicted at 0 s, so the remaining time shown was what the re-run spent
    rung_stages = [st for st in r2["plan"]["stages"] if st["kind"] == "rung"]
    assert rung_stages and all(st["seconds"] == 0 and "rung cache" in st["how"] for st in rung_stages)
    assert all(st["seconds"] > 0 for st in r1["plan"]["stages"] if st["kind"] == "rung")
    # the saved models came along: export reproduces the test predictions from the new run directory
    full = next(x for x in r2["rungs"] if x["strategy"] == "full")
    assert (r2.path / full["artifact"]["path"]).is_dir()
    from transferlab.export import export

    artifact = export(r2.path, full["name"], tmp_path / "art")
    assert (
        transferlab.load_artifact(artifact).predict_proba(_test_items(r2, data)).argmax(1).tolist()
        == full["predictions"]["test"]
    )
    assert "(reused)" in (r2.path / "report.html").read_text()


def _test_items(results, data: Path) -> list[str]:
    import csv

    rows = [r for r in csv.DictReader(open(results.path / "split_manifest.csv")) if r["split"] == "test"]
    df = pd.read_csv(data)
    return [df["review"][int(r["origin"].rsplit(" ", 1)[1]) - 2] for r in rows]


def test_force_refits_everything_and_gives_what_was_reused(first, tiny_bert, data, tmp_path):
    r1, _ = first
    r2 = transferlab.run(
        data,
        backbones=[f"hf:{tiny_bert}"],
        out=str(tmp_path / "forced"),
        cache_dir=_cache(first, tmp_path),
        force=True,
        **FAST,
    )
    assert not any(_reused(r2).values())
    for a, b in zip(r1["rungs"], r2["rungs"]):  # what a reuse hands on is what fitting again gives
        assert _without(b) == _without(a), a["name"]


def test_changing_epochs_refits_only_the_trained_rungs(first, tiny_bert, data, tmp_path):
    r2 = transferlab.run(
        data,
        backbones=[f"hf:{tiny_bert}"],
        out=str(tmp_path / "epochs"),
        cache_dir=_cache(first, tmp_path),
        **{**FAST, "epochs": 2},
    )
    name = f"hf:{tiny_bert}"
    assert _reused(r2) == {"majority": True, "classical": True, f"frozen:{name}": True, f"full:{name}": False}


def test_adding_a_backbone_runs_only_its_rungs(first, tiny_bert, spread_bert, data, tmp_path):
    r2 = transferlab.run(
        data,
        backbones=[f"hf:{tiny_bert}", f"hf:{spread_bert}"],
        out=str(tmp_path / "two"),
        cache_dir=_cache(first, tmp_path),
        **FAST,
    )
    reused = _reused(r2)
    assert len(reused) == 6
    for name, was in reused.items():
        assert was == (str(spread_bert) not in name), reused


def test_a_damaged_entry_is_ignored_with_a_warning(first, tiny_bert, data, tmp_path):
    cache = Path(_cache(first, tmp_path))
    r1, _ = first
    keys = {x["name"]: x for x in r1["rungs"]}
    entries = {json.loads((e / ENTRY).read_text())["name"]: e for e in (cache / "rungs").iterdir()}
    full = next(n for n in keys if n.startswith("full:"))
    weights = next(p for p in (entries[full] / MODEL).rglob("*") if p.is_file())
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)  # the same size, other bytes
    (entries["classical"] / ENTRY).write_text('{"schema": "transferlab.rung-cache/1", "key": ')  # cut short
    r2 = transferlab.run(
        data, backbones=[f"hf:{tiny_bert}"], out=str(tmp_path / "damaged"), cache_dir=str(cache), **FAST
    )
    assert _reused(r2) == {**{n: True for n in keys}, full: False, "classical": False}
    damaged = [n for n in r2["notes"] if "damaged" in n]
    assert len(damaged) == 2 and "checksums" in " ".join(damaged)
    assert r2.rung(full)["predictions"] == keys[full]["predictions"]  # refitted, to the same result
    # the refit replaced the entries: the next run reuses all
    r3 = transferlab.run(data, backbones=[f"hf:{tiny_bert}"], out=str(tmp_path / "third"), cache_dir=str(cache), **FAST)
    assert all(_reused(r3).values())


# --- the key ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keyed(tiny_bert, data):
    spec = RunSpec(backbones=[f"hf:{tiny_bert}"], **{k: v for k, v in FAST.items() if k != "quiet"})
    task = prepare_task(str(data), spec)
    backbone = resolve_backbones(spec, task.modality)[0]
    jobs = [RungJob(s) for s in ("majority", "classical", "scratch_small")] + [
        RungJob(s, backbone) for s in ("frozen", "finetune", "full", "lora", "zero_shot")
    ]
    return spec, task, jobs


def _keys(keyed, task=None, ood="ood", env=None, **changes) -> dict[str, str]:
    spec, base_task, jobs = keyed
    spec = dataclasses.replace(spec, **changes)
    return {j.strategy: rung_key(j, task or base_task, spec, None, ood, env or {"threads": 1}) for j in jobs}


def _changed(before: dict, after: dict) -> set[str]:
    return {s for s in before if before[s] != after[s]}


TRAINED = {"finetune", "full", "lora"}
ALL = {"majority", "classical", "scratch_small", "frozen", "finetune", "full", "lora", "zero_shot"}


def test_the_key_changes_exactly_when_the_result_could(keyed):
    spec, task, _ = keyed
    base = _keys(keyed)
    assert base == _keys(keyed) and len(set(base.values())) == len(base)
    assert _changed(base, _keys(keyed, epochs=3)) == TRAINED
    assert _changed(base, _keys(keyed, lr=0.01)) == TRAINED
    assert _changed(base, _keys(keyed, lr_factors=[1.0, 0.1])) == TRAINED
    assert _changed(base, _keys(keyed, batch_size=8)) == TRAINED | {"scratch_small"}
    assert _changed(base, _keys(keyed, small_epochs=5)) == {"scratch_small"}
    assert _changed(base, _keys(keyed, lora_rank=4)) == {"lora"}
    assert _changed(base, _keys(keyed, zero_shot_template="about {}")) == {"zero_shot"}
    assert _changed(base, _keys(keyed, train_seeds=2)) == TRAINED | {"scratch_small"}
    assert _changed(base, _keys(keyed, seeds=3)) == {"classical", "frozen"}  # the cheap, seeded rungs
    for everything in (dict(seed=1), dict(metric="macro_f1"), dict(save_models=False), dict(target=0.9)):
        assert _changed(base, _keys(keyed, **everything)) == ALL, everything
    assert _changed(base, _keys(keyed, ood="other OOD sets")) == ALL
    assert _changed(base, _keys(keyed, env={"threads": 2})) == ALL
    # where and how a run goes changes no result
    for nothing in (
        dict(out="elsewhere"),
        dict(force=True),
        dict(executor="ray"),
        dict(top_k=1),
        dict(threads=3),
        dict(cache_dir="/tmp/x"),
        dict(notes=["hi"]),
        dict(name="other"),
    ):
        assert _changed(base, _keys(keyed, **nothing)) == set(), nothing


def test_one_changed_data_row_changes_every_key(keyed):
    _, task, _ = keyed
    base = _keys(keyed)
    hashes = list(task.hashes)
    hashes[5] = "0" * 64  # another text in one row
    assert _changed(base, _keys(keyed, task=dataclasses.replace(task, hashes=hashes))) == ALL
    y = task.y.copy()
    y[3] = 1 - y[3]  # one label flipped
    assert _changed(base, _keys(keyed, task=dataclasses.replace(task, y=y))) == ALL
    split = task.split.copy()
    i, j = task.indices("train")[0], task.indices("val")[0]
    split[i], split[j] = split[j], split[i]  # one example moved between train and validation
    assert _changed(base, _keys(keyed, task=dataclasses.replace(task, split=split))) == ALL


def test_another_backbone_or_its_weights_change_only_its_rungs(keyed, spread_bert):
    spec, task, jobs = keyed
    base = _keys(keyed)
    other = resolve_backbones(dataclasses.replace(spec, backbones=[f"hf:{spread_bert}"]), "text")[0]
    moved = {
        j.strategy: rung_key(RungJob(j.strategy, other) if j.backbone else j, task, spec, None, "ood", {"threads": 1})
        for j in jobs
    }
    assert _changed(base, moved) == {"frozen", "finetune", "full", "lora", "zero_shot"}


def test_the_code_salt_covers_the_rungs_module_and_the_training_loop(tmp_path):
    pkg = Path(transferlab.__file__).parent
    finetune, majority = code_files(RUNGS.get("finetune")), code_files(RUNGS.get("majority"))
    assert pkg / "rungs" / "trainable.py" in finetune and pkg / "training" / "loop.py" in finetune
    assert pkg / "rungs" / "majority.py" in majority and pkg / "rungs" / "trainable.py" not in majority
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("x = 1\n")
    b.write_text("y = 2\n")
    before = code_salt([a, b])
    b.write_text("y = 3\n")
    assert code_salt([a, b]) == before  # read once per process: the code a run imported
    from transferlab.stages import cache as module

    module._CODE_SALTS.clear()
    assert code_salt([a, b]) != before


def test_every_setting_declares_a_scope_and_every_rung_its_settings():
    scopes = {f.name: setting_scope(f) for f in dataclasses.fields(RunSpec)}
    assert set(scopes.values()) <= set(SCOPES)
    own = {n for n, s in scopes.items() if s == "rung"}
    for strategy in RUNGS.list_():
        cls = RUNGS.get(strategy)
        assert cls.settings is None or set(cls.settings) <= own, (strategy, set(cls.settings) - own)
        # every setting of scope rung its modules read is declared, so it is in the key
        read = set()
        for path in code_files(cls):
            if "rungs" in path.parts:
                read |= set(re.findall(r"spec\.([a-z_]+)", path.read_text()))
        missing = (read & own) - set(rung_settings(cls))
        assert not missing, f"{strategy} reads {sorted(missing)} without declaring them in its settings"


def test_the_cache_lives_under_the_cache_folder(tmp_path, monkeypatch):
    assert cache_root(RunSpec(cache_dir=str(tmp_path))) == tmp_path / "rungs"
    monkeypatch.setenv("TRANSFERLAB_CACHE", str(tmp_path / "env"))
    assert cache_root(RunSpec()) == tmp_path / "env" / "rungs"
    assert RunSpec(force=True).force is True
    with pytest.raises(ValueError, match="'force' setting must be true or false"):
        RunSpec(force="yes")


def test_a_half_written_entry_of_a_killed_run_is_removed(tmp_path):
    from transferlab.stages.cache import _remove_orphans

    dead, alive = tmp_path / ".abc.999999999.tmp", tmp_path / f".abc.{os.getpid()}.tmp"
    other = tmp_path / ".xyz.999999999.tmp"
    for d in (dead, alive, other):
        d.mkdir()
    _remove_orphans(tmp_path, "abc")
    assert not dead.exists() and alive.exists() and other.exists()
