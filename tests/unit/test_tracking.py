"""MLflow tracking against a real local store: the parent run, one nested run per rung, curves, artifacts."""

import importlib.util

import pytest

import transferlab
from transferlab.config import RunSpec
from transferlab.errors import ConfigError

mlflow = pytest.importorskip("mlflow")


def test_parent_and_nested_rung_runs_hold_the_results(tiny_bert, reviews_csv, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)  # nothing may land in the working directory anyway
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    (tmp_path / "store").mkdir()
    results = transferlab.run(
        reviews_csv,
        text_column="review",
        label_column="stars",
        backbones=[f"hf:{tiny_bert}"],
        rungs="majority,classical,full",
        out=str(tmp_path / "run"),
        epochs=2,
        max_length=16,
        learning_curve=False,
        save_models=False,
        ood_max_items=8,
        mlflow=uri,
        mlflow_experiment="reviews",
        quiet=True,
    )
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("reviews")
    assert experiment.artifact_location.startswith((tmp_path / "store" / "mlartifacts").as_uri())
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = {r.data.tags["transferlab.rung"]: r for r in runs if "mlflow.parentRunId" in r.data.tags}
    assert len(parents) == 1 and set(children) == {r["name"] for r in results["rungs"]}
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert all(c.data.tags["mlflow.parentRunId"] == parent.info.run_id for c in children.values())
    assert parent.data.params["epochs"] == "2" and parent.data.params["rungs"] == '["majority", "classical", "full"]'
    assert parent.data.tags["transferlab.recommendation"] == results["recommendation"]["rung"]
    assert parent.data.tags["transferlab.modality"] == "text"
    assert parent.data.tags["transferlab.labels"] == "neg, pos"
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"report.html", "results.json", "spec.json", "spec.yaml", "split_manifest.csv"} <= artifacts
    assert not (tmp_path / "mlruns").exists()
    # the logged spec.yaml reproduces the run's settings
    path = client.download_artifacts(parent.info.run_id, "spec.yaml", str(tmp_path))
    assert RunSpec.from_yaml(path).to_dict() == RunSpec.from_yaml(results.path / "spec.json").to_dict()

    full_name = next(r["name"] for r in results["rungs"] if r["strategy"] == "full")
    full, record = children[full_name], results.rung(full_name)
    assert full.data.params["strategy"] == "full" and full.data.params["backbone"] == record["backbone"]
    m = full.data.metrics
    assert m["test_accuracy"] == pytest.approx(record["test"]["accuracy"]["mean"])
    assert m["test_macro_f1_ci_low"] == pytest.approx(record["test"]["macro_f1"]["ci"][0])
    assert m["val_balanced_accuracy"] == pytest.approx(record["val"]["balanced_accuracy"]["mean"])
    assert m["cost_fit_seconds"] == pytest.approx(record["cost"]["fit_seconds"])
    assert "test_ece" in m
    history = client.get_metric_history(full.info.run_id, "curve_val_metric")
    assert [h.step for h in history] == record["curves"]["epoch"] and len(history) == 2  # epochs=2, patience 3
    assert [h.value for h in history] == pytest.approx(record["curves"]["val_metric"])
    assert any(k.startswith("ood_") and "_drop_accuracy" in k for k in m)  # the built-in corruptions
    assert children["classical"].data.params["chosen.C"] == str(results.rung("classical")["chosen"]["C"])


def test_tracking_failure_keeps_the_finished_run(reviews_csv, tmp_path, capsys):
    bad = "nosuchscheme://tracking"  # MLflow has no store for this scheme
    results = transferlab.run(
        reviews_csv,
        text_column="review",
        label_column="stars",
        rungs="majority",
        out=str(tmp_path / "run"),
        learning_curve=False,
        corruptions=False,
        mlflow=bad,
        quiet=True,
    )
    assert (results.path / "results.json").is_file() and (results.path / "report.html").is_file()
    assert (results.path / "tracking_error.txt").is_file()
    err = capsys.readouterr().err
    assert "logging to MLflow" in err and "The run itself is complete" in err


def test_missing_mlflow_fails_before_the_run(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    with pytest.raises(ConfigError, match=r"pip install 'transferlab\[tracking\]'"):
        RunSpec(mlflow="sqlite:///x.db")
