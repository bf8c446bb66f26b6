"""The command line: exit codes, one-line errors, no run directory that looks complete."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from transferlab.cli import app

runner = CliRunner()


def _run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_happy_path_json(tiny_bert, reviews_csv, tmp_path):
    res = _run("run", reviews_csv, "--text-column", "review", "--label-column", "stars", "--backbone",
               f"hf:{tiny_bert}", "--rungs", "majority,classical,frozen", "--out", tmp_path / "r",
               "--max-length", "16", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert [r["strategy"] for r in data["rungs"]] == ["majority", "classical", "frozen"]
    assert (tmp_path / "r" / "report.html").exists()


def test_summary_and_report_command(reviews_csv, tmp_path):
    res = _run("run", reviews_csv, "--text-column", "review", "--label-column", "stars",
               "--rungs", "majority,classical", "--out", tmp_path / "r")
    assert res.exit_code == 0, res.output
    assert "classical" in res.stdout and "Report:" in res.stdout
    (tmp_path / "r" / "report.html").unlink()
    res = _run("report", tmp_path / "r")
    assert res.exit_code == 0 and (tmp_path / "r" / "report.html").exists()


def _assert_user_error(res, *fragments, out_dir=None):
    assert res.exit_code == 2, res.output
    msg = res.stderr.strip()
    assert msg.startswith("error: ") and "Traceback" not in res.output
    assert len(msg.splitlines()) == 1
    for f in fragments:
        assert f in msg, msg
    if out_dir is not None:
        assert not (out_dir / "results.json").exists()


def test_missing_column(reviews_csv, tmp_path):
    res = _run("run", reviews_csv, "--label-column", "score", "--rungs", "majority", "--out", tmp_path / "o")
    _assert_user_error(res, "Column 'score' not found in reviews.csv", "--label-column", out_dir=tmp_path / "o")


def test_label_in_test_never_in_train(tmp_path):
    df = pd.DataFrame({"text": [f"t{i}" for i in range(8)], "label": ["a", "b"] * 3 + ["c", "c"],
                       "split": ["train"] * 5 + ["val", "test", "test"]})
    df.loc[5, "label"] = "b"
    df.to_csv(tmp_path / "d.csv", index=False)
    res = _run("run", tmp_path / "d.csv", "--split-column", "split", "--rungs", "majority", "--out", tmp_path / "o")
    _assert_user_error(res, "d.csv row 8", "label 'c' appears in the test split but never in train",
                       out_dir=tmp_path / "o")


def test_class_with_one_example(tmp_path):
    pd.DataFrame({"text": ["a", "b", "c", "d"], "label": ["x", "x", "x", "y"]}).to_csv(tmp_path / "d.csv", index=False)
    _assert_user_error(_run("run", tmp_path / "d.csv", "--rungs", "majority"), "class 'y' (1) has fewer than 2")


def test_empty_file(tmp_path):
    (tmp_path / "d.csv").write_text("")
    _assert_user_error(_run("run", tmp_path / "d.csv"), "d.csv is empty")


def test_unreadable_image(image_folder):
    (image_folder / "dark" / "x.jpg").write_bytes(b"\xff\xd8 truncated")
    _assert_user_error(_run("run", image_folder, "--rungs", "majority"), "x.jpg is not a readable image")


def test_unknown_backbone(reviews_csv, tmp_path):
    res = _run("run", reviews_csv, "--text-column", "review", "--label-column", "stars",
               "--backbone", "bert-huge", "--out", tmp_path / "o")
    _assert_user_error(res, "Unknown backbone 'bert-huge'", "hf:<repo or folder>")
    assert not (tmp_path / "o").exists()


def test_wrong_modality_backbone(reviews_csv, tiny_torchvision_weights):
    res = _run("run", reviews_csv, "--text-column", "review", "--label-column", "stars",
               "--backbone", f"torchvision:mobilenet_v3_small@{tiny_torchvision_weights}")
    _assert_user_error(res, "is for image data but the data is text")


def test_unknown_rung(reviews_csv):
    _assert_user_error(_run("run", reviews_csv, "--rungs", "majority,magic"), "Unknown rung 'magic'")


@pytest.mark.parametrize("command", ["run", "rank", "demo", "report", "backbones"])
def test_help_has_an_example(command):
    res = _run(command, "--help")
    assert res.exit_code == 0 and "Example" in res.stdout


def test_rank_command(tiny_bert, reviews_csv, tmp_path):
    res = _run("rank", reviews_csv, "--text-column", "review", "--label-column", "stars", "--backbone",
               f"hf:{tiny_bert}", "--max-length", "16", "--out", tmp_path / "r", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["ranking"][0]["scores"]["logme"] is not None


def test_learning_rate_flags_named_in_verdict_actions_exist(reviews_csv, tmp_path, tiny_bert):
    res = _run("run", reviews_csv, "--text-column", "review", "--label-column", "stars", "--backbone",
               f"hf:{tiny_bert}", "--rungs", "finetune", "--epochs", "1", "--max-length", "16", "--lr", "0.002",
               "--top-lr-ratio", "0.5", "--bottom-lr-ratio", "0.05", "--unfreeze-stages", "2",
               "--out", tmp_path / "r", "--no-corruptions", "--json")
    assert res.exit_code == 0, res.output
    notes = " ".join(json.loads(res.stdout)["rungs"][0]["notes"])
    assert "in 2 stages" in notes and "head 2.0e-03" in notes and "1.0e-03 (top)" in notes


def test_resume_from_the_command_line(reviews_csv, tmp_path):
    out = tmp_path / "run"
    first = runner.invoke(app, ["run", str(reviews_csv), "--text-column", "review", "--label-column", "stars",
                                "--rungs", "majority,classical", "--out", str(out), "--quiet", "--json"])
    assert first.exit_code == 0, first.output
    before = json.loads((out / "results.json").read_text())
    # as if the process had been killed after its last rung, before writing the finished run
    for name in ("results.json", "report.html", "spec.json"):
        (out / name).unlink()
    again = runner.invoke(app, ["run", "--resume", str(out), "--quiet"])
    assert again.exit_code == 0, again.output
    after = json.loads((out / "results.json").read_text())
    assert [r["predictions"] for r in after["rungs"]] == [r["predictions"] for r in before["rungs"]]
    assert (out / "report.html").exists()
    bad = runner.invoke(app, ["run", "--resume", str(tmp_path)])
    assert bad.exit_code == 2 and "not a transferlab run directory" in bad.output
    done = runner.invoke(app, ["run", "--resume", str(out)])
    assert done.exit_code == 2 and "finished run" in done.output


def test_executor_must_be_known(reviews_csv, tmp_path):
    r = runner.invoke(app, ["run", str(reviews_csv), "--text-column", "review", "--label-column", "stars",
                            "--executor", "spark", "--out", str(tmp_path / "r")])
    assert r.exit_code == 2 and "executor" in r.output
