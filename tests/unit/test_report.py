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
                "name": "majority",
                "strategy": "majority",
                "backbone": None,
                "seeds": [0],
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
                "cost": {"fit_seconds": 0.001, "trainable_params": 0, "total_params": 0, "predict_ms_per_item": 0.0001},
                "notes": [],
            },
            {
                "name": "finetune:minilm",
                "strategy": "finetune",
                "backbone": "minilm",
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
                    "epoch": [1, 2, 3, 4],
                    "phase": ["head", "unfreeze 1/3", "unfreeze 2/3", "all"],
                    "train_loss": [0.6, 0.5, 0.4, 0.35],
                    "train_metric": [0.7, 0.75, 0.8, 0.85],
                    "val_metric": [0.72, 0.78, 0.8, 0.79],
                    "val_loss": [0.55, 0.5, 0.48, 0.5],
                    "best_epoch": 3,
                    "metric": "accuracy",
                },
                "cost": {
                    "fit_seconds": 95.2,
                    "trainable_params": 22713602,
                    "total_params": 22713602,
                    "predict_ms_per_item": 12.5,
                },
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
    headings = ["transferlab report", "Verdicts", "Recommendation", "Strategy ladder", "Rung details", "Environment"]
    positions = [html.index(h) for h in headings]
    assert positions == sorted(positions)
    assert 'class="ladder"' in html and 'class="per-class"' in html
    assert 'class="confusion"' in html and '<svg class="chart"' in html
    assert "<polyline" in html and "<details" in html
    assert "Demo: training set subsampled" in html
    assert '<a href="split_manifest.csv">' in html


def test_ladder_formats_metrics_costs_and_highlights_best(results):
    html = render_html(results)
    assert '0.842<span class="ci">[0.802, 0.882]</span>' in html
    assert "22.7M / 22.7M" in html
    assert "95.2 s" in html and "&lt;0.001" in html
    best_rows = re.findall(r'<tr class="best">\s*<td class="rung-name"><a href="#rung-(\d+)"', html)
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
        "rungs": [{"name": "classical", "test": {"accuracy": {"mean": 0.7, "ci": None}, "macro_f1": {"mean": 0.6}}}],
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
    results["rungs"][1]["curves"] = {
        "epoch": [1],
        "train_metric": [0.7],
        "val_metric": [None],
        "train_loss": [None],
        "metric": "accuracy",
    }
    html = render_html(results)
    assert html.count('<svg class="chart"') == 1  # the loss chart has nothing to plot
    assert "<circle" in html and "nan" not in html.lower()

    results["rungs"][1]["curves"]["epoch"] = [1, 2, 3, 4, 5]
    results["rungs"][1]["curves"]["train_metric"] = [0.7, 0.72, None, 0.8, 0.82]
    assert render_html(results).count("<polyline") == 2  # the gap splits the line


def test_ranking_and_audit_sections(results):
    results["ranking"] = [
        {
            "backbone": "minilm",
            "scores": {"logme": 0.42, "knn": {"mean": 0.8, "ci": [0.7, 0.9]}},
            "params": 22713602,
            "items_per_second": 850.0,
            "pretrained_on": "1B sentence pairs",
            "licence": "apache-2.0",
        },
    ]
    results["audit"]["findings"] = [
        {"severity": "warning", "check": "duplicates", "message": "12 test items also occur in train"}
    ]
    html = render_html(results)
    assert 'id="ranking"' in html and "0.800 [0.700, 0.900]" in html and "apache-2.0" in html
    assert 'id="audit"' in html and 'class="card sev-warning"' in html and "12 test items" in html


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


def _comparison(a="finetune:minilm", b="majority", delta=0.031, ci=(-0.004, 0.066), p=0.09):
    return {
        "a": a,
        "b": b,
        "metric": "accuracy",
        "delta": delta,
        "ci": list(ci),
        "p_value": p,
        "significant": p < 0.05,
        "mcnemar_p": 0.12,
    }


def _verdict(code, severity, message, **evidence):
    return {
        "code": code,
        "severity": severity,
        "rungs": ["finetune:minilm"],
        "message": message,
        "action": f"act on {code}",
        "evidence": evidence,
    }


def _section(html: str, name: str) -> str:
    return html[html.index(f'<section id="{name}">') :].split("</section>", 1)[0]


def test_verdicts_first_sorted_by_severity_with_evidence(results):
    results["verdicts"] = [
        _verdict("within_noise", "info", "Too close to call.", comparison=_comparison()),
        _verdict("overfitting", "warning", "It overfits.", gaps=[0.01, 0.2]),
        _verdict("negative_transfer", "error", "Transfer hurt."),
        "A plain verdict from an older file.",
    ]
    html = render_html(results)
    verdicts = _section(html, "verdicts")
    codes = [verdicts.index(c) for c in ("negative_transfer", "overfitting", "within_noise", "A plain verdict")]
    assert codes == sorted(codes)
    assert html.index('id="verdicts"') < html.index('id="recommendation"') < html.index('id="ladder"')
    assert '<article class="card sev-error">' in verdicts and '<span class="sev">warning</span>' in verdicts
    assert "<strong>What to do:</strong> act on overfitting" in verdicts
    assert "Δ accuracy +0.031 [−0.004, +0.066], p = 0.09; McNemar p = 0.12" in verdicts
    assert "(paired bootstrap on the same test examples)" in verdicts
    assert "finetune:minilm − majority" in verdicts and '<a href="#rung-1">finetune:minilm</a>' in verdicts
    assert '<details class="more"><summary>Evidence</summary>' in verdicts
    assert "<dt>gaps</dt><dd><code>[0.01, 0.2]</code></dd>" in verdicts


def test_verdict_fields_are_escaped(results):
    results["verdicts"] = [
        {
            "code": XSS,
            "severity": XSS,
            "rungs": [XSS],
            "message": XSS,
            "action": XSS,
            "evidence": {"comparison": _comparison(a=XSS), XSS: {"label": XSS}},
        }
    ]
    html = render_html(results)
    assert "<script>alert" not in html
    assert _section(html, "verdicts").count("&lt;script&gt;") >= 6


def test_recommendation_names_the_rungs_within_noise(results):
    results["recommendation"]["within_noise_of_best"] = ["finetune:minilm", "majority"]
    html = _section(render_html(results), "recommendation")
    assert "Within noise of the best on validation: finetune:minilm, majority" in html
    assert '<a href="#rung-1">finetune:minilm</a>' in html


def test_recommendation_shows_the_validation_comparisons_that_chose_it(results):
    results["recommendation"]["evidence"] = [
        {**_comparison(a="finetune:minilm", b="classical", delta=0.017, ci=(-0.02, 0.05), p=0.4), "outcome": "kept"}
    ]
    html = _section(render_html(results), "recommendation")
    assert "Comparisons on validation, cheapest rung first" in html
    assert "finetune:minilm − classical" in html and "Δ accuracy +0.017" in html and "(kept the cheaper)" in html


def _undecided(results: dict) -> dict:
    """The run of a time split whose test lost a class: an error verdict and no recommendation."""
    results["verdicts"] = [
        _verdict("within_noise", "info", "An older verdict."),
        {
            "code": "test_cannot_decide",
            "severity": "error",
            "rungs": [],
            "action": "Split so that every class is in test.",
            "message": "The test split cannot compare rungs: all 500 test examples are 'great'.",
            "evidence": {"counts": {"great": 500, "other": 0}},
        },
    ]
    results["recommendation"] = {
        "rung": None,
        "why": "No recommendation: the test split cannot compare rungs.",
        "metric": "accuracy",
        "within_noise_of_best": ["finetune:minilm"],
        "evidence": [],
        "validation_choice": "finetune:minilm",
    }
    return results


def test_a_test_that_cannot_decide_is_an_error_in_the_report_and_no_rung_is_best(results):
    html = render_html(_undecided(results))
    verdicts, rec, ladder = (_section(html, name) for name in ("verdicts", "recommendation", "ladder"))
    assert verdicts.index("test_cannot_decide") < verdicts.index("within_noise")
    assert '<article class="card sev-error no-recommendation">' in rec
    assert "No recommendation: the test split cannot compare rungs." in rec and "Recommended rung" not in rec
    assert "This test split cannot compare rungs" in ladder and 'class="best"' not in ladder
    assert "best F1" not in ladder and "highlighted" not in ladder


def test_a_test_that_cannot_decide_is_printed_before_the_ladder(results):
    console = Console(record=True, width=120)
    print_summary(_undecided(results), console=console)
    text = console.export_text()
    assert text.index("The test split cannot compare rungs") < text.index("transferlab ladder (test set: it cannot")
    assert text.count("The test split cannot compare rungs: all 500") == 1
    assert "no recommendation: the test split cannot compare rungs." in text and "recommended:" not in text


def _candidate(name, logme, params, achieved=None):
    out = {
        "backbone": name,
        "scores": {
            "logme": logme,
            "hscore": 0.9,
            "hscore_shrinkage": 0.5,
            "knn_accuracy": 0.6,
            "linear_probe_accuracy": 0.62,
        },
        "score_seconds": 1.5,
        "params": params,
        "feature_dim": 384,
        "items_per_second": 40.0,
        "features_from_cache": False,
        "pretrained_on": "web text",
        "licence": "mit",
        "source": name,
    }
    if achieved:
        out["achieved_test_accuracy"] = achieved
    return out


def test_ranking_with_one_candidate_draws_one_point(results):
    results["ranking"] = [_candidate("minilm", -0.676, 22713216)]
    html = render_html(results)
    ranking = _section(html, "ranking")
    assert "Candidate backbones" in ranking and '<table class="ranking">' in ranking
    assert "<dt>LogME</dt>" in ranking and "higher is better" in ranking
    assert ranking.count('<svg class="chart"') == 1 and ranking.count('<circle class="dot"') == 1
    assert "parameters (log scale)" in ranking and "nan" not in ranking.lower()
    assert 'class="num top"' not in ranking  # nothing to beat


def test_ranking_with_three_candidates_plots_cost_and_outcome(results):
    results["ranking"] = [
        _candidate("mpnet", -0.61, 109482240, {"frozen": 0.78}),
        _candidate("minilm", -0.676, 22713216, {"frozen": 0.74, "full": 0.83}),
        _candidate(XSS, -0.7, 4385920, {"frozen": 0.7}),
    ]
    ranking = _section(render_html(results), "ranking")
    assert ranking.count('<svg class="chart"') == 2 and ranking.count('<circle class="dot"') == 6
    assert "parameters (log scale)" in ranking
    assert "LogME against the best test accuracy reached" in ranking
    assert '0.830<span class="ci">full</span>' in ranking and '<td class="num top">-0.610</td>' in ranking
    assert "<script>" not in ranking and "&lt;script&gt;" in ranking

    results["ranking"][2]["params"] = None  # every candidate still gets a point, placed by speed
    ranking = _section(render_html(results), "ranking")
    assert "seconds per item (log scale)" in ranking and ranking.count('<circle class="dot"') == 6


def test_audit_pairs_show_only_png_data_thumbnails(results):
    png = (
        "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9a"
        "wAAAABJRU5ErkJggg=="
    )
    side = {"index": 3, "split": "train", "origin": "cats/1.png", "label": "cat"}
    bad = ["javascript:alert(1)", "data:text/html;base64,PHNjcmlwdD4=", png + '" onerror="alert(1)']
    results["audit"]["findings"] = [
        {
            "check": "near_duplicates",
            "severity": "error",
            "count": 4,
            "message": "Near copies across splits.",
            "examples": [
                {
                    "a": {**side, "thumbnail": png},
                    "b": {**side, "split": "test", "text": XSS},
                    "similarity": 0.97,
                    "kind": "near",
                }
            ]
            + [{"a": side, "b": {**side, "thumbnail": t}, "kind": "near"} for t in bad],
        },
        {
            "check": "class_imbalance",
            "severity": "warning",
            "count": 1,
            "message": "Imbalanced.",
            "examples": [{"label": "cat", "train": 12}],
        },
    ]
    audit = _section(render_html(results), "audit")
    assert audit.count("<img") == 1 and f'<img class="thumb" src="{png}"' in audit
    assert "javascript:" not in audit and "data:text/html" not in audit and "onerror" not in audit
    assert audit.count('<tr class="pair-meta">') == 4 and "nearly identical · similarity 0.970" in audit
    assert "<blockquote>&lt;script&gt;" in audit and "train · cat · #3" in audit
    assert "<li>label: cat · train: 12</li>" in audit
    assert audit.index("near_duplicates") < audit.index("class_imbalance")


def test_removed_pairs_section_shows_each_copy_next_to_what_it_duplicated(results):
    png = (
        "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9a"
        "wAAAABJRU5ErkJggg=="
    )
    assert 'id="removed"' not in render_html(results)  # nothing removed: no section
    copy = {"index": 7, "split": "train", "origin": "cats/7.png", "label": "cat", "thumbnail": png}
    kept = {"index": 40, "split": "test", "origin": "cats/40.png", "label": "cat", "thumbnail": "javascript:alert(1)"}
    results["audit"]["removed"] = [
        {"a": copy, "b": kept, "similarity": 0.93, "kind": "near", "method": "perceptual hash"},
        {
            "a": {**copy, "origin": XSS, "text": XSS, "thumbnail": None},
            "b": {**kept, "text": "kept text"},
            "similarity": 1.0,
            "kind": "exact",
            "method": "exact",
        },
    ]
    results["audit"]["dedupe"] = {
        "removed": {"train": 30, "val": 2},
        "share": {"train": 0.25, "val": 0.02},
        "max_share": 0.05,
        "over_max_share": True,
        "confirmed": True,
    }
    html = render_html(results)
    removed = _section(html, "removed")
    assert html.index('<section id="removed">') > html.index("Strategy ladder")
    assert "Removed copy" in removed and "Kept example it duplicated" in removed
    assert (
        "removed 30 training examples (25.0% of the split) and 2 validation examples (2.0% of the split), "
        "more than it removes without asking"
    ) in removed
    assert "as confirmed (--confirm-dedupe)" in removed and "the first 2 of 32 removed copies" in removed
    assert removed.count('<tr class="pair-meta">') == 2
    assert "nearly identical · similarity 0.930 · method: perceptual hash" in removed
    assert "identical · similarity 1.000 · method: exact" in removed
    assert removed.count("<img") == 1 and f'<img class="thumb" src="{png}"' in removed
    assert "javascript:" not in removed and "<script>" not in removed
    assert '<code class="origin">&lt;script&gt;' in removed and "<blockquote>kept text</blockquote>" in removed
    assert removed.index("cats/7.png") < removed.index("cats/40.png")  # the copy first, then what it duplicated


def test_ladder_fits_with_ece_and_embedding_time(results):
    results["rungs"][1]["test"]["ece"] = 0.0412
    results["rungs"][1]["cost"]["extract_seconds"] = 18.0
    ladder = _section(render_html(results), "ladder")
    header = ladder[ladder.index("<thead>") : ladder.index("</thead>")]
    assert len(re.findall(r"<th[ >]", header)) <= 9 and ">ECE</th>" in header
    assert '<td class="num">0.041</td>' in ladder and '95.2 s<span class="ci">+ 18 s embed</span>' in ladder
    assert "<td>finetune</td>" not in ladder  # strategy and backbone are in the name

    del results["rungs"][1]["test"]["ece"]
    assert ">ECE</th>" not in render_html(results)


@pytest.mark.parametrize("width", [80, 120])
def test_print_summary_fits_the_terminal(results, width):
    results["ranking"] = [_candidate("minilm", -0.676, 22713216), _candidate("x" * 60, -0.7, 4385920)]
    results["verdicts"] = [
        "plain",
        _verdict("overfitting", "warning", "It overfits."),
        _verdict("negative_transfer", "error", "Transfer hurt."),
    ]
    results["recommendation"]["within_noise_of_best"] = ["finetune:minilm"]
    console = Console(record=True, width=width)
    print_summary(results, console=console)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= width
    assert "-0.676" in text and "22.7M" in text  # numbers are never cut short
    assert text.index("Transfer hurt.") < text.index("It overfits.") < text.index("plain")
    assert "→ act on overfitting" in text and "No other rung is within noise" in text


def test_small_numbers_such_as_learning_rates_are_not_rounded_to_zero():
    from transferlab.report.formatting import compact_json, display

    assert display(1e-5) == "1e-05" and display(0.12345) == "0.123" and display(0.0) == "0.000"
    assert compact_json({"lr": 1e-5, "val": 0.87654}) == '{"lr": 1e-05, "val": 0.8765}'
