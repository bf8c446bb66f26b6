"""A new run against an earlier one, on the same held-out test examples.

Both run directories hold ``results.json`` and ``split_manifest.csv``. The manifest's test rows,
in order, are the examples behind every rung's ``predictions.test``, so the two runs are paired
example by example through the sha256 of each example's content. Deltas are B minus A (A the
earlier run, B the new one), each with a paired bootstrap interval and p-value; accuracy also
gets McNemar's exact test.
"""

from __future__ import annotations

import csv
import difflib
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError, DataError
from .results import RunResults, load_run

SCHEMA = "transferlab.compare/1"
METRICS = ("accuracy", "balanced_accuracy", "macro_f1")


def _test_rows(run: RunResults) -> list[tuple[str, str]]:
    """(sha256, label name) of every test example, in the order of the rungs' test predictions."""
    path = run.path / "split_manifest.csv"
    if not path.is_file():
        raise DataError(
            f"No split_manifest.csv in '{run.path}'. Pass a finished run directory written by "
            f"transferlab run (it holds results.json and split_manifest.csv)."
        )
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"split", "label", "sha256"} - set(reader.fieldnames or [])
        if missing:
            raise DataError(
                f"{path} has no column {', '.join(sorted(missing))}; it is not a transferlab split manifest."
            )
        rows = [(r["sha256"], r["label"]) for r in reader if r["split"] == "test"]
    n = run["task"]["splits"].get("test")
    if n is not None and n != len(rows):
        raise DataError(
            f"{path} lists {len(rows)} test examples but {run.path / 'results.json'} reports {n}. "
            f"The run directory was changed after the run; compare unmodified runs."
        )
    return rows


def _keys(rows: list[tuple[str, str]]) -> list[tuple[str, int]]:
    """(sha256, occurrence): a test set may hold the same content twice, and each copy pairs once."""
    seen: Counter = Counter()
    keys = []
    for h, _ in rows:
        keys.append((h, seen[h]))
        seen[h] += 1
    return keys


def align_test_sets(
    rows_a: list[tuple[str, str]], rows_b: list[tuple[str, str]], *, common_only: bool
) -> dict[str, Any]:
    """Positions in A and in B of the examples both test sets hold with the same label."""
    keys_a, keys_b = _keys(rows_a), _keys(rows_b)
    where_b = {k: i for i, k in enumerate(keys_b)}
    pos_a, pos_b, relabelled = [], [], 0
    for i, k in enumerate(keys_a):
        j = where_b.get(k)
        if j is None:
            continue
        if rows_a[i][1] != rows_b[j][1]:
            relabelled += 1
            continue
        pos_a.append(i)
        pos_b.append(j)
    info = {
        "n_a": len(rows_a),
        "n_b": len(rows_b),
        "common": len(pos_a),
        "relabelled": relabelled,
        "same": len(pos_a) == len(rows_a) == len(rows_b),
    }
    if not info["same"] and not common_only:
        raise DataError(
            f"The two runs were tested on different examples: A has {len(rows_a)} test examples, B has "
            f"{len(rows_b)}, {len(pos_a) + relabelled} are the same content in both"
            + (f" ({relabelled} of them with a different label)" if relabelled else "")
            + ". A paired comparison needs the same test set: rerun one with the other's split "
            "(--split-column), or pass --common-only to compare on the common examples only."
        )
    if not pos_a:
        raise DataError(
            f"The two runs have no test example in common (A: {len(rows_a)}, B: {len(rows_b)}); "
            f"there is nothing to compare."
        )
    return {**info, "pos_a": np.array(pos_a), "pos_b": np.array(pos_b)}


def _label_map(a: RunResults, b: RunResults) -> np.ndarray:
    """B's class index -> A's class index, matched by label name."""
    labels_a, labels_b = [str(x) for x in a["task"]["labels"]], [str(x) for x in b["task"]["labels"]]
    if set(labels_a) != set(labels_b):
        only_a = sorted(set(labels_a) - set(labels_b))
        only_b = sorted(set(labels_b) - set(labels_a))
        raise DataError(
            f"The two runs have different labels (only in A: {', '.join(only_a) or 'none'}; only in "
            f"B: {', '.join(only_b) or 'none'}). Compare runs of the same classification task."
        )
    return np.array([labels_a.index(x) for x in labels_b])


def _pick_rung(run: RunResults, name: str, side: str) -> dict:
    names = [r["name"] for r in run["rungs"]]
    if name in names:
        return run.rung(name)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise ConfigError(
        f"No rung '{name}' in run {side} ({run.path}); its rungs: {', '.join(names) or 'none'}."
        f"{hint} Pass --rung-{side.lower()} with one of them."
    )


def _pairs(a: RunResults, b: RunResults, rung_a: str | None, rung_b: str | None) -> list[tuple[dict, dict]]:
    """The pair asked for, or each run's recommended rung plus every rung name both runs have."""
    for run, side in ((a, "A"), (b, "B")):
        if not run["rungs"]:
            raise DataError(
                f"Run {side} ({run.path}) has no rungs (an audit or rank run); compare finished transferlab runs."
            )
    if rung_a or rung_b:
        return [(_pick_rung(a, rung_a or rung_b, "A"), _pick_rung(b, rung_b or rung_a, "B"))]
    names: list[tuple[str, str]] = []
    rec_a, rec_b = (a.get("recommendation") or {}).get("rung"), (b.get("recommendation") or {}).get("rung")
    if rec_a and rec_b:
        names.append((rec_a, rec_b))
    names_b = {r["name"] for r in b["rungs"]}
    names += [(r["name"], r["name"]) for r in a["rungs"] if r["name"] in names_b]
    if not names:
        raise ConfigError(
            f"The runs share no rung name (A: {', '.join(r['name'] for r in a['rungs'])}; B: "
            f"{', '.join(sorted(names_b))}). Pass --rung-a NAME --rung-b NAME to pick a pair."
        )
    return [(a.rung(x), b.rung(y)) for x, y in dict.fromkeys(names)]


def _predictions(rung: dict, side: str, n: int) -> np.ndarray:
    predictions = rung.get("predictions") or {}
    pred = np.asarray(predictions.get("test_seeds", predictions.get("test", [])), dtype=np.int64)
    if pred.shape[-1:] != (n,):
        raise DataError(
            f"Rung '{rung['name']}' of run {side} has {pred.shape[-1] if pred.ndim else 0} test "
            f"predictions for {n} test examples; its results.json is incomplete or was changed."
        )
    return pred  # (N,), or (S, N) for a rung run with S seeds (the metric is then the mean over seeds)


def _compare_pair(
    rung_a: dict,
    rung_b: dict,
    y: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    n_classes: int,
    n_resamples: int,
    seed: int,
) -> dict:
    from .evaluation import mcnemar, paired_bootstrap, score

    def value(metric: str, pred: np.ndarray) -> float:
        return float(np.mean([score(metric, y, p) for p in np.atleast_2d(pred)]))

    metrics = {}
    for m in METRICS:
        c = paired_bootstrap(y, pred_b, pred_a, m, n_classes=n_classes, n_resamples=n_resamples, seed=seed)
        metrics[m] = {
            "a": value(m, pred_a),
            "b": value(m, pred_b),
            "delta": c["delta"],
            "ci": c["ci"],
            "p_value": c["p_value"],
            "significant": c["significant"],
            "verdict": ("better" if c["delta"] > 0 else "worse") if c["significant"] else "within noise",
        }
    first_a, first_b = np.atleast_2d(pred_a)[0], np.atleast_2d(pred_b)[0]
    return {
        "a": rung_a["name"],
        "b": rung_b["name"],
        "n": int(len(y)),
        "metrics": metrics,
        "mcnemar_p": mcnemar(y, first_b, first_a),
        "changed_predictions": int((first_a != first_b).sum()),
    }


def compare(
    run_a: str | Path | RunResults,
    run_b: str | Path | RunResults,
    *,
    rung_a: str | None = None,
    rung_b: str | None = None,
    common_only: bool = False,
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict:
    """Compare run B (new) with run A (earlier) on the test examples they share.

    Returns a JSON-ready dict (schema ``transferlab.compare/1``): both runs, how their test sets
    line up, and per rung pair the metrics of A and B, ``delta`` = B - A with its 95% paired
    bootstrap interval, p-value and verdict (better, worse, within noise), and McNemar's p.
    """
    a = run_a if isinstance(run_a, RunResults) else load_run(run_a)
    b = run_b if isinstance(run_b, RunResults) else load_run(run_b)
    if a["task"]["modality"] != b["task"]["modality"]:
        raise DataError(
            f"Run A is on {a['task']['modality']} data and run B on {b['task']['modality']} data; "
            f"compare runs of the same task."
        )
    label_map = _label_map(a, b)
    rows_a = _test_rows(a)
    test = align_test_sets(rows_a, _test_rows(b), common_only=common_only)
    pos_a, pos_b = test.pop("pos_a"), test.pop("pos_b")
    labels = [str(x) for x in a["task"]["labels"]]
    y = np.array([labels.index(rows_a[i][1]) for i in pos_a])
    pairs = []
    for ra, rb in _pairs(a, b, rung_a, rung_b):
        pred_a = _predictions(ra, "A", test["n_a"])[..., pos_a]
        pred_b = label_map[_predictions(rb, "B", test["n_b"])[..., pos_b]]  # in A's label order
        pairs.append(_compare_pair(ra, rb, y, pred_a, pred_b, len(labels), n_resamples, seed))
    describe = lambda r: {
        "path": str(r.path),
        "source": r["task"].get("source"),  # noqa: E731
        "recommended": (r.get("recommendation") or {}).get("rung"),
    }
    return {"schema": SCHEMA, "a": describe(a), "b": describe(b), "labels": labels, "test": test, "pairs": pairs}


def print_comparison(comparison: dict, console=None) -> None:
    """A compact rich table: one row per rung pair and metric; intervals on a dim second line."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = console or Console()
    t = comparison["test"]
    scope = (
        f"the same {t['common']} test examples"
        if t["same"]
        else f"the {t['common']} test examples both share (A has {t['n_a']}, B has {t['n_b']})"
    )
    table = Table(
        title=f"B - A on {scope}",
        box=box.SIMPLE_HEAD,
        header_style="bold",
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )
    for col, justify in (
        ("rung", "left"),
        ("metric", "left"),
        ("A", "right"),
        ("B", "right"),
        ("B - A", "right"),
        ("p", "right"),
        ("", "left"),
    ):
        table.add_column(col, justify=justify)
    style = {"better": "green", "worse": "red", "within noise": "dim"}
    short = {"accuracy": "acc.", "balanced_accuracy": "bal. acc.", "macro_f1": "macro-F1"}
    for k, pair in enumerate(comparison["pairs"]):
        rung = pair["a"] if pair["a"] == pair["b"] else f"{pair['a']}\n-> {pair['b']}"
        for j, (m, c) in enumerate(pair["metrics"].items()):
            delta = Text(f"{c['delta']:+.3f}")
            delta.append(f"\n{c['ci'][0]:+.3f}, {c['ci'][1]:+.3f}", style="dim")
            p = Text(f"{c['p_value']:.3f}" if c["p_value"] >= 0.001 else "<0.001")
            if m == "accuracy":
                p.append(f"\nMcN {pair['mcnemar_p']:.3f}", style="dim")
            table.add_row(
                Text(rung if j == 0 else ""),
                short.get(m, m),
                f"{c['a']:.3f}",
                f"{c['b']:.3f}",
                delta,
                p,
                Text(c["verdict"], style=style[c["verdict"]]),
                end_section=j == len(pair["metrics"]) - 1 and k < len(comparison["pairs"]) - 1,
            )
    console.print(f"A: {comparison['a']['path']}\nB: {comparison['b']['path']}")
    console.print(table)
    console.print(
        Text(
            "B - A with its 95% paired bootstrap interval; p: paired bootstrap (McN: McNemar's exact "
            "test on accuracy).",
            style="dim",
        )
    )


__all__ = ["compare", "align_test_sets", "print_comparison"]
