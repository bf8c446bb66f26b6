"""The command line: a thin Typer skin over the Python API.

Exit codes: 0 success, 2 a user error (bad input or arguments, one line on stderr), 1 anything
else (the traceback goes to the run directory's error.txt).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from .cli_options import RungListsGroup, spec_options
from .errors import TransferlabError

app = typer.Typer(
    cls=RungListsGroup,
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Honest transfer learning: compare frozen, fine-tuned and from-scratch models on your data.",
)


def _fail(message: str, code: int) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _quiet_libraries() -> None:
    """Silence load-time chatter from the model libraries; our own progress bars remain."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        import transformers

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    except ImportError:
        pass


def _execute(data, spec_kwargs: dict, quiet: bool, as_json: bool, spec=None, mode: str = "run") -> None:
    from . import runner
    from .report import print_summary

    _quiet_libraries()
    try:
        if mode == "resume":
            results = runner.resume(spec_kwargs["run_dir"], data, quiet=quiet or as_json)
        else:
            results = getattr(runner, mode)(data, quiet=quiet or as_json, spec=spec, **spec_kwargs)
    except TransferlabError as exc:
        _fail(str(exc), 2)
    except KeyboardInterrupt:
        _fail("interrupted; the run directory has no results.json and is not a finished run.", 1)
    except Exception as exc:  # a bug or an environment problem, not a user mistake
        _fail(f"{type(exc).__name__}: {exc} (details in the run directory's error.txt)", 1)
    from .devices import processes

    if not processes().main:  # the other processes of a multi-process launch: the first one reports
        return
    if as_json:
        typer.echo(json.dumps(results, indent=2))
        return
    if not quiet:
        print_summary(results)
    typer.echo(f"Report: {results.report_path}")


def _with_config(config: Path, data: Optional[str], settings: dict) -> tuple[Optional[str], dict]:
    """The YAML's settings (and data), with the flags the user typed on top."""
    from .config import read_yaml

    try:
        from_file, file_data = read_yaml(config)
    except TransferlabError as exc:
        _fail(str(exc), 2)
    return (data if data is not None else file_data), {**from_file, **settings}


# The settings that shape the data and the backbones' features: what audit and rank read.
DATA_SETTINGS = (
    "backbones",
    "text_column",
    "label_column",
    "split_column",
    "group_column",
    "time_column",
    "out",
    "name",
    "seed",
    "val_fraction",
    "test_fraction",
    "max_train",
    "max_val",
    "max_test",
    "max_length",
    "image_size",
    "clip_seconds",
    "extract_batch_size",
    "cache_dir",
    "trust_remote_code",
    "threads",
)

Data = Annotated[
    str,
    typer.Argument(
        metavar="DATA", help="A folder of images or audio files (one subfolder per class) or a CSV/JSONL/Parquet file."
    ),
]
TextColumn = Annotated[Optional[str], typer.Option("--text-column", help="Column with the text.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print results.json to stdout.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")]


@app.command()
@spec_options()
def run(
    data: Annotated[
        Optional[str],
        typer.Argument(
            metavar="[DATA]",
            help="A folder of images (one subfolder per "
            "class) or a CSV/JSONL/Parquet file; optional with --config "
            "holding data:.",
        ),
    ] = None,
    config: Optional[Path] = typer.Option(
        None,
        "--config",
        "-c",
        help="A YAML run spec (keys = the settings, plus data:); flags given on the command line override it.",
    ),
    resume: Optional[Path] = typer.Option(
        None,
        "--resume",
        help="Continue an unfinished run (crashed or killed) "
        "in this run directory, with its own settings; finished stages are kept.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output; print only the report path."),
    as_json: bool = typer.Option(False, "--json", help="Print results.json to stdout instead of the table."),
    *,
    settings: dict,
) -> None:
    """Run the ladder on your data and write results.json and report.html. Every setting of the
    run spec is an option; flags you type override --config.

    Example:

        transferlab run reviews.csv --text-column review --label-column stars --backbone minilm

        transferlab run --config examples/spec.yaml reviews.csv --epochs 3 --mlflow sqlite:///mlflow.db

        transferlab run photos/ --backbone mobilenet_v2 --rungs majority,classical,frozen,finetune

        transferlab run --resume runs/photos-20261122-101500
    """
    if resume is not None:
        _execute(data, {"run_dir": resume}, quiet, as_json, mode="resume")
        return
    if config is not None:
        data, settings = _with_config(config, data, settings)
    if data is None:
        _fail("No data given. Pass DATA (a folder or a CSV/JSONL/Parquet file), or --config with a data: entry.", 2)
    _execute(data, settings, quiet, as_json)


@app.command()
@spec_options()
def plan(
    data: Annotated[
        Optional[str],
        typer.Argument(
            metavar="[DATA]", help="The data `transferlab run` would read; optional with --config holding data:."
        ),
    ] = None,
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="A YAML run spec, as for run."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON (results.json's plan section)."),
    *,
    settings: dict,
) -> None:
    """Show what `transferlab run` with the same options will cost, before paying it: every stage's
    predicted time and peak memory, from a few timed batches of each backbone on your data. Nothing
    is trained and no run directory is made.

    Example:

        transferlab plan reviews.csv --text-column review --label-column stars --backbone minilm --epochs 3
    """
    from . import runner
    from .formats import fmt_seconds

    if config is not None:
        data, settings = _with_config(config, data, settings)
    if data is None:
        _fail("No data given. Pass DATA (a folder or a CSV/JSONL/Parquet file), or --config with a data: entry.", 2)
    _quiet_libraries()
    try:
        result = runner.plan(data, **settings)
    except TransferlabError as exc:
        _fail(str(exc), 2)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    typer.echo(result.table())
    typer.echo(
        f"Predicted: {fmt_seconds(result.total_seconds)} in all (trained rungs at their most epochs; "
        "early stopping may end them sooner)."
    )


@app.command()
@spec_options(
    DATA_SETTINGS + ("on_leakage",),
    defaults={"on_leakage": "warn"},
    helps={"backbones": "A backbone whose embeddings find near-duplicates (optional; the first is used)."},
)
def audit(data: Data, quiet: Quiet = False, as_json: AsJson = False, *, settings: dict) -> None:
    """Audit the data before any training: duplicates and near-duplicates within and across splits,
    label conflicts, imbalance, label shift, and group or time overlap.

    Example:

        transferlab audit reviews.csv --text-column review --label-column stars --backbone minilm
    """
    _execute(data, settings, quiet, as_json, mode="audit")


@app.command()
@spec_options(DATA_SETTINGS, required=("backbones",))
def rank(data: Data, quiet: Quiet = False, as_json: AsJson = False, *, settings: dict) -> None:
    """Rank candidate backbones by how well their frozen features fit your labels, next to their cost.

    Scores (LogME, H-score, kNN and linear-probe accuracy) use the training split only; no model
    is trained. The table is saved in the run directory's results.json under "ranking".

    Example:

        transferlab rank photos/ --backbone mobilenet_v2 --backbone efficientnet_lite0 --image-size 96
    """
    _execute(data, settings, quiet, as_json, mode="rank")


@app.command()
@spec_options(
    ("backbones", "rungs", "out", "seed", "epochs", "max_train", "time_limit", "cache_dir"), show_defaults=False
)
def demo(
    modality: str = typer.Option(
        "text",
        "--modality",
        help="text (fine-food reviews, MiniLM) or image (Animal-MNIST, MobileNetV2 and EfficientNet-Lite0).",
    ),
    quiet: Quiet = False,
    as_json: AsJson = False,
    *,
    settings: dict,
) -> None:
    """Run the offline demo: real data, real pretrained models, no network. The options override the
    demo's own settings.

    Example:

        transferlab demo                      # text: fine-food reviews with MiniLM

        transferlab demo --modality image     # Animal-MNIST with MobileNetV2 and EfficientNet-Lite0
    """
    from .demo import DEMOS, demo_data, demo_spec

    if modality not in DEMOS:
        _fail(f"--modality must be one of {', '.join(DEMOS)}; got '{modality}'.", 2)
    try:
        spec = demo_spec(modality, **{"name": f"demo-{modality}", **settings})
        data = demo_data(modality)
    except TransferlabError as exc:
        _fail(str(exc), 2)
    _execute(data, {}, quiet, as_json, spec=spec)


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="A finished run directory (holding results.json)."),
) -> None:
    """Re-render report.html from a run's results.json and print the summary table.

    Example:

        transferlab report runs/demo-text-20261122-101500
    """
    from .report import print_summary, write_html
    from .results import load_run

    try:
        results = load_run(run_dir)
    except TransferlabError as exc:
        _fail(str(exc), 2)
    path = write_html(results, results.path / "report.html")
    print_summary(results)
    typer.echo(f"Report: {path}")


@app.command()
def compare(
    run_a: Path = typer.Argument(..., metavar="RUN_A", help="The earlier run directory (the baseline)."),
    run_b: Path = typer.Argument(..., metavar="RUN_B", help="The new run directory."),
    rung_a: Optional[str] = typer.Option(None, "--rung-a", help="Compare only this rung of RUN_A (with --rung-b)."),
    rung_b: Optional[str] = typer.Option(None, "--rung-b", help="Compare only this rung of RUN_B (with --rung-a)."),
    common_only: bool = typer.Option(
        False,
        "--common-only",
        help="If the test sets differ, compare on the test examples both runs share instead of stopping.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON instead of the table."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Also write the comparison as JSON to this file."),
) -> None:
    """Compare a new run with an earlier one on the same test examples: B - A per rung, with paired
    bootstrap intervals, p-values and McNemar's test. By default each run's recommended rung and
    every rung name both runs have.

    Example:

        transferlab compare runs/reviews-q3 runs/reviews-q4

        transferlab compare runs/old runs/new --rung-a finetune:minilm --rung-b full:minilm --json
    """
    from .comparison import compare as _compare
    from .comparison import print_comparison
    from .results import write_json_atomic

    try:
        result = _compare(run_a, run_b, rung_a=rung_a, rung_b=rung_b, common_only=common_only)
    except TransferlabError as exc:
        _fail(str(exc), 2)
    if out is not None:
        write_json_atomic(result, out)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        print_comparison(result)


@app.command()
def export(
    run_dir: Path = typer.Argument(
        ..., metavar="RUN_DIR", help="A finished run directory (holding results.json and models/)."
    ),
    rung: Optional[str] = typer.Option(
        None, "--rung", help="Rung to export, e.g. finetune:minilm (default: the run's recommended rung)."
    ),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="Artifact folder to write (default RUN_DIR/exported/<rung>)."
    ),
) -> None:
    """Write a rung's fitted model as a self-contained folder: model.safetensors, config.json
    (labels, backbone, held-out metrics), preprocessing.json and, for text, the tokenizer.

    Example:

        transferlab export runs/reviews-20261122-101500 --rung finetune:minilm --out reviews-model
    """
    from .export import export as _export

    _quiet_libraries()
    try:
        path = _export(run_dir, rung, out)
    except TransferlabError as exc:
        _fail(str(exc), 2)
    typer.echo(f"Artifact: {path}")


@app.command()
def predict(
    artifact: Path = typer.Argument(..., metavar="ARTIFACT", help="A folder written by transferlab export."),
    data: List[str] = typer.Argument(
        ..., metavar="DATA...", help="A CSV/JSONL/Parquet file of texts, a folder of images, or image files."
    ),
    out: Path = typer.Option(
        Path("predictions.csv"), "--out", "-o", help="CSV to write: origin, predicted label, one probability per class."
    ),
    text_column: TextColumn = None,
    label_column: Annotated[
        Optional[str],
        typer.Option(
            "--label-column",
            help="Column with true labels (optional; "
            "label/labels/class/target are found by name): prints "
            "accuracy and macro-F1.",
        ),
    ] = None,
) -> None:
    """Apply an exported model to new data and write its predictions as CSV.

    With labels (a label column, or images in class subfolders) it also prints accuracy and
    macro-F1 with 95% intervals.

    Example:

        transferlab predict reviews-model new_reviews.csv --text-column review --out predictions.csv

        transferlab predict photos-model new_photos/ --out predictions.csv
    """
    from .export import predict_file

    _quiet_libraries()
    try:
        result = predict_file(artifact, data, out, text_column=text_column, label_column=label_column)
    except TransferlabError as exc:
        _fail(str(exc), 2)
    typer.echo(f"Wrote {result['n']} predictions to {result['path']}")
    for name, m in (result["metrics"] or {}).items():
        typer.echo(f"{name.replace('macro_f1', 'macro-F1')} {m['mean']:.3f} [{m['ci'][0]:.3f}, {m['ci'][1]:.3f}]")


@app.command()
def backbones() -> None:
    """List the backbone sources and the packaged offline models.

    Example:

        transferlab backbones
    """
    from .backbones import list_backbones

    listed = list_backbones()
    typer.echo("Sources: " + ", ".join(f"{s}<name>" for s in listed["sources"]))
    typer.echo("Packaged (offline): " + ", ".join(listed["packaged"]))


def main() -> None:  # console-script entry point
    try:
        app()
    except TransferlabError as exc:  # raised outside a command body
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
