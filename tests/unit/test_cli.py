"""The command line: exit codes, one-line errors, no run directory that looks complete."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from transferlab.cli import app

runner = CliRunner()


REVIEW_COLUMNS = ("--text-column", "review", "--label-column", "stars")  # the reviews_csv fixture's


def _run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_happy_path_json(tiny_bert, reviews_csv, tmp_path):
    res = _run(
        "run",
        reviews_csv,
        *REVIEW_COLUMNS,
        "--backbone",
        f"hf:{tiny_bert}",
        "--rungs",
        "majority,classical,frozen",
        "--out",
        tmp_path / "r",
        "--max-length",
        "16",
        "--json",
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert [r["strategy"] for r in data["rungs"]] == ["majority", "classical", "frozen"]
    assert (tmp_path / "r" / "report.html").exists()


def test_summary_and_report_command(reviews_csv, tmp_path):
    res = _run(
        "run",
        reviews_csv,
        *REVIEW_COLUMNS,
        "--rungs",
        "majority,classical",
        "--out",
        tmp_path / "r",
    )
    assert res.exit_code == 0, res.output
    assert "classical" in res.stdout and "Report:" in res.stdout
    (tmp_path / "r" / "report.html").unlink()
    res = _run("report", tmp_path / "r")
    assert res.exit_code == 0 and (tmp_path / "r" / "report.html").exists()


def _assert_user_error(res, *fragments, out_dir=None):
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    msg = lines[-1]  # a run that got as far as its plan shows it (and its stage lines) first
    assert msg.startswith("error: ") and "Traceback" not in res.output
    assert [line for line in lines if line.startswith("error")] == [msg]
    for f in fragments:
        assert f in msg, msg
    if out_dir is not None:
        assert not (out_dir / "results.json").exists()


def test_missing_column(reviews_csv, tmp_path):
    res = _run("run", reviews_csv, "--label-column", "score", "--rungs", "majority", "--out", tmp_path / "o")
    _assert_user_error(res, "Column 'score' not found in reviews.csv", "--label-column", out_dir=tmp_path / "o")


def test_label_in_test_never_in_train(tmp_path):
    df = pd.DataFrame(
        {
            "text": [f"t{i}" for i in range(8)],
            "label": ["a", "b"] * 3 + ["c", "c"],
            "split": ["train"] * 5 + ["val", "test", "test"],
        }
    )
    df.loc[5, "label"] = "b"
    df.to_csv(tmp_path / "d.csv", index=False)
    res = _run("run", tmp_path / "d.csv", "--split-column", "split", "--rungs", "majority", "--out", tmp_path / "o")
    _assert_user_error(
        res, "d.csv row 8", "label 'c' appears in the test split but never in train", out_dir=tmp_path / "o"
    )


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
    res = _run(
        "run",
        reviews_csv,
        *REVIEW_COLUMNS,
        "--backbone",
        "bert-huge",
        "--out",
        tmp_path / "o",
    )
    _assert_user_error(res, "Unknown backbone 'bert-huge'", "hf:<repo or folder>")
    assert not (tmp_path / "o").exists()


def test_wrong_modality_backbone(reviews_csv, tiny_torchvision_weights):
    res = _run(
        "run",
        reviews_csv,
        *REVIEW_COLUMNS,
        "--backbone",
        f"torchvision:mobilenet_v3_small@{tiny_torchvision_weights}",
    )
    _assert_user_error(res, "is for image data but the data is text")


def test_unknown_rung(reviews_csv):
    _assert_user_error(_run("run", reviews_csv, "--rungs", "majority,magic"), "Unknown rung 'magic'")


@pytest.mark.parametrize("command", ["run", "rank", "demo", "report", "backbones"])
def test_help_has_an_example(command):
    res = _run(command, "--help")
    assert res.exit_code == 0 and "Example" in res.stdout


def test_rank_command(tiny_bert, reviews_csv, tmp_path):
    res = _run(
        "rank",
        reviews_csv,
        *REVIEW_COLUMNS,
        "--backbone",
        f"hf:{tiny_bert}",
        "--max-length",
        "16",
        "--out",
        tmp_path / "r",
        "--json",
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["ranking"][0]["scores"]["logme"] is not None


def test_learning_rate_flags_named_in_verdict_actions_exist(reviews_csv, tmp_path, tiny_bert):
    res = _run(
        "run",
        reviews_csv,
        *REVIEW_COLUMNS,
        "--backbone",
        f"hf:{tiny_bert}",
        "--rungs",
        "finetune",
        "--epochs",
        "1",
        "--max-length",
        "16",
        "--lr",
        "0.002",
        "--top-lr-ratio",
        "0.5",
        "--bottom-lr-ratio",
        "0.05",
        "--unfreeze-stages",
        "2",
        "--lr-factors",
        "1",
        "--out",
        tmp_path / "r",
        "--no-corruptions",
        "--json",
    )  # one rate: no screen
    assert res.exit_code == 0, res.output
    notes = " ".join(json.loads(res.stdout)["rungs"][0]["notes"])
    assert "in 2 stages" in notes and "head 2.0e-03" in notes and "1.0e-03 (top)" in notes


def test_resume_from_the_command_line(reviews_csv, tmp_path):
    out = tmp_path / "run"
    first = runner.invoke(
        app,
        [
            "run",
            str(reviews_csv),
            *REVIEW_COLUMNS,
            "--rungs",
            "majority,classical",
            "--out",
            str(out),
            "--quiet",
            "--json",
        ],
    )
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
    r = runner.invoke(
        app,
        [
            "run",
            str(reviews_csv),
            *REVIEW_COLUMNS,
            "--executor",
            "spark",
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert r.exit_code == 2 and "executor" in r.output


def _leaky_csv(tmp_path, copies: int):
    """60 distinct texts (30 train, 15 val, 15 test) with ``copies`` training rows copying test rows."""
    rng = np.random.default_rng(0)
    words = ["".join(rng.choice(list("abcdefghijklmnoprstuvz"), 6)) for _ in range(400)]
    texts = [" ".join(rng.choice(words, 12)) for _ in range(60)]
    labels = ["pos", "neg"] * 30
    splits = ["train"] * 30 + ["val"] * 15 + ["test"] * 15
    for k in range(copies):
        texts[k], labels[k] = texts[45 + k], labels[45 + k]
    texts[0] = "<b>" + texts[0]  # the report must escape what it shows
    texts[45] = texts[0]
    pd.DataFrame({"text": texts, "label": labels, "split": splits}).to_csv(tmp_path / "leaky.csv", index=False)
    return tmp_path / "leaky.csv"


def test_dedupe_stops_above_the_share_until_confirmed(tmp_path):
    data = _leaky_csv(tmp_path, copies=6)  # 6 of 30 training examples: 20%
    res = _run("run", data, "--split-column", "split", "--rungs", "majority", "--out", tmp_path / "o")
    _assert_user_error(
        res,
        "would remove 6 of 30 training examples (20.0%)",
        "leaky.csv row",
        "(train, label",
        "(test, label",
        "exact copy",
        "transferlab audit DATA",
        "--on-leakage warn",
        "--confirm-dedupe",
        out_dir=tmp_path / "o",
    )
    left = {p.name for p in (tmp_path / "o").iterdir()}
    assert "error.txt" in left and not left & {"results.json", "report.html", "stages"}, left
    assert "would remove 6 of 30" in (tmp_path / "o" / "error.txt").read_text()

    # the audit alone reports and never stops, whichever policy it is given
    for policy in ("warn", "dedupe"):
        res = _run("audit", data, "--split-column", "split", "--on-leakage", policy, "--out", tmp_path / f"a-{policy}")
        assert res.exit_code == 0, res.output

    # the same --out, confirmed: the run finishes and says what it removed, and that it was confirmed
    res = _run(
        "run",
        data,
        "--split-column",
        "split",
        "--rungs",
        "majority",
        "--out",
        tmp_path / "o",
        "--confirm-dedupe",
        "--json",
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["task"]["splits"]["train"] == 24
    assert out["audit"]["dedupe"] == {
        "removed": {"train": 6, "val": 0},
        "share": {"train": 0.2, "val": 0.0},
        "max_share": 0.05,
        "over_max_share": True,
        "confirmed": True,
    }
    removed = out["audit"]["removed"]
    assert len(removed) == 6 and {(p["a"]["split"], p["b"]["split"]) for p in removed} == {("train", "test")}
    assert all(p["a"]["text"] == p["b"]["text"] and p["method"] == "exact" for p in removed)
    assert any("Removed 6 training examples" in n and "confirmed: --confirm-dedupe" in n for n in out["notes"])
    leakage = next(v for v in out["verdicts"] if v["code"] == "leakage")
    assert leakage["severity"] == "warning" and "6 training examples (20.0% of the split)" in leakage["message"]
    assert "as confirmed (--confirm-dedupe)" in leakage["message"]
    html = (tmp_path / "o" / "report.html").read_text()
    section = html[html.index('<section id="removed">') :].split("</section>", 1)[0]
    assert section.count('<tr class="pair-meta">') == 6 and "Kept example it duplicated" in section
    assert "&lt;b&gt;" in section and "<b>" not in section


def test_dedupe_below_the_share_needs_no_confirmation(tmp_path):
    data = _leaky_csv(tmp_path, copies=1)  # 1 of 30 training examples: 3.3%
    res = _run("run", data, "--split-column", "split", "--rungs", "majority", "--out", tmp_path / "o", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert "Removed 1 training example that duplicated validation or test examples." in out["notes"]
    assert out["audit"]["dedupe"]["confirmed"] is False and len(out["audit"]["removed"]) == 1
    leakage = next(v for v in out["verdicts"] if v["code"] == "leakage")
    assert leakage["severity"] == "info" and "--confirm-dedupe" not in leakage["message"]
    # a share of 0 asks before removing anything
    res = _run(
        "run",
        data,
        "--split-column",
        "split",
        "--rungs",
        "majority",
        "--max-dedupe-share",
        "0",
        "--out",
        tmp_path / "zero",
    )
    _assert_user_error(res, "would remove 1 of 30 training examples (3.3%), more than the 0% of a split")


def _number_texts(tmp_path, texts) -> str:
    path = tmp_path / "numbers.csv"
    pd.DataFrame({"amount": texts, "label": ["a", "b"] * (len(texts) // 2)}).to_csv(path, index=False)
    return path


def test_texts_that_are_numbers_run_in_the_classical_rung(tmp_path):
    # ids of 4-5 digits, each in one text only: min_df=2 alone would keep no term at all
    rng = np.random.default_rng(1)
    path = _number_texts(tmp_path, [str(x) for x in rng.choice(range(1000, 99999), 60, replace=False)])
    res = _run(
        "run", path, "--text-column", "amount", "--rungs", "majority,classical", "--out", tmp_path / "o", "--json"
    )
    assert res.exit_code == 0, res.output
    classical = next(r for r in json.loads(res.stdout)["rungs"] if r["strategy"] == "classical")
    assert "every term" in classical["chosen"]["features"]
    # texts of two numbers that recur ("123 456"): the usual vocabulary
    path = _number_texts(tmp_path, [f"{a} {b}" for a, b in rng.integers(10, 40, (60, 2))])
    res = _run(
        "run",
        path,
        "--text-column",
        "amount",
        "--rungs",
        "majority,classical",
        "--out",
        tmp_path / "p",
        "--json",
        "--on-leakage",
        "warn",
    )
    assert res.exit_code == 0, res.output
    classical = next(r for r in json.loads(res.stdout)["rungs"] if r["strategy"] == "classical")
    assert classical["chosen"]["features"] == "TF-IDF words + bigrams"


def test_texts_without_any_term_name_the_column_before_the_run_starts(tmp_path):
    path = _number_texts(tmp_path, [f"{x:.1f}" for x in np.linspace(0, 9.9, 60)])  # "3.1": two 1-char tokens
    res = _run("run", path, "--text-column", "amount", "--rungs", "majority,classical,frozen", "--out", tmp_path / "o")
    _assert_user_error(
        res,
        "column 'amount' of numbers.csv",
        "no word of 2 or more letters or digits",
        "--text-column",
        "--rungs majority,frozen",
    )
    assert not (tmp_path / "o").exists()  # nothing written: rerun with the same --out
