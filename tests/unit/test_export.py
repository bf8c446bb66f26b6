"""export / predict / load_artifact on tiny random models: the exported model reproduces the run's
own test predictions, through transferlab, the CLI and the standalone example."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import transferlab
from transferlab.cli import app
from transferlab.export import ArtifactError, export, predict_file

EXAMPLE = Path(__file__).parents[2] / "examples" / "load_exported.py"
FAST = dict(
    epochs=1, head_epochs=2, audit=False, corruptions=False, learning_curve=False, seeds=1, quiet=True, small_epochs=3
)


@pytest.fixture(scope="module")
def text_run(tiny_bert, tmp_path_factory):
    from conftest import synthetic_reviews

    root = tmp_path_factory.mktemp("text")
    texts, labels = synthetic_reviews(20)
    pd.DataFrame({"review": texts, "stars": labels}).to_csv(root / "reviews.csv", index=False)
    r = transferlab.run(
        root / "reviews.csv",
        text_column="review",
        label_column="stars",
        backbones=[f"hf:{tiny_bert}"],
        rungs="majority,classical,zero_shot,frozen,finetune,scratch_small",
        out=str(root / "run"),
        max_length=16,
        cache_dir=str(root / "cache"),
        extract_batch_size=4,
        **FAST,
    )
    return r, root


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    import torch
    import torchvision
    from conftest import write_image_folder
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("image")
    torch.manual_seed(1234)
    weights = root / "mnv3.safetensors"
    save_file(
        {k: v.contiguous() for k, v in torchvision.models.mobilenet_v3_small(weights=None).state_dict().items()},
        str(weights),
    )
    folder = write_image_folder(root / "shapes", n_per_class=10)
    r = transferlab.run(
        folder,
        backbones=[f"torchvision:mobilenet_v3_small@{weights}"],
        image_size=32,
        rungs="majority,classical,frozen,full,scratch_small",
        out=str(root / "run"),
        cache_dir=str(root / "cache"),
        **FAST,
    )
    return r, root


def held_out_items(results) -> list:
    """The run's test items in the order of predictions.test, from the split manifest."""
    rows = [r for r in csv.DictReader(open(results.path / "split_manifest.csv")) if r["split"] == "test"]
    if results["task"]["modality"] == "image":
        return [r["origin"] for r in rows]
    df = pd.read_csv(Path(results["task"]["source"]))
    return [df["review"][int(r["origin"].rsplit(" ", 1)[1]) - 2] for r in rows]


@pytest.mark.parametrize("rung", ["majority", "classical", "zero_shot", "frozen", "finetune", "scratch_small"])
def test_text_export_reproduces_the_runs_test_predictions(text_run, rung, tmp_path):
    results, _ = text_run
    record = next(r for r in results["rungs"] if r["strategy"] == rung)
    out = export(results.path, record["name"], tmp_path / "art")
    config = json.loads((out / "config.json").read_text())
    assert config["rung"] == record["name"] and config["labels"] == ["neg", "pos"]
    assert config["metrics"]["test"]["accuracy"]["mean"] == record["test"]["accuracy"]["mean"]
    predictor = transferlab.load_artifact(out)
    items = held_out_items(results)
    proba = predictor.predict_proba(items)
    assert proba.shape == (len(items), 2) and np.allclose(proba.sum(1), 1)
    assert proba.argmax(1).tolist() == record["predictions"]["test"]
    assert predictor.predict(items[:3]) == [config["labels"][i] for i in record["predictions"]["test"][:3]]
    if rung in ("zero_shot", "frozen", "finetune"):
        assert (out / "tokenizer").is_dir() and (out / "backbone" / "config.json").is_file()
        prep = json.loads((out / "preprocessing.json").read_text())
        assert prep["max_length"] == 16 and prep["pooling"] == "cls"
    if rung == "scratch_small":  # the vocabulary learnt from the training texts, as JSON
        vocabulary = json.loads((out / "vocabulary.json").read_text())
        assert "great" in vocabulary and len(vocabulary) == config["head"]["architecture"]["n_vocab"]


@pytest.mark.parametrize("rung", ["majority", "classical", "frozen", "full", "scratch_small"])
def test_image_export_reproduces_the_runs_test_predictions(image_run, rung, tmp_path):
    results, _ = image_run
    record = next(r for r in results["rungs"] if r["strategy"] == rung)
    out = export(results.path, record["name"], tmp_path / "art")
    assert (
        transferlab.load_artifact(out).predict_proba(held_out_items(results)).argmax(1).tolist()
        == record["predictions"]["test"]
    )
    if rung == "scratch_small":  # a small CNN on the 32x32 RGB images, rebuilt from config.json alone
        arch = json.loads((out / "config.json").read_text())["head"]["architecture"]
        prep = json.loads((out / "small_preprocessing.json").read_text())
        assert arch["model"] == "SmallCNN" and arch["in_channels"] == 3 and prep["side"] == 32


@pytest.mark.parametrize("strategy", ["zero_shot", "frozen"])
def test_export_adds_the_pretrained_encoder_and_predicts_like_the_saved_model(text_run, strategy, tmp_path):
    """A frozen encoder is saved in the run as a reference to its source; the artifact holds its weights,
    and the model loaded from either predicts the same, bit for bit."""
    from safetensors.torch import load_file

    from transferlab.rungs import Fitted

    results, _ = text_run
    record = next(r for r in results["rungs"] if r["strategy"] == strategy)
    saved = results.path / record["artifact"]["path"]
    out = export(results.path, record["name"], tmp_path / "art")
    assert not [k for k in load_file(str(saved / "model.safetensors")) if k.startswith("encoder.")]
    assert [k for k in load_file(str(out / "model.safetensors")) if k.startswith("encoder.")]
    items = held_out_items(results)
    exported = Fitted.load(out)
    assert exported.batch_size == 4  # the run's batches: texts padded alike give the same numbers
    assert np.array_equal(exported.predict_proba(items), Fitted.load(saved).predict_proba(items))


def test_saved_models_hold_no_pickles_and_frozen_keeps_only_its_head(text_run):
    results, _ = text_run
    frozen = next(r for r in results["rungs"] if r["strategy"] == "frozen")
    finetune = next(r for r in results["rungs"] if r["strategy"] == "finetune")
    assert frozen["artifact"]["encoder_weights"] != "included"
    assert frozen["artifact"]["bytes"] < finetune["artifact"]["bytes"] / 5
    files = [f for f in (results.path / "models").rglob("*") if f.is_file()]
    assert files and not [f for f in files if f.suffix in (".pkl", ".pickle", ".pt", ".pth", ".bin", ".joblib")]


def _example():
    import importlib.util

    spec = importlib.util.spec_from_file_location("load_exported", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_runs_without_transferlab_and_reproduces_the_run(text_run, tmp_path):
    results, _ = text_run
    record = next(r for r in results["rungs"] if r["strategy"] == "finetune")
    out = export(results.path, record["name"], tmp_path / "art")
    pd.DataFrame({"review": held_out_items(results)}).to_csv(tmp_path / "test.csv", index=False)
    # importing transferlab fails in the subprocess: the example must stand alone
    argv = [str(EXAMPLE), str(out), str(tmp_path / "test.csv"), "--text-column", "review", "--json"]
    code = f"import runpy, sys; sys.modules['transferlab'] = None; sys.argv = {argv!r}; runpy.run_path(sys.argv[0], run_name='__main__')"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(proc.stdout)
    labels = results["task"]["labels"]
    assert [labels.index(r["predicted"]) for r in rows] == record["predictions"]["test"]
    predicted = predict_file(out, tmp_path / "test.csv", tmp_path / "p.csv")
    assert predicted["predictions"].tolist() == record["predictions"]["test"]
    assert np.allclose([r["proba"] for r in rows], predicted["proba"], atol=1e-6)


@pytest.mark.parametrize(
    "which",
    [
        "text classical",
        "text zero_shot",
        "text frozen",
        "image frozen",
        "image full",
        "text scratch_small",
        "image scratch_small",
    ],
)
def test_example_matches_transferlab_on_every_head(which, text_run, image_run, tmp_path):
    modality, strategy = which.split()
    results, _ = text_run if modality == "text" else image_run
    record = next(r for r in results["rungs"] if r["strategy"] == strategy)
    out = export(results.path, record["name"], tmp_path / "art")
    items = held_out_items(results)
    proba = _example().Exported(out).predict_proba(items)
    assert proba.argmax(1).tolist() == record["predictions"]["test"]
    assert np.allclose(proba, transferlab.load_artifact(out).predict_proba(items), atol=1e-6)


def test_cli_export_default_rung_and_predict_with_labels(text_run, tmp_path):
    results, root = text_run
    runner = CliRunner()
    res = runner.invoke(app, ["export", str(results.path), "--out", str(tmp_path / "art")])
    assert res.exit_code == 0, res.output
    config = json.loads((tmp_path / "art" / "config.json").read_text())
    assert config["rung"] == results["recommendation"]["rung"]
    res = runner.invoke(
        app, ["predict", str(tmp_path / "art"), str(root / "reviews.csv"), "--out", str(tmp_path / "p.csv")]
    )
    assert res.exit_code == 0, res.output
    assert "accuracy" in res.output and "macro-F1" in res.output  # the run's label column 'stars' is found
    table = pd.read_csv(tmp_path / "p.csv")
    assert list(table.columns) == ["origin", "predicted", "label", "p_neg", "p_pos"]
    assert table["origin"][0] == "reviews.csv row 2" and len(table) == 40
    # without labels: predictions only
    pd.DataFrame({"review": ["great tasty fresh", "awful stale"]}).to_csv(tmp_path / "new.csv", index=False)
    res = runner.invoke(
        app, ["predict", str(tmp_path / "art"), str(tmp_path / "new.csv"), "--out", str(tmp_path / "q.csv")]
    )
    assert res.exit_code == 0 and "accuracy" not in res.output
    assert list(pd.read_csv(tmp_path / "q.csv").columns) == ["origin", "predicted", "p_neg", "p_pos"]


def test_predict_images_from_a_flat_folder_and_from_files(image_run, tmp_path):
    results, root = image_run
    out = export(results.path, "classical", tmp_path / "art")
    files = sorted((root / "shapes" / "dark").glob("*.png"))[:3]
    flat = tmp_path / "flat"
    flat.mkdir()
    for f in files:
        (flat / f.name).write_bytes(f.read_bytes())
    by_folder = predict_file(out, flat, tmp_path / "a.csv")
    by_files = predict_file(out, [str(f) for f in files], tmp_path / "b.csv")
    assert by_folder["metrics"] is None and by_folder["n"] == 3
    assert np.array_equal(by_folder["predictions"], by_files["predictions"])
    labelled = predict_file(out, root / "shapes", tmp_path / "c.csv")  # class subfolders: scored
    assert labelled["metrics"]["accuracy"]["mean"] >= 0.5


def test_clear_errors(text_run, image_run, tmp_path):
    results, root = text_run
    runner = CliRunner()
    res = runner.invoke(app, ["export", str(results.path), "--rung", "lora:nope", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "No rung 'lora:nope'" in res.output and "majority, classical" in res.output
    art = export(results.path, "classical", tmp_path / "art")
    with pytest.raises(ArtifactError, match="already exists"):
        export(results.path, "classical", art)
    # data of the wrong modality
    res = runner.invoke(app, ["predict", str(art), str(image_run[1] / "shapes"), "--out", str(tmp_path / "p.csv")])
    assert res.exit_code == 2 and "reads text" in res.output
    with pytest.raises(transferlab.DataError, match="reads text"):
        transferlab.load_artifact(art).predict([np.zeros((8, 8, 3), dtype=np.uint8)])
    # never overwrite the input
    with pytest.raises(transferlab.DataError, match="never overwrites"):
        predict_file(art, root / "reviews.csv", root / "reviews.csv")
    # an unknown label in the data
    pd.DataFrame({"review": ["great"], "label": ["meh"]}).to_csv(tmp_path / "odd.csv", index=False)
    with pytest.raises(transferlab.DataError, match="odd.csv row 2: label 'meh' is not a class"):
        predict_file(art, tmp_path / "odd.csv", tmp_path / "o.csv")
    # missing or damaged artifact files
    (art / "model.safetensors").write_bytes(b"\x00" * 7)
    with pytest.raises(ArtifactError, match="model.safetensors is not a readable safetensors file"):
        transferlab.load_artifact(art)
    (art / "config.json").unlink()
    res = runner.invoke(app, ["predict", str(art), str(root / "reviews.csv"), "--out", str(tmp_path / "p.csv")])
    assert res.exit_code == 2 and "config.json is missing" in res.output
    with pytest.raises(ArtifactError, match="does not exist"):
        transferlab.load_artifact(tmp_path / "nowhere")


def test_run_without_saved_models_cannot_be_exported(reviews_csv, tmp_path):
    r = transferlab.run(
        reviews_csv,
        text_column="review",
        label_column="stars",
        rungs="majority,classical",
        out=str(tmp_path / "run"),
        save_models=False,
        **FAST,
    )
    assert not (r.path / "models").exists()
    with pytest.raises(ArtifactError, match="save_models=False"):
        export(r.path, "classical")
