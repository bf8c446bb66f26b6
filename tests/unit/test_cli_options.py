"""Every RunSpec field is an option of `transferlab run`, made from the field itself; the flags
users' scripts already type parse to the same settings; typed flags override --config, the
defaults of flags not typed do not. Parse only: the command's hand-off to the API is captured."""

import dataclasses
import importlib.util
import types
import typing
from dataclasses import dataclass

import pytest
import typer
from typer.testing import CliRunner

from transferlab import cli
from transferlab.cli import app
from transferlab.cli_options import spec_options
from transferlab.config import RunSpec, _help, field_help

FIELDS = dataclasses.fields(RunSpec)
HINTS = typing.get_type_hints(RunSpec)
NO_MLFLOW = importlib.util.find_spec("mlflow") is None


@pytest.fixture
def parse(monkeypatch, tmp_path):
    """Invoke the CLI in tmp_path (holding labels.json) and return what it hands the API."""
    calls = []

    def execute(data, settings, quiet, as_json, spec=None, mode="run"):
        calls.append(
            {"data": data, "settings": settings, "quiet": quiet, "as_json": as_json, "spec": spec, "mode": mode}
        )

    monkeypatch.setattr(cli, "_execute", execute)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "labels.json").write_text('{"a": "first"}')

    def invoke(*args):
        res = CliRunner().invoke(app, [str(a) for a in args])
        assert res.exit_code == 0, res.output
        return calls[-1]

    return invoke


def _flag(f) -> str:
    return f.metadata.get("cli", "--" + f.name.replace("_", "-"))


# Settings whose valid values a type alone cannot guess: (command-line words, the value RunSpec holds).
SAMPLES = {
    "rungs": (["--rungs", "majority,frozen"], ["majority", "frozen"]),
    "executor": (["--executor", "ray"], "ray"),
    "on_leakage": (["--on-leakage", "warn"], "warn"),
    "metric": (["--metric", "macro_f1"], "macro_f1"),
    "zero_shot_template": (["--zero-shot-template", "a review that is {}"], "a review that is {}"),
    "label_descriptions": (["--label-descriptions", "labels.json"], "labels.json"),
    "mlflow": (["--mlflow", "sqlite:///mlflow.db"], "sqlite:///mlflow.db"),
    "time_limit": (["--time-limit", "30m"], "30m"),
}
ITEMS = {str: ["a", "b"], int: [2, 3], float: [0.5, 0.25], bool: [True, False]}


def _sample(f) -> tuple[list[str], object]:
    """Command-line words setting field f to a value other than its default, and that value."""
    if f.name in SAMPLES:
        return SAMPLES[f.name]
    default = f.default_factory() if f.default is dataclasses.MISSING else f.default
    hint = HINTS[f.name]
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    kind = [a for a in typing.get_args(hint) if a is not type(None)][0] if union else hint
    if kind is bool:
        return [_flag(f) if not default else "--no-" + _flag(f)[2:]], not default
    if kind is int:
        return [_flag(f), str((default or 1) + 1)], (default or 1) + 1
    if kind is float:
        value = default / 2 if default else 0.25
        return [_flag(f), repr(value)], value
    if kind is str:
        return [_flag(f), "some-value"], "some-value"
    if typing.get_origin(kind) in (list, tuple):
        items = ITEMS[(typing.get_args(kind) or (str,))[0]]
        if f.metadata.get("repeatable"):
            return [w for item in items for w in (_flag(f), str(item))], items
        return [_flag(f), ",".join(map(str, items))], items
    return [_flag(f), "{a: b}"], {"a": "b"}  # a mapping, written as YAML


@pytest.fixture(scope="module")
def run_help() -> str:
    res = CliRunner().invoke(app, ["run", "--help"], terminal_width=200)
    assert res.exit_code == 0
    return res.stdout


@pytest.mark.parametrize("f", FIELDS, ids=[f.name for f in FIELDS])
def test_every_field_is_a_run_option(f, run_help, parse):
    flag = _flag(f)
    assert f" {flag} " in run_help or f" {flag}," in run_help or f" {flag} / --no-{flag[2:]}" in run_help
    assert field_help(f).split(".")[0][:40] in " ".join(run_help.split())  # the field's own help, rungs listed
    if f.name == "mlflow" and NO_MLFLOW:
        pytest.skip("mlflow is not installed")
    words, value = _sample(f)
    settings = parse("run", "data.csv", *words)["settings"]
    assert settings == {f.name: value}  # only what was typed
    try:
        spec = RunSpec(**settings)
    except ValueError as exc:
        pytest.fail(f"{words} is not a valid {f.name}; add a valid sample to SAMPLES ({exc})")
    assert getattr(spec, f.name) == value != getattr(RunSpec(), f.name)


# Every flag `run` had before its options were made from RunSpec, with what it meant.
OLD_RUN_FLAGS = [
    (["--backbone", "minilm", "-b", "hf:some/model"], {"backbones": ["minilm", "hf:some/model"]}),
    (["--rungs", "majority,classical"], {"rungs": ["majority", "classical"]}),
    (["--text-column", "review"], {"text_column": "review"}),
    (["--label-column", "stars"], {"label_column": "stars"}),
    (["--split-column", "split"], {"split_column": "split"}),
    (["--group-column", "patient"], {"group_column": "patient"}),
    (["--time-column", "date"], {"time_column": "date"}),
    (["--out", "runs/x"], {"out": "runs/x"}),
    (["-o", "runs/y"], {"out": "runs/y"}),
    (["--seed", "4"], {"seed": 4}),
    (["--seeds", "5"], {"seeds": 5}),
    (["--train-seeds", "2"], {"train_seeds": 2}),
    (["--executor", "ray"], {"executor": "ray"}),
    (["--ray-address", "auto"], {"ray_address": "auto"}),
    (["--ray-gpus", "0.5"], {"ray_gpus": 0.5}),
    (["--threads", "2"], {"threads": 2}),
    (["--learning-curve-trained"], {"learning_curve_trained": True}),
    (["--no-save-models"], {"save_models": False}),
    (["--epochs", "3"], {"epochs": 3}),
    (["--epochs", "2.5"], {"epochs": 2.5}),
    (["--batch-size", "8"], {"batch_size": 8}),
    (["--lr", "0.002"], {"lr": 0.002}),
    (["--lr", "1e-4"], {"lr": 1e-4}),
    (["--top-lr-ratio", "0.5"], {"top_lr_ratio": 0.5}),
    (["--bottom-lr-ratio", "0.05"], {"bottom_lr_ratio": 0.05}),
    (["--unfreeze-stages", "2"], {"unfreeze_stages": 2}),
    (["--lora-rank", "4"], {"lora_rank": 4}),
    (["--lora-alpha", "32"], {"lora_alpha": 32.0}),
    (["--lora-targets", "query,value"], {"lora_targets": ["query", "value"]}),
    (["--lora-targets", ""], {"lora_targets": None}),
    (["--label-descriptions", "labels.json"], {"label_descriptions": "labels.json"}),
    (["--zero-shot-template", "a photo of a {}."], {"zero_shot_template": "a photo of a {}."}),
    (["--max-train", "100"], {"max_train": 100}),
    (["--max-val", "50"], {"max_val": 50}),
    (["--max-test", "60"], {"max_test": 60}),
    (["--max-length", "64"], {"max_length": 64}),
    (["--image-size", "96"], {"image_size": 96}),
    (["--clip-seconds", "1.5"], {"clip_seconds": 1.5}),
    (["--ood", "other.csv"], {"ood": "other.csv"}),
    (["--target", "0.9"], {"target": 0.9}),
    (["--on-leakage", "fail"], {"on_leakage": "fail"}),
    (["--no-audit"], {"audit": False}),
    (["--no-corruptions"], {"corruptions": False}),
    (["--top-k", "2"], {"top_k": 2}),
    (["--trust-remote-code"], {"trust_remote_code": True}),
    pytest.param(
        ["--mlflow", "file:./mlruns"],
        {"mlflow": "file:./mlruns"},
        marks=pytest.mark.skipif(NO_MLFLOW, reason="mlflow is not installed"),
    ),
    (["--mlflow-experiment", "reviews"], {"mlflow_experiment": "reviews"}),
]


@pytest.mark.parametrize("words, expected", OLD_RUN_FLAGS, ids=lambda v: v[0] if isinstance(v, list) else "")
def test_old_run_flags_mean_what_they_meant(words, expected, parse):
    spec = RunSpec(**parse("run", "data.csv", *words)["settings"])
    assert {k: getattr(spec, k) for k in expected} == expected


def test_old_flags_of_the_other_options_and_commands(parse, tmp_path):
    call = parse("run", "data.csv", "-q", "--json")
    assert (call["quiet"], call["as_json"], call["data"], call["settings"]) == (True, True, "data.csv", {})
    call = parse("run", "--resume", tmp_path / "old-run", "--quiet")
    assert (call["mode"], call["settings"], call["quiet"]) == ("resume", {"run_dir": tmp_path / "old-run"}, True)

    columns = [
        "--text-column",
        "t",
        "--label-column",
        "l",
        "--split-column",
        "s",
        "--group-column",
        "g",
        "--time-column",
        "d",
        "-o",
        "out",
        "--seed",
        "2",
        "--max-length",
        "32",
        "--image-size",
        "64",
        "--clip-seconds",
        "2",
        "-q",
        "--json",
    ]
    shared = {
        "text_column": "t",
        "label_column": "l",
        "split_column": "s",
        "group_column": "g",
        "time_column": "d",
        "out": "out",
        "seed": 2,
        "max_length": 32,
        "image_size": 64,
        "clip_seconds": 2.0,
    }
    call = parse("audit", "data.csv", *columns, "-b", "minilm", "--on-leakage", "fail")
    assert call["mode"] == "audit" and call["settings"] == {**shared, "backbones": ["minilm"], "on_leakage": "fail"}
    assert parse("audit", "data.csv")["settings"] == {}  # runner.audit applies on_leakage=warn itself
    call = parse(
        "rank",
        "data.csv",
        *columns,
        "--backbone",
        "minilm",
        "-b",
        "mobilenet_v2",
        "--max-train",
        "20",
        "--trust-remote-code",
    )
    assert call["mode"] == "rank" and call["settings"] == {
        **shared,
        "backbones": ["minilm", "mobilenet_v2"],
        "max_train": 20,
        "trust_remote_code": True,
    }
    assert CliRunner().invoke(app, ["rank", "data.csv"]).exit_code == 2  # --backbone is still required


def test_demo_options_override_the_demo(parse, monkeypatch):
    monkeypatch.setattr("transferlab.demo.demo_data", lambda modality: None)
    spec = parse(
        "demo",
        "--modality",
        "image",
        "-o",
        "o",
        "--rungs",
        "majority",
        "-b",
        "mobilenet_v2",
        "--epochs",
        "1",
        "--max-train",
        "30",
        "--seed",
        "5",
        "-q",
        "--json",
    )["spec"]
    assert (spec.out, spec.rungs, spec.backbones, spec.epochs, spec.max_train, spec.seed, spec.name) == (
        "o",
        ["majority"],
        ["mobilenet_v2"],
        1,
        30,
        5,
        "demo-image",
    )
    spec = parse("demo")["spec"]
    assert (spec.epochs, spec.max_train, spec.seed) == (2, 400, 0)  # the demo's own, not RunSpec's defaults


def test_typed_flags_override_the_config_and_untyped_ones_do_not(parse, tmp_path):
    cfg = tmp_path / "spec.yaml"
    cfg.write_text(
        "data: d.csv\nepochs: 2\nseed: 3\nmax_train: 40\ncorruptions: false\n"
        "rungs: [majority, classical]\nbackbones: [minilm]\n"
    )
    call = parse("run", "--config", cfg)
    assert call["data"] == str(tmp_path / "d.csv")
    assert call["settings"] == {
        "epochs": 2,
        "seed": 3,
        "max_train": 40,
        "corruptions": False,
        "rungs": ["majority", "classical"],
        "backbones": ["minilm"],
    }  # no CLI default leaks in
    call = parse("run", "other.csv", "-c", cfg, "--epochs", "5", "--corruptions", "--seed", "0", "-b", "hf:x")
    assert call["data"] == "other.csv"
    assert call["settings"] == {
        "epochs": 5,
        "seed": 0,
        "max_train": 40,
        "corruptions": True,
        "rungs": ["majority", "classical"],
        "backbones": ["hf:x"],
    }  # --seed 0 is typed


@pytest.mark.parametrize(
    "words, message",
    [
        (["--val-fraction", "0.7"], "The 'val_fraction' setting must be between 0 and 0.5. Got 0.7 instead."),
        (["--metric", "auc"], "The 'metric' setting must be one of accuracy, balanced_accuracy, macro_f1."),
        (["--rungs", "majority,magic"], "Unknown rung 'magic' in rungs."),
        (["--zero-shot-template", "a review"], "The 'zero_shot_template' setting must contain {}"),
    ],
)
def test_values_are_checked_by_runspec_with_one_line(words, message, tmp_path):
    res = CliRunner().invoke(app, ["run", str(tmp_path / "d.csv"), *words, "--out", str(tmp_path / "o")])
    assert res.exit_code == 2, res.output
    assert res.stderr.strip().startswith("error: ") and len(res.stderr.strip().splitlines()) == 1
    assert message in res.stderr
    assert not (tmp_path / "o").exists()


def test_list_items_are_parsed_as_their_type():
    bad = CliRunner().invoke(_future_app(), ["--factors", "0.5,x"])
    assert bad.exit_code == 2 and "'0.5,x' is not a comma-separated list" in bad.output


def test_option_spellings_are_unique_per_command():
    group = typer.main.get_command(app)
    for name, command in group.commands.items():
        spellings = [o for p in command.params for o in (*p.opts, *getattr(p, "secondary_opts", []))]
        assert len(spellings) == len(set(spellings)), name


# A settings class with the kinds of field other work adds: a new field needs no CLI code.
@dataclass
class FutureSpec(RunSpec):
    factors: list[float] = _help("Learning-rate factors to try.", [1.0])
    confirm: bool = _help("Ask before dropping.", False)
    share: float = _help("Most share of train a step may drop.", 0.5)
    small_epochs: int | None = _help("Epochs on small data.", None)
    mapping: dict[str, str] = _help("A mapping.", {})


def _future_app() -> typer.Typer:
    future = typer.Typer(rich_markup_mode=None)

    @future.command()
    @spec_options(("factors", "confirm", "share", "small_epochs", "mapping", "epochs"), spec=FutureSpec)
    def go(*, settings: dict) -> None:
        typer.echo(repr(FutureSpec(**settings)))

    return future


def test_new_fields_become_options_with_no_cli_code():
    res = CliRunner().invoke(
        _future_app(),
        [
            "--factors",
            "0.5,0.25",
            "--confirm",
            "--share",
            "0.2",
            "--small-epochs",
            "4",
            "--mapping",
            "{a: first}",
            "--epochs",
            "2",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "factors=[0.5, 0.25]" in res.stdout and "confirm=True" in res.stdout and "share=0.2" in res.stdout
    assert "small_epochs=4" in res.stdout and "mapping={'a': 'first'}" in res.stdout and "epochs=2" in res.stdout
    res = CliRunner().invoke(_future_app(), ["--help"], terminal_width=200)
    assert "--confirm / --no-confirm" in res.stdout and "Learning-rate factors to try. Comma-separated." in res.stdout
    assert "[default: 1.0]" in res.stdout
    bad = CliRunner().invoke(_future_app(), ["--mapping", "[1, 2]"])
    assert bad.exit_code == 2 and "is not a mapping written as YAML" in bad.output


def test_the_cli_loads_without_the_rung_registry():
    """Help texts list the registered rungs, filled in when a command is dispatched: the registry
    imports torch, which importing the CLI and ``transferlab --help`` do not."""
    import subprocess
    import sys

    code = (
        "import sys; from typer.testing import CliRunner; from transferlab.cli import app; "
        "assert CliRunner().invoke(app, ['--help']).exit_code == 0; print(sorted({'torch', 'transferlab.rungs'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
