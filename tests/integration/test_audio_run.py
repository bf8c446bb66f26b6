"""Audio end to end on real synthesised speech (espeak-ng) with the packaged resemblyzer encoder."""

import hashlib
import json
import time

import pandas as pd
import pytest
from typer.testing import CliRunner

import transferlab
from transferlab.cli import app

pytestmark = pytest.mark.integration


def test_run_on_spoken_words(spoken_words, tmp_path):
    start = time.perf_counter()
    results = transferlab.run(
        spoken_words,
        backbones=["resemblyzer"],
        rungs=["majority", "classical", "frozen"],
        out=str(tmp_path / "run"),
        quiet=True,
    )
    seconds = time.perf_counter() - start
    data = json.loads((tmp_path / "run" / "results.json").read_text())
    assert data["task"]["modality"] == "audio" and data["task"]["labels"] == ["no", "stop", "yes"]
    rungs = {r["name"]: r for r in data["rungs"]}
    assert set(rungs) == {"majority", "classical", "frozen:resemblyzer"}
    acc = {name: r["test"]["accuracy"]["mean"] for name, r in rungs.items()}
    f1 = {name: r["test"]["macro_f1"]["mean"] for name, r in rungs.items()}
    for name in ("classical", "frozen:resemblyzer"):  # words are learnable from MFCCs and speaker embeddings
        assert acc[name] > acc["majority"] + 0.3 and f1[name] > f1["majority"] + 0.3, (acc, f1)
    assert set(rungs["frozen:resemblyzer"]["ood"]) == {"white_noise", "gain", "time_shift", "low_pass"}
    assert data["ranking"][0]["backbone"] == "resemblyzer" and data["ranking"][0]["licence"] == "Apache-2.0"
    assert data["audit"]["embedding_backbone"] == "resemblyzer"
    assert {f["check"] for f in data["audit"]["findings"]} >= {"exact_duplicates", "near_duplicates"}
    manifest = pd.read_csv(tmp_path / "run" / "split_manifest.csv")
    first = manifest.iloc[0]
    assert first["sha256"] == hashlib.sha256(open(first["origin"], "rb").read()).hexdigest()
    html = (tmp_path / "run" / "report.html").read_text()
    assert "frozen:resemblyzer" in html and "audio" in html
    print(
        f"\naudio run: {seconds:.1f} s; test accuracy {acc}; macro-F1 {f1}; "
        f"OOD accuracy { ({k: round(v['accuracy']['mean'], 3) for k, v in rungs['frozen:resemblyzer']['ood'].items()}) }"
    )
    assert results.path == tmp_path / "run"


def test_cli_run_on_spoken_words(spoken_words, tmp_path):
    res = CliRunner().invoke(
        app,
        [
            "run",
            str(spoken_words),
            "--backbone",
            "resemblyzer",
            "--rungs",
            "majority,classical,frozen",
            "--no-corruptions",
            "--clip-seconds",
            "2",
            "--out",
            str(tmp_path / "cli"),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert [r["name"] for r in data["rungs"]] == ["majority", "classical", "frozen:resemblyzer"]
    assert json.loads((tmp_path / "cli" / "spec.json").read_text())["clip_seconds"] == 2.0
    assert (tmp_path / "cli" / "report.html").exists()
