"""The HTML report and terminal summary render any valid results dict, safely and offline."""

from __future__ import annotations

import re

import pytest
from rich.console import Console

from transferlab.report import print_summary, render_html, summary_table, write_html
from transferlab.report.formatting import fmt_count, fmt_metric, fmt_quantity

XSS = "<script>alert(1)</script>"


def _metrics(acc, bal, f1):
    return {
        "accuracy": {"mean": acc, "ci": [acc - 0.04, acc + 0.04]},
        "balanced_accuracy": {"mean": bal, "ci": [bal - 0.03, bal + 0.03]},
        "macro_f1": {"mean": f1, "ci": [f1 - 0.02, f1 + 0.02]},
    }


def sample_results() -> dict:
    """A two-rung run shaped like ``transferlab.run/1``, with every optional section filled."""
    return {
        "schema": "transferlab.run/1",
        "task": {
            "modality": "text",
            "labels": ["great", "other"],
            "splits": {"train": 400, "val": 150, "test": 500},
            "source": "Amazon fine-food reviews",
        },
        "notes": ["Demo: training set subsampled to 400 of 4,000 reviews."],
        "audit": {"findings": []},
        "ranking": [],
        "rungs": [
            {
                "name": "majority", "strategy": "majority", "backbone": None, "seeds": [0],
                "test": {
                    **_metrics(0.65, 0.5, 0.39),
                    "per_class": {
                        "great": {"precision": 0.65, "recall": 1.0, "f1": 0.79, "support": 325},
                        "other": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 175},
                    },
                    "confusion_matrix": [[325, 0], [175, 0]],
                },
                "val": _metrics(0.65, 0.5, 0.39),
                "curves": {},
                "cost": {"fit_seconds": 0.001, "trainable_params": 0, "total_params": 0,
                         "predict_ms_per_item": 0.0001},
                "notes": [],
            },
            {
                "name": "finetune:minilm", "strategy": "finetune", "backbone": "minilm",
                "seeds": [0],
                "test": {
                    **_metrics(0.842, 0.8, 0.81),
                    "per_class": {
                        "great": {"precision": 0.88, "recall": 0.9, "f1": 0.89, "support": 325},
                        "other": {"precision": 0.78, "recall": 0.7, "f1": 0.74, "support": 175},
                    },
                    "confusion_matrix": [[292, 33], [52, 123]],
                },
                "val": _metrics(0.8, 0.78, 0.77),
                "curves": {
                    "epoch": [1, 2, 3, 4], "phase": ["head", "unfreeze 1/3", "unfreeze 2/3", "all"],
                    "train_loss": [0.6, 0.5, 0.4, 0.35], "train_metric": [0.7, 0.75, 0.8, 0.85],
                    "val_metric": [0.72, 0.78, 0.8, 0.79], "val_loss": [0.55, 0.5, 0.48, 0.5],
                    "best_epoch": 3, "metric": "accuracy",
                },
                "cost": {"fit_seconds": 95.2, "trainable_params": 22713602,
                         "total_params": 22713602, "predict_ms_per_item": 12.5},
                "notes": ["stopped early at epoch 4"],
            },
        ],
        "verdicts": ["Fine-tuning beats the majority baseline on macro-F1."],
        "recommendation": {"rung": "finetune:minilm", "why": "Best macro-F1 at acceptable cost."},
        "environment": {"transferlab": "0.1.0", "device": "cpu", "seed": 0, "python": "3.11.7"},
        "artifacts": {"split manifest": "split_manifest.csv", "results": "results.json"},
    }


@pytest.fixture
def results():
    return sample_results()


def test_report_has_every_section_in_order(results):
    html = render_html(results)
    headings = ["transferlab report", "Verdict", "Strategy ladder", "Rung details", "Environment"]
    positions = [html.index(h) for h in headings]
    assert positions == sorted(positions)
    assert 'class="ladder"' in html and 'class="per-class"' in html
    assert 'class="confusion"' in html and '<svg class="chart"' in html
    assert "<polyline" in html and "<details" in html
    assert "Demo: training set subsampled" in html
    assert '<a href="split_manifest.csv">' in html


def test_ladder_formats_metrics_costs_and_highlights_best(results):
    html = render_html(results)
    assert "0.842 [0.802, 0.882]" in html
    assert "22.7M / 22.7M" in html
    assert "95.2" in html and "&lt;0.001" in html
    best_rows = re.findall(r'<tr class="best">\s*<td><a href="#rung-(\d+)"', html)
    assert best_rows == ["1"]


def test_confusion_cells_are_shaded_by_row_share(results):
    html = render_html(results)
    assert "rgba(37, 99, 235, 1.000)" in html  # majority: every 'great' predicted 'great'
    assert "rgba(37, 99, 235, 0.898)" in html  # 292 / 325


def test_report_is_self_contained(results):
    html = render_html(results)
    assert "<script" not in html and "<link" not in html
    external = re.findall(r'(?:src|href)="(?:https?:)?//', html)
    assert external == []


def test_user_strings_are_escaped_everywhere(results):
    results["task"]["labels"] = [XSS, "R&D"]
    results["task"]["source"] = XSS
    results["notes"] = [XSS]
    results["rungs"][1]["backbone"] = "bert & friends"
    results["rungs"][1]["name"] = XSS
    results["rungs"][1]["test"]["per_class"] = {XSS: {"precision": 1.0}}
    results["rungs"][1]["curves"]["metric"] = XSS
    results["rungs"][1]["curves"]["phase"] = [XSS] * 4
    results["recommendation"] = {"rung": XSS, "why": '<img src=x onerror="alert(1)">'}
    results["verdicts"] = [{"text": XSS, "rung": XSS}]
    results["environment"]["device"] = XSS
    results["artifacts"] = {XSS: "javascript:alert(1)"}
    html = render_html(results)
    assert "<script>alert" not in html
    assert "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "bert &amp; friends" in html and "R&amp;D" in html
    assert 'href="javascript:' not in html


def test_optional_sections_may_be_missing(results):
    minimal = {
        "schema": "transferlab.run/1",
        "task": results["task"],
        "rungs": [{"name": "classical", "test": {"accuracy": {"mean": 0.7, "ci": None},
                                                 "macro_f1": {"mean": 0.6}}}],
        "environment": {},
        "verdicts": [],
        "audit": {},
    }
    html = render_html(minimal)
    assert "0.700" in html and "0.700 [" not in html
    assert "<svg" not in html and 'class="confusion"' not in html
    assert 'id="verdicts"' not in html and 'id="ranking"' not in html and 'id="audit"' not in html
    assert "No per-class metrics" in html


def test_curves_with_one_epoch_and_gaps(results):
    results["rungs"][1]["curves"] = {"epoch": [1], "train_metric": [0.7], "val_metric": [None],
                                     "train_loss": [None], "metric": "accuracy"}
    html = render_html(results)
    assert html.count('<svg class="chart"') == 1  # the loss chart has nothing to plot
    assert "<circle" in html and "nan" not in html.lower()

    results["rungs"][1]["curves"]["epoch"] = [1, 2, 3, 4, 5]
    results["rungs"][1]["curves"]["train_metric"] = [0.7, 0.72, None, 0.8, 0.82]
    assert render_html(results).count("<polyline") == 2  # the gap splits the line


def test_ranking_and_audit_sections(results):
    results["ranking"] = [
        {"backbone": "minilm", "scores": {"logme": 0.42, "knn": {"mean": 0.8, "ci": [0.7, 0.9]}},
         "params": 22713602, "items_per_second": 850.0, "pretrained_on": "1B sentence pairs",
         "licence": "apache-2.0"},
    ]
    results["audit"]["findings"] = [{"severity": "warning", "check": "duplicates",
                                     "message": "12 test items also occur in train"}]
    html = render_html(results)
    assert 'id="ranking"' in html and "0.800 [0.700, 0.900]" in html and "apache-2.0" in html
    assert 'id="audit"' in html and 'class="sev-warning"' in html and "12 test items" in html


def test_write_html_is_atomic_and_complete(results, tmp_path):
    target = tmp_path / "run" / "report.html"
    assert write_html(results, target) == target
    assert target.read_text(encoding="utf-8") == render_html(results)
    assert [p.name for p in target.parent.iterdir()] == ["report.html"]


def test_summary_table_has_one_row_per_rung(results):
    table = summary_table(results)
    assert table.row_count == len(results["rungs"])
    assert summary_table({"rungs": []}).row_count == 0


def test_print_summary_does_not_interpret_markup(results):
    results["rungs"][0]["name"] = "[bold]majority"
    console = Console(record=True, width=120)
    print_summary(results, console=console)
    text = console.export_text()
    assert "[bold]majority" in text
    assert "recommended: finetune:minilm" in text


def test_formatting():
    assert fmt_count(22713602) == "22.7M" and fmt_count(0) == "0" and fmt_count(None) == "—"
    assert fmt_metric({"mean": 0.842, "ci": [0.81, 0.871]}) == "0.842 [0.810, 0.871]"
    assert fmt_metric({"mean": float("nan")}) == "—"
    assert fmt_quantity(95.2) == "95.2" and fmt_quantity(1234.5) == "1,234"
