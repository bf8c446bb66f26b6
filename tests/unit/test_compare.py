"""transferlab compare: two runs paired on the same test examples, and the ways they can differ."""

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

import transferlab
from transferlab.cli import app
from transferlab.errors import ConfigError, DataError

FAST = dict(
    text_column="review",
    label_column="stars",
    rungs="majority,classical",
    quiet=True,
    learning_curve=False,
    corruptions=False,
)


@pytest.fixture
def runs(reviews_csv, tmp_path):
    """A, B on the same split (B trained on fewer examples), C on another split (another seed)."""
    a = transferlab.run(reviews_csv, out=str(tmp_path / "a"), **FAST)
    b = transferlab.run(reviews_csv, out=str(tmp_path / "b"), max_train=8, **FAST)
    c = transferlab.run(reviews_csv, out=str(tmp_path / "c"), seed=1, **FAST)
    return a, b, c


def test_run_against_itself_is_all_zero_and_within_noise(runs):
    a = runs[0]
    result = transferlab.compare(a.path, a.path)
    assert result["schema"] == "transferlab.compare/1"
    assert result["test"]["same"] and result["test"]["common"] == a["task"]["splits"]["test"]
    names = [(p["a"], p["b"]) for p in result["pairs"]]
    rec = a["recommendation"]["rung"]
    assert names[0] == (rec, rec) and {n for n, _ in names} == {"majority", "classical"}
    for pair in result["pairs"]:
        assert pair["mcnemar_p"] == 1.0 and pair["changed_predictions"] == 0
        for m, c in pair["metrics"].items():
            assert c["delta"] == 0 and c["ci"] == [0, 0] and c["verdict"] == "within noise"
            assert c["a"] == pytest.approx(a.rung(pair["a"])["test"][m]["mean"])


def test_new_run_on_same_test_set_pairs_every_example(runs):
    a, b, _ = runs
    result = transferlab.compare(a.path, b.path, rung_a="classical", rung_b="classical")
    (pair,) = result["pairs"]
    assert pair["n"] == a["task"]["splits"]["test"] == b["task"]["splits"]["test"]
    for m, c in pair["metrics"].items():  # B - A, with A's and B's own test scores
        assert c["a"] == pytest.approx(a.rung("classical")["test"][m]["mean"])
        assert c["b"] == pytest.approx(b.rung("classical")["test"][m]["mean"])
        assert c["delta"] == pytest.approx(c["b"] - c["a"])
        assert c["ci"][0] <= c["delta"] <= c["ci"][1]
        assert c["verdict"] == ("within noise" if not c["significant"] else "better" if c["delta"] > 0 else "worse")
    # the majority rung of B against the classical rung of A: a real, significant loss
    worse = transferlab.compare(a.path, b.path, rung_a="classical", rung_b="majority")["pairs"][0]
    assert worse["metrics"]["balanced_accuracy"]["verdict"] == "worse" and worse["mcnemar_p"] < 0.05


def test_different_test_sets_stop_unless_common_only(runs):
    a, _, c = runs
    with pytest.raises(DataError, match=r"different examples: A has \d+ test examples, B has \d+, \d+ are the same"):
        transferlab.compare(a.path, c.path)
    result = transferlab.compare(a.path, c.path, common_only=True)
    t = result["test"]
    assert not t["same"] and 0 < t["common"] < t["n_a"]
    assert all(p["n"] == t["common"] for p in result["pairs"])


def test_labels_matched_by_name_when_their_order_differs(runs, tmp_path):
    a = runs[0]
    flipped = tmp_path / "flipped"
    shutil.copytree(a.path, flipped)
    data = json.loads((flipped / "results.json").read_text())
    k = len(data["task"]["labels"])
    data["task"]["labels"] = data["task"]["labels"][::-1]
    assert k == 2
    for r in data["rungs"]:
        for key in ("test", "test_seeds"):
            if key in r["predictions"]:
                r["predictions"][key] = (1 - np.asarray(r["predictions"][key])).tolist()
    (flipped / "results.json").write_text(json.dumps(data))
    for pair in transferlab.compare(a.path, flipped)["pairs"]:
        assert all(c["delta"] == 0 for c in pair["metrics"].values())


def test_unknown_rung_names_the_closest(runs):
    a = runs[0]
    with pytest.raises(ConfigError, match="No rung 'clasical' in run A.*Did you mean 'classical'"):
        transferlab.compare(a.path, a.path, rung_a="clasical")


def test_cli_table_json_out_and_exit_codes(runs, tmp_path):
    a, b, c = (str(r.path) for r in runs)
    cli = CliRunner()
    res = cli.invoke(app, ["compare", a, b])
    assert res.exit_code == 0, res.output
    assert "classical" in res.stdout and "McN" in res.stdout and "B - A" in res.stdout
    res = cli.invoke(app, ["compare", a, a, "--json", "--out", str(tmp_path / "cmp.json")])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == json.loads((tmp_path / "cmp.json").read_text())
    res = cli.invoke(app, ["compare", a, c])
    assert res.exit_code == 2 and res.stderr.startswith("error: ") and "--common-only" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert cli.invoke(app, ["compare", a, c, "--common-only"]).exit_code == 0
    res = cli.invoke(app, ["compare", a, str(tmp_path / "nowhere")])
    assert res.exit_code == 2 and "No results.json" in res.stderr
