"""Several seeds per rung: redrawn train/validation splits, seed-averaged metrics, two-level bootstrap."""

import numpy as np
import pandas as pd
import pytest
from conftest import synthetic_reviews

import transferlab
from transferlab.config import RunSpec
from transferlab.data import from_arrays, make_task, repartition
from transferlab.evaluation import evaluate, paired_bootstrap
from transferlab.stages import duplicate_clusters


def _task(n: int = 120, **kwargs):
    texts = [f"example number {i} with some words" for i in range(n)]
    labels = ["a" if i % 3 else "b" for i in range(n)]
    return make_task(from_arrays(texts, labels, **kwargs), seed=0)


def test_repartition_keeps_test_sizes_and_class_mix():
    task = _task()
    again = repartition(task, 1)
    assert again is not None
    assert (again.split[task.split == "test"] == "test").all() and (again.split == "test").sum() == (
        task.split == "test"
    ).sum()
    assert again.sizes() == task.sizes()
    for s in ("train", "val"):  # the same number of each class on each side
        assert np.array_equal(np.bincount(again.y[again.split == s]), np.bincount(task.y[task.split == s]))
    assert (again.split != task.split).sum() > 0  # really another draw
    assert repartition(task, 1).split.tolist() == again.split.tolist()  # and a reproducible one


def test_repartition_keeps_duplicate_clusters_on_one_side():
    task = _task()
    pool = np.flatnonzero(task.split != "test")
    clusters = np.arange(len(task.y))
    pairs = [(pool[i], pool[i + 1]) for i in range(0, 40, 2) if task.y[pool[i]] == task.y[pool[i + 1]]]
    for a, b in pairs:
        clusters[b] = clusters[a]
    for seed in range(1, 6):
        again = repartition(task, seed, clusters)
        assert all(again.split[a] == again.split[b] for a, b in pairs)


def test_duplicate_clusters_from_audit_pairs():
    task = _task(30)
    h = task.hashes
    clusters = duplicate_clusters(task, [(h[0], h[1]), (h[1], h[2]), (h[5], h[6])])
    assert clusters[0] == clusters[1] == clusters[2] and clusters[5] == clusters[6] and clusters[0] != clusters[5]
    assert len(set(clusters.tolist())) == 30 - 3
    assert duplicate_clusters(task, []) is None


def test_exact_copies_share_a_cluster_and_stay_together_when_redrawn():
    texts = [f"example number {i} with some words" for i in range(60)]
    texts[7] = texts[3]  # an exact copy, and one that is also near another example
    texts[40] = texts[3]
    labels = ["a" if i % 3 else "b" for i in range(60)]
    labels[7] = labels[40] = labels[3]
    task = make_task(from_arrays(texts, labels), seed=0)
    h = task.hashes
    copies = [i for i in range(len(h)) if h[i] == h[3]]
    assert len(copies) == 3
    clusters = duplicate_clusters(task, [])
    assert clusters is not None and len({clusters[i] for i in copies}) == 1
    assert len(set(clusters.tolist())) == len(h) - 2
    near = duplicate_clusters(task, [(h[3], h[10])])
    assert near[10] == near[3] == near[40]
    pool = [i for i in copies if task.split[i] != "test"]
    for seed in range(1, 6):
        again = repartition(task, seed, clusters)
        assert len({again.split[i] for i in pool}) <= 1


def test_fixed_splits_are_not_redrawn():
    n = 60
    texts = [f"example number {i} with some words" for i in range(n)]
    labels = ["a" if i % 2 else "b" for i in range(n)]
    user = make_task(from_arrays(texts, labels, splits=["train"] * 40 + ["val"] * 10 + ["test"] * 10))
    assert repartition(user, 1) is None
    timed = make_task(from_arrays(texts, labels, times=list(range(n))))
    assert repartition(timed, 1) is None
    # a user split without validation rows: validation was drawn from train at random, so it can be redrawn
    drawn = make_task(from_arrays(texts, labels, splits=["train"] * 50 + ["test"] * 10))
    assert repartition(drawn, 1) is not None


def test_evaluate_averages_seeds_and_widens_for_them():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    preds = np.stack([np.where(rng.random(300) < acc, y, 1 - y) for acc in (0.7, 0.8, 0.9)])
    out = evaluate(y, preds, ["a", "b"])
    per_seed = [(p == y).mean() for p in preds]
    assert out["accuracy"]["seeds"] == pytest.approx(per_seed)
    assert out["accuracy"]["mean"] == pytest.approx(np.mean(per_seed))
    assert out["accuracy"]["sd"] == pytest.approx(np.std(per_seed, ddof=1))
    single = evaluate(y, preds[1], ["a", "b"])
    assert "seeds" not in single["accuracy"]
    width = lambda m: m["accuracy"]["ci"][1] - m["accuracy"]["ci"][0]  # noqa: E731
    assert width(out) > width(single)  # seed variation is part of the interval
    assert out["per_class"]["a"]["support"] == int((y == 0).sum())


def test_paired_bootstrap_with_seeds():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 400)
    good = np.stack([np.where(rng.random(400) < 0.9, y, (y + 1) % 3) for _ in range(3)])
    bad = np.stack([np.where(rng.random(400) < 0.6, y, (y + 1) % 3) for _ in range(3)])
    c = paired_bootstrap(y, good, bad, "accuracy", n_classes=3)
    assert c["significant"] and c["delta"] == pytest.approx((good == y).mean() - (bad == y).mean())
    assert c["seeds"] == [3, 3]
    same = paired_bootstrap(y, good, good, "accuracy", n_classes=3)
    assert same["delta"] == 0 and not same["significant"]
    one = paired_bootstrap(y, good[0], bad, "macro_f1", n_classes=3)  # one seed against three
    assert one["significant"] and one["seeds"] == [1, 3]


def test_run_gives_cheap_rungs_three_seeds(tmp_path):
    texts, labels = synthetic_reviews(40)
    r = transferlab.run(
        from_arrays(texts, labels), rungs=["majority", "classical"], out=str(tmp_path / "r"), quiet=True
    )
    majority, classical = r.rung("majority"), r.rung("classical")
    assert majority["seeds"] == [0]
    assert classical["seeds"] == [0, 1, 2]
    assert len(classical["test"]["accuracy"]["seeds"]) == 3
    assert np.array(classical["predictions"]["test_seeds"]).shape == (3, r["task"]["splits"]["test"])
    assert classical["predictions"]["test_seeds"][0] == classical["predictions"]["test"]
    assert classical["cost"]["fit_seconds_all_seeds"] >= classical["cost"]["fit_seconds"]
    assert any("3 seeds" in n for n in classical["notes"])
    assert "_pairs" not in r["audit"]


def test_run_on_a_fixed_split_runs_deterministic_rungs_once(tmp_path):
    texts, labels = synthetic_reviews(30)
    n = len(texts)
    split = ["train"] * (n - 20) + ["val"] * 10 + ["test"] * 10
    df = pd.DataFrame({"text": texts, "label": labels, "split": split}).sample(frac=1, random_state=0)
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    r = transferlab.run(
        str(path),
        text_column="text",
        label_column="label",
        split_column="split",
        rungs=["classical"],
        out=str(tmp_path / "r"),
        quiet=True,
    )
    assert r.rung("classical")["seeds"] == [0]
    assert any("fixed" in n for n in r.rung("classical")["notes"])


def test_trained_rungs_take_train_seeds(tiny_bert, reviews_csv, tmp_path):
    r = transferlab.run(
        reviews_csv,
        text_column="review",
        label_column="stars",
        backbones=[f"hf:{tiny_bert}"],
        rungs=["frozen", "scratch"],
        train_seeds=2,
        seeds=2,
        out=str(tmp_path / "r"),
        epochs=1,
        max_length=16,
        quiet=True,
        learning_curve=False,
        corruptions=False,
    )
    scratch = [x for x in r["rungs"] if x["strategy"] == "scratch"][0]
    frozen = [x for x in r["rungs"] if x["strategy"] == "frozen"][0]
    assert scratch["seeds"] == [0, 1] and frozen["seeds"] == [0, 1]
    assert len(scratch["test"]["accuracy"]["seeds"]) == 2


def test_feature_views_of_redrawn_splits_read_the_base_features_by_content():
    """A redrawn split's view returns each example's own row, whichever store it views (features
    extracted here, or the driver's arrays in a Ray task), and a view of a view reads the same base."""
    from transferlab.progress import Progress
    from transferlab.stages import AuditEmbedding, CachedFeatures, PreloadedFeatures

    task = _task(60)
    rows = {h: i for i, h in enumerate(task.hashes)}
    x = np.arange(len(task.hashes) * 3, dtype=np.float32).reshape(-1, 3)  # row i = the i-th example's features
    embedded = AuditEmbedding("b", rows, x, seconds=2.0, items=len(task.hashes), from_cache=False)
    cached = CachedFeatures(None, task, RunSpec(rungs=["frozen"]), Progress(quiet=True), embedded)
    preloaded = PreloadedFeatures({s: x[task.indices(s)] for s in ("train", "val", "test")}, 2.0, 60, task)
    redrawn, again = repartition(task, 1), repartition(task, 2)
    for store in (cached, preloaded):
        view = store.view(redrawn)
        for split in ("train", "val", "test"):
            assert np.array_equal(view(split), x[redrawn.indices(split)])
            assert np.array_equal(view.view(again)(split), x[again.indices(split)])
        assert (view.task.part("test")[1] == -1).all()  # a rung reads the view: no test labels
        assert view.items_per_second == store.items_per_second and view.from_cache == store.from_cache
    assert cached.seconds == pytest.approx(2.0) and cached.items == 60  # the audit's embedding time, per row used


def test_resume_reads_the_duplicate_pairs_of_stage_files_from_before_they_had_their_own_key(tmp_path):
    """Stage files written when the pairs travelled inside the audit (as "_pairs") still give the
    resumed run its pairs (so redraws keep copies together), and the key never reaches results.json."""
    import json

    from transferlab.progress import Progress
    from transferlab.stages import StageStore, prepare_task, read_run_state, run_audit_stage

    texts, labels = synthetic_reviews(40)
    data = from_arrays(texts + texts[:20], labels + labels[:20])  # copies, which redraws must keep together
    first = transferlab.run(
        data, out=str(tmp_path / "r"), rungs=["majority", "classical"], on_leakage="warn", quiet=True
    )
    stage = tmp_path / "r" / "stages" / "audit.json"
    saved = json.loads(stage.read_text())
    pairs = [tuple(p) for p in saved["pairs"]]
    assert pairs, "the data holds copies: the audit must pair them"
    saved["audit"]["_pairs"] = saved.pop("pairs")
    stage.write_text(json.dumps(saved))
    for done in ("results.json", "report.html", "stages/rungs/classical.json"):
        (tmp_path / "r" / done).unlink()
    spec = read_run_state(tmp_path / "r")[0]
    outcome = run_audit_stage(prepare_task(data, spec), [], spec, Progress(quiet=True), StageStore(tmp_path / "r"))
    assert outcome.pairs == pairs and "_pairs" not in outcome.record
    resumed = transferlab.resume(tmp_path / "r", data, quiet=True)
    assert resumed.rung("classical")["predictions"] == first.rung("classical")["predictions"]
    assert "_pairs" not in resumed["audit"]
