"""YAML run specs: round trip, paths, the errors, and --config with command-line overrides."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from transferlab.cli import app
from transferlab.config import RunSpec, read_yaml
from transferlab.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "spec.yaml"


def _write(tmp_path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


def test_round_trip_keeps_every_setting(tmp_path):
    spec = RunSpec(
        backbones=["minilm", "hf:some/model"],
        rungs="majority,classical,frozen",
        lr=3e-5,
        epochs=2,
        max_train=50,
        target=0.85,
        label_descriptions={"pos": "a happy review"},
        notes=["a: b", "#c"],
        mlflow_experiment="reviews",
        audit=False,
    )
    path = spec.to_yaml(tmp_path / "out.yaml", data="reviews.csv")
    text = path.read_text()
    assert "# Learning rate of a new head" in text  # every field carries its help text
    assert RunSpec.from_yaml(path) == spec
    settings, data = read_yaml(path)
    assert data == str(Path("reviews.csv").resolve())
    assert RunSpec(**settings).to_dict() == spec.to_dict()


def test_input_paths_are_relative_to_the_yaml_folder(tmp_path):
    (tmp_path / "cfg").mkdir()
    path = _write(tmp_path / "cfg", "data: ../data/reviews.csv\nood: other.csv\nout: runs/x\n")
    settings, data = read_yaml(path)
    assert data == str(tmp_path / "cfg" / ".." / "data" / "reviews.csv")
    assert settings["ood"] == str(tmp_path / "cfg" / "other.csv")
    assert settings["out"] == "runs/x"  # outputs stay relative to where the user runs


def test_numbers_yaml_reads_as_strings_are_numbers(tmp_path):
    spec = RunSpec.from_yaml(_write(tmp_path, "lr: 1e-3\nrungs: majority,classical\nbackbones: minilm\n"))
    assert spec.lr == 0.001 and spec.rungs == ["majority", "classical"] and spec.backbones == ["minilm"]


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("rungs: [majority]\nepoch: 3\n", ["line 2", "unknown setting 'epoch'", "Did you mean 'epochs'"]),
        ("epochs: three\n", ["line 1", "'epochs' setting must be a number", "'three'"]),
        ("backbones: 3\n", ["'backbones' setting must be a list of strings", "Got 3 (int)"]),
        ("audit: maybe\n", ["'audit' setting must be true or false"]),
        ("seed: 1\nrungs: [majority\n", ["line 3", "not valid YAML"]),
        ("seed: 1\nseed: 2\n", ["line 2", "'seed' is set twice (first on line 1)"]),
        ("- majority\n", ["a run spec is a mapping"]),
        ("epochs: 0\n", ["spec.yaml: The 'epochs' setting must be a number >= 1"]),
        ("epochs: 0.5\n", ["spec.yaml: The 'epochs' setting must be a number >= 1", "Got 0.5"]),
        ("max_dedupe_share: 5\n", ["The 'max_dedupe_share' setting must be a share from 0 to 1", "Got 5 instead"]),
        ("max_dedupe_share: -0.1\n", ["The 'max_dedupe_share' setting must be a share from 0 to 1"]),
        ("confirm_dedupe: maybe\n", ["'confirm_dedupe' setting must be true or false"]),
    ],
)
def test_errors_name_the_file_line_and_key(tmp_path, text, fragments):
    with pytest.raises(ConfigError) as exc:
        RunSpec.from_yaml(_write(tmp_path, text))
    assert str(tmp_path / "spec.yaml") in str(exc.value)
    for f in fragments:
        assert f in str(exc.value)


def test_spec_json_of_an_earlier_run_loads(tmp_path):
    spec = RunSpec(rungs=["majority"], epochs=4, text_column="review")
    (tmp_path / "spec.json").write_text(json.dumps({"schema": "transferlab.spec/1", **spec.to_dict()}))
    assert RunSpec.from_yaml(tmp_path / "spec.json") == spec


def test_example_spec_is_valid():
    spec = RunSpec.from_yaml(EXAMPLE)
    assert spec.text_column == "review" and spec.backbones == ["minilm"] and spec.lr == 0.001


def _spec_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "spec.json").read_text())


def test_cli_config_with_overrides(reviews_csv, tmp_path):
    cfg = _write(
        tmp_path,
        f"data: {reviews_csv.name}\ntext_column: review\nlabel_column: stars\n"
        "rungs: majority,classical\nepochs: 2\nmax_train: 40\nseed: 3\ncorruptions: true\n"
        "learning_curve: false\n",
    )
    cli = CliRunner()
    res = cli.invoke(app, ["run", "--config", str(cfg), "--out", str(tmp_path / "a"), "-q"])
    assert res.exit_code == 0, res.output
    spec = _spec_of(tmp_path / "a")
    assert (spec["epochs"], spec["max_train"], spec["seed"], spec["rungs"]) == (2, 40, 3, ["majority", "classical"])
    res = cli.invoke(
        app,
        [
            "run",
            "--config",
            str(cfg),
            "--out",
            str(tmp_path / "b"),
            "--max-train",
            "30",
            "--no-corruptions",
            "--rungs",
            "majority",
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    spec = _spec_of(tmp_path / "b")
    assert (spec["max_train"], spec["corruptions"], spec["rungs"]) == (30, False, ["majority"])  # flags win
    assert (spec["epochs"], spec["seed"]) == (2, 3)  # flags not given keep the file's values, not the CLI defaults


def test_cli_example_spec_runs(reviews_csv, tmp_path):
    res = CliRunner().invoke(
        app,
        [
            "run",
            str(reviews_csv),
            "--config",
            str(EXAMPLE),
            "--rungs",
            "majority,classical",
            "--out",
            str(tmp_path / "r"),
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    spec = _spec_of(tmp_path / "r")
    assert spec["max_length"] == 128 and spec["target"] == 0.9 and spec["backbones"] == ["minilm"]


def test_cli_config_errors_exit_2(tmp_path):
    cli = CliRunner()
    res = cli.invoke(app, ["run", "--config", str(_write(tmp_path, "epoch: 3\n"))])
    assert res.exit_code == 2 and "Did you mean 'epochs'" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    res = cli.invoke(app, ["run", "--config", str(_write(tmp_path, "epochs: 3\n"))])
    assert res.exit_code == 2 and "No data given" in res.stderr
    res = cli.invoke(app, ["run", "--config", str(tmp_path / "missing.yaml")])
    assert res.exit_code == 2 and "Cannot read the run spec" in res.stderr
