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

from .errors import TransferlabError

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Honest transfer learning: compare frozen, fine-tuned and from-scratch models on your data.")


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


# A --config file's settings are overridden only by flags given on the command line.
FLAG_FOR = {"backbones": "backbone", "audit": "no_audit", "corruptions": "no_corruptions"}  # setting -> parameter


def _with_config(ctx: typer.Context, config: Path, data: Optional[str], kwargs: dict) -> tuple[Optional[str], dict]:
    """The YAML's settings (and data), with every flag the user actually passed on top."""
    from .config import read_yaml

    try:
        settings, config_data = read_yaml(config)
    except TransferlabError as exc:
        _fail(str(exc), 2)

    def passed(key: str) -> bool:  # by name: typer may carry its own copy of click's ParameterSource
        source = ctx.get_parameter_source(FLAG_FOR.get(key, key))
        return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")

    given = {k: v for k, v in kwargs.items() if passed(k)}
    return (data if data is not None else config_data), {**settings, **given}


GROUP_HELP = "Column with a group id (patient, product...): no group spans two splits."
TIME_HELP = "Column with a date/time or number: train on the oldest rows, test on the newest."
LEAKAGE_HELP = ("Cross-split duplicates: dedupe (drop the train/val copies; test is never touched), "
                "fail, or warn.")
RUNGS_HELP = ("Comma-separated rungs: majority,classical,frozen,finetune,full,scratch (the default), and "
              "zero_shot, lora.")

# Options shared by the commands that read data (run, rank, audit).
Data = Annotated[str, typer.Argument(metavar="DATA", help="A folder of images or audio files (one subfolder per class) or a CSV/JSONL/Parquet file.")]
TextColumn = Annotated[Optional[str], typer.Option("--text-column", help="Column with the text.")]
LabelColumn = Annotated[Optional[str], typer.Option("--label-column", help="Column with the label.")]
SplitColumn = Annotated[Optional[str], typer.Option("--split-column", help="Column with train/val/test per row.")]
GroupColumn = Annotated[Optional[str], typer.Option("--group-column", help=GROUP_HELP)]
TimeColumn = Annotated[Optional[str], typer.Option("--time-column", help=TIME_HELP)]
Out = Annotated[Optional[Path], typer.Option("--out", "-o", help="Run directory (default runs/<name>-<time>).")]
MaxLength = Annotated[int, typer.Option("--max-length", help="Text: tokens per input.")]
ImageSize = Annotated[int, typer.Option("--image-size", help="Images: side in pixels.")]
ClipSeconds = Annotated[float, typer.Option("--clip-seconds", help="Audio: seconds per clip (longer clips are centre-cropped, shorter ones zero-padded).")]
TrustRemoteCode = Annotated[bool, typer.Option("--trust-remote-code", help="Let Hugging Face models run their own code.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print results.json to stdout.")]


@app.command()
def run(
    ctx: typer.Context,
    data: Annotated[Optional[str], typer.Argument(metavar="[DATA]", help="A folder of images (one subfolder per "
                                                  "class) or a CSV/JSONL/Parquet file; optional with --config "
                                                  "holding data:.")] = None,
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="A YAML run spec (keys = the settings, "
                                          "plus data:); flags given on the command line override it."),
    backbone: Optional[List[str]] = typer.Option(None, "--backbone", "-b", help="Candidate base model (repeatable): "
                                                 "hf:<repo or folder>, timm:<name>, torchvision:<name>, minilm, "
                                                 "mobilenet_v2, efficientnet_lite0/1/2."),
    rungs: Optional[str] = typer.Option(None, "--rungs", help=RUNGS_HELP),
    text_column: TextColumn = None,
    label_column: LabelColumn = None,
    split_column: SplitColumn = None,
    group_column: GroupColumn = None,
    time_column: TimeColumn = None,
    out: Out = None,
    seed: int = typer.Option(0, "--seed", help="Seed for split, subsampling, initialisation and batch order."),
    seeds: int = typer.Option(3, "--seeds", help="Seeds for the cheap rungs (classical, frozen): each refits on "
                              "another random train/validation draw; test metrics are the mean with an interval."),
    train_seeds: int = typer.Option(1, "--train-seeds", help="Seeds for the rungs that train a backbone "
                                    "(finetune, full, lora, scratch); each costs a whole training run."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue an unfinished run (crashed or killed) "
                                          "in this run directory, with its own settings; finished stages are kept."),
    executor: str = typer.Option("local", "--executor", help="local, or ray: run rungs, candidates and seeds as "
                                 "Ray tasks (needs the distributed extra)."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="With --executor ray: an existing "
                                              "cluster (e.g. ray://head:10001 or auto); default a local Ray."),
    ray_gpus: float = typer.Option(0.0, "--ray-gpus", help="With --executor ray: GPUs each training task "
                                   "(finetune, full, lora, scratch) requests; 0.5 shares a GPU between two."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Torch CPU threads per process (default: all cores)."),
    learning_curve_trained: bool = typer.Option(False, "--learning-curve-trained", help="Also measure finetune's "
                                                "(and lora's) learning curve: retrained on 25% and 50% of train."),
    no_save_models: bool = typer.Option(False, "--no-save-models", help="Do not keep the fitted models under "
                                        "models/ (then transferlab export has nothing to export)."),
    epochs: int = typer.Option(10, "--epochs", help="Most epochs for the trainable rungs."),
    batch_size: int = typer.Option(16, "--batch-size", help="Training batch size."),
    lr: float = typer.Option(1e-3, "--lr", help="Learning rate of the new head and of training from scratch."),
    top_lr_ratio: float = typer.Option(0.1, "--top-lr-ratio", help="finetune: top backbone block's rate relative "
                                       "to --lr (also full's uniform rate)."),
    bottom_lr_ratio: float = typer.Option(0.01, "--bottom-lr-ratio", help="finetune: the stem's rate relative to --lr."),
    unfreeze_stages: int = typer.Option(3, "--unfreeze-stages", help="finetune: unfreeze in this many steps, top first."),
    lr_factors: str = typer.Option("10,1,0.1", "--lr-factors", help="full and finetune: comma-separated factors "
                                   "on their learning rates; each is tried for one epoch and the best on validation "
                                   "trains on (1: no search)."),
    lora_rank: int = typer.Option(8, "--lora-rank", help="lora: rank of the adapters."),
    lora_alpha: float = typer.Option(16, "--lora-alpha", help="lora: adapter scale numerator (scaled by alpha / rank)."),
    lora_targets: Optional[str] = typer.Option(None, "--lora-targets", help="lora: comma-separated names of the layers "
                                               "to adapt, e.g. query,value (default: per architecture)."),
    label_descriptions: Optional[Path] = typer.Option(None, "--label-descriptions", help="zero_shot: a JSON, YAML or "
                                                      "CSV file mapping each label to a description to embed."),
    zero_shot_template: Optional[str] = typer.Option(None, "--zero-shot-template", help="zero_shot: prompt with {} "
                                                     "for the label, e.g. 'a review that is {}' (CLIP: 'a photo of a {}.')."),
    max_train: Optional[int] = typer.Option(None, "--max-train", help="Cap on training examples (stratified)."),
    max_val: Optional[int] = typer.Option(None, "--max-val", help="Cap on validation examples."),
    max_test: Optional[int] = typer.Option(None, "--max-test", help="Cap on test examples."),
    max_length: MaxLength = 256,
    image_size: ImageSize = 224,
    clip_seconds: ClipSeconds = 3.0,
    ood: Optional[Path] = typer.Option(None, "--ood", help="An out-of-distribution test set, same format and columns "
                                       "as DATA; every rung is scored on it."),
    target: Optional[float] = typer.Option(None, "--target", help="The test metric you need (e.g. 0.9): the learning "
                                           "curve estimates the labelled examples per class to reach it."),
    on_leakage: str = typer.Option("dedupe", "--on-leakage", help=LEAKAGE_HELP),
    no_audit: bool = typer.Option(False, "--no-audit", help="Skip the data audit (not recommended)."),
    no_corruptions: bool = typer.Option(False, "--no-corruptions", help="Skip the built-in corrupted copies of the test split."),
    top_k: Optional[int] = typer.Option(None, "--top-k", help="Train only the best k backbones by LogME "
                                        "(all of them still get the frozen rung)."),
    trust_remote_code: TrustRemoteCode = False,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output; print only the report path."),
    as_json: bool = typer.Option(False, "--json", help="Print results.json to stdout instead of the table."),
    mlflow: Optional[str] = typer.Option(None, "--mlflow", help="MLflow tracking URI (sqlite:///mlflow.db, "
                                         "file:./mlruns, http://host:5000): log the finished run there, one "
                                         "nested run per rung."),
    mlflow_experiment: str = typer.Option("transferlab", "--mlflow-experiment", help="MLflow experiment name."),
) -> None:
    """Run the ladder on your data and write results.json and report.html.

    Example:

        transferlab run reviews.csv --text-column review --label-column stars --backbone minilm

        transferlab run --config examples/spec.yaml reviews.csv --epochs 3 --mlflow sqlite:///mlflow.db

        transferlab run photos/ --backbone mobilenet_v2 --rungs majority,classical,frozen,finetune

        transferlab run --resume runs/photos-20261122-101500
    """
    kwargs = dict(backbones=list(backbone or []), text_column=text_column, label_column=label_column,
                  split_column=split_column, group_column=group_column, time_column=time_column, out=str(out) if out else None, seed=seed, epochs=epochs,
                  seeds=seeds, train_seeds=train_seeds, executor=executor, ray_address=ray_address, ray_gpus=ray_gpus,
                  threads=threads,
                  save_models=not no_save_models, learning_curve_trained=learning_curve_trained,
                  batch_size=batch_size, lr=lr, top_lr_ratio=top_lr_ratio, bottom_lr_ratio=bottom_lr_ratio,
                  unfreeze_stages=unfreeze_stages, lr_factors=lr_factors, max_train=max_train, max_val=max_val, max_test=max_test,
                  lora_rank=lora_rank, lora_alpha=lora_alpha, lora_targets=lora_targets,
                  label_descriptions=str(label_descriptions) if label_descriptions else None,
                  zero_shot_template=zero_shot_template,
                  max_length=max_length, image_size=image_size, clip_seconds=clip_seconds, trust_remote_code=trust_remote_code, top_k=top_k,
                  ood=str(ood) if ood else None, corruptions=not no_corruptions, target=target,
                  on_leakage=on_leakage, audit=not no_audit, mlflow=mlflow, mlflow_experiment=mlflow_experiment)
    if rungs is not None:
        kwargs["rungs"] = rungs
    if resume is not None:
        _execute(data, {"run_dir": resume}, quiet, as_json, mode="resume")
        return
    if config is not None:
        data, kwargs = _with_config(ctx, config, data, kwargs)
    if data is None:
        _fail("No data given. Pass DATA (a folder or a CSV/JSONL/Parquet file), or --config with a data: entry.", 2)
    _execute(data, kwargs, quiet, as_json)


@app.command()
def audit(
    data: Data,
    backbone: Optional[List[str]] = typer.Option(None, "--backbone", "-b", help="A backbone whose embeddings "
                                                 "find near-duplicates (optional; the first is used)."),
    text_column: TextColumn = None,
    label_column: LabelColumn = None,
    split_column: SplitColumn = None,
    group_column: GroupColumn = None,
    time_column: TimeColumn = None,
    on_leakage: str = typer.Option("warn", "--on-leakage", help=LEAKAGE_HELP + " (audit alone: warn)."),
    out: Out = None,
    seed: int = typer.Option(0, "--seed", help="Seed for the split."),
    max_length: MaxLength = 256,
    image_size: ImageSize = 224,
    clip_seconds: ClipSeconds = 3.0,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
    as_json: AsJson = False,
) -> None:
    """Audit the data before any training: duplicates and near-duplicates within and across splits,
    label conflicts, imbalance, label shift, and group or time overlap.

    Example:

        transferlab audit reviews.csv --text-column review --label-column stars --backbone minilm
    """
    kwargs = dict(backbones=list(backbone or []), text_column=text_column, label_column=label_column,
                  split_column=split_column, group_column=group_column, time_column=time_column,
                  on_leakage=on_leakage, out=str(out) if out else None, seed=seed, max_length=max_length,
                  image_size=image_size, clip_seconds=clip_seconds)
    _execute(data, kwargs, quiet, as_json, mode="audit")


@app.command()
def rank(
    data: Data,
    backbone: List[str] = typer.Option(..., "--backbone", "-b", help="Candidate base model (repeatable)."),
    text_column: TextColumn = None,
    label_column: LabelColumn = None,
    split_column: SplitColumn = None,
    group_column: GroupColumn = None,
    time_column: TimeColumn = None,
    out: Out = None,
    seed: int = typer.Option(0, "--seed", help="Seed for the split and the score subsample."),
    max_train: Optional[int] = typer.Option(None, "--max-train", help="Cap on training examples (stratified)."),
    max_length: MaxLength = 256,
    image_size: ImageSize = 224,
    clip_seconds: ClipSeconds = 3.0,
    trust_remote_code: TrustRemoteCode = False,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
    as_json: AsJson = False,
) -> None:
    """Rank candidate backbones by how well their frozen features fit your labels, next to their cost.

    Scores (LogME, H-score, kNN and linear-probe accuracy) use the training split only; no model
    is trained. The table is saved in the run directory's results.json under "ranking".

    Example:

        transferlab rank photos/ --backbone mobilenet_v2 --backbone efficientnet_lite0 --image-size 96
    """
    kwargs = dict(backbones=list(backbone), text_column=text_column, label_column=label_column,
                  split_column=split_column, group_column=group_column, time_column=time_column, out=str(out) if out else None, seed=seed, max_train=max_train,
                  max_length=max_length, image_size=image_size, clip_seconds=clip_seconds, trust_remote_code=trust_remote_code)
    _execute(data, kwargs, quiet, as_json, mode="rank")


@app.command()
def demo(
    modality: str = typer.Option("text", "--modality", help="text (fine-food reviews, MiniLM) or image "
                                 "(Animal-MNIST, MobileNetV2 and EfficientNet-Lite0)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory (default runs/demo-<modality>-<time>)."),
    rungs: Optional[str] = typer.Option(None, "--rungs", help=RUNGS_HELP),
    backbone: Optional[List[str]] = typer.Option(None, "--backbone", "-b", help="Override the demo's backbones."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Override the demo's epoch cap."),
    max_train: Optional[int] = typer.Option(None, "--max-train", help="Override the demo's training-set cap."),
    seed: int = typer.Option(0, "--seed", help="Seed."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
    as_json: AsJson = False,
) -> None:
    """Run the offline demo: real data, real pretrained models, no network.

    Example:

        transferlab demo                      # text: fine-food reviews with MiniLM

        transferlab demo --modality image     # Animal-MNIST with MobileNetV2 and EfficientNet-Lite0
    """
    from .demo import DEMOS, demo_data, demo_spec

    if modality not in DEMOS:
        _fail(f"--modality must be one of {', '.join(DEMOS)}; got '{modality}'.", 2)
    try:
        spec = demo_spec(modality, out=str(out) if out else None, name=f"demo-{modality}", seed=seed,
                         rungs=rungs, backbones=list(backbone) if backbone else None, epochs=epochs,
                         max_train=max_train)
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
    common_only: bool = typer.Option(False, "--common-only", help="If the test sets differ, compare on the test "
                                     "examples both runs share instead of stopping."),
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
    from .comparison import compare as _compare, print_comparison
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
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="A finished run directory (holding results.json and models/)."),
    rung: Optional[str] = typer.Option(None, "--rung", help="Rung to export, e.g. finetune:minilm (default: the "
                                       "run's recommended rung)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Artifact folder to write (default "
                                       "RUN_DIR/exported/<rung>)."),
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
    data: List[str] = typer.Argument(..., metavar="DATA...", help="A CSV/JSONL/Parquet file of texts, a folder of "
                                     "images, or image files."),
    out: Path = typer.Option(Path("predictions.csv"), "--out", "-o", help="CSV to write: origin, predicted label, "
                             "one probability per class."),
    text_column: TextColumn = None,
    label_column: Annotated[Optional[str], typer.Option("--label-column", help="Column with true labels (optional; "
                                                        "label/labels/class/target are found by name): prints "
                                                        "accuracy and macro-F1.")] = None,
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
