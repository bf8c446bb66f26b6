"""The HTML report opened in a real browser: Debian's headless Chromium.

Two reports: one from a real small run (the packaged MiniLM, with audit findings,
training curves, a learning curve, OOD drops and a ranking), and one from a results.json crafted
with hostile strings. Chromium dumps the DOM it built and logs every console message to stderr;
the report has no JavaScript, so any console line means something ran or broke. A control page
with a script proves that the console capture sees what it must.

Set TRANSFERLAB_REPORT_SCREENSHOT=docs/report.png to also save the real run's screenshot there
(resized for the docs).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

import transferlab
from transferlab.data import from_arrays
from transferlab.report import write_html

pytestmark = pytest.mark.integration

SECTIONS = ["verdicts", "recommendation", "ladder", "rungs", "learning-curve", "ranking", "ood", "audit", "environment"]
VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
    "circle",
    "line",
    "polyline",
    "polygon",
    "rect",
    "path",
}  # SVG shapes are self-closed in the dump
XSS = "<script>alert(1)</script>"
XSS_LOG = '<script>console.error("XSS-RAN")</script>'
XSS_IMG = "<img src=x onerror=\"console.error('XSS-RAN')\">"
QUOTES = "\"double\" 'single' `back` </td></tr></table>"
UNICODE = "naïve café 日本語 עברית \u202eRTL\u202c zero\u200bwidth e\u0301 🧪🐱"
LONG = "a-very-long-label-" * 30


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail(
            "chromium is not installed, and the report must be checked in a real browser. "
            "Run `make system-deps` (installs Debian's chromium and espeak-ng)."
        )
    return path


def _run_chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"  # one profile per call: no lock sharing
    cmd = [
        chromium(),
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--enable-logging=stderr",
        "--v=0",
        f"--user-data-dir={profile}",
        *args,
    ]
    # a script calling alert() would block the page: the timeout turns that into a failure too
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True)


def console_messages(stderr: str) -> list[str]:
    """Chromium's console log lines (``INFO:CONSOLE``), including uncaught exceptions."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def browse(html: Path, tmp: Path) -> tuple[str, list[str]]:
    """The DOM Chromium built from the file, and its console messages."""
    done = _run_chromium(tmp, "--dump-dom", html.resolve().as_uri())
    return done.stdout, console_messages(done.stderr)


def screenshot(html: Path, png: Path, tmp: Path, height: int = 4000) -> Path:
    _run_chromium(
        tmp, f"--screenshot={png}", f"--window-size=1280,{height}", "--hide-scrollbars", html.resolve().as_uri()
    )
    return png


class Dom(HTMLParser):
    """What the tests need from a dumped DOM: element ids in order, scripts, event handlers,
    external references, the text, and whether every element was closed in order."""

    def __init__(self, markup: str):
        super().__init__(convert_charrefs=True)
        self.ids, self.tags, self.handlers, self.refs, self.text, self.errors = [], [], [], [], [], []
        self._open: list[str] = []
        self.feed(markup)
        self.close()
        if self._open:
            self.errors.append(f"unclosed: {self._open}")

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name == "id":
                self.ids.append(value)
            if name.startswith("on"):
                self.handlers.append((tag, name, value))
            if name in ("src", "href"):
                self.refs.append(value or "")
        if tag not in VOID:
            self._open.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self._open.pop()

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self._open or self._open[-1] != tag:
            self.errors.append(f"</{tag}> closes {self._open[-1:] or 'nothing'}")
            return
        self._open.pop()

    def handle_data(self, data):
        self.text.append(data)

    @property
    def all_text(self) -> str:
        return "".join(self.text)


def assert_sound(dom: Dom, console: list[str]):
    """Well-formed, no console output, nothing that runs, nothing fetched from the network."""
    assert dom.errors == [], dom.errors[:5]
    assert console == [], console[:5]
    assert "script" not in dom.tags and dom.handlers == []
    assert [r for r in dom.refs if r.lower().startswith(("http:", "https:", "//", "javascript:"))] == []
    assert [r for r in dom.refs if r.startswith("data:") and not r.startswith("data:image/png;base64,")] == []


def assert_not_blank(png: Path, min_colours: int = 20) -> None:
    from PIL import Image

    assert png.exists() and png.stat().st_size > 20_000
    with Image.open(png) as im:
        rgb = np.asarray(im.convert("RGB"))
    assert rgb.shape[1] == 1280
    colours = np.unique(rgb.reshape(-1, 3)[::7], axis=0)
    inked = (rgb.min(axis=2) < 200).mean()  # share of pixels that are not white or near it
    assert len(colours) >= min_colours and inked > 0.01, (len(colours), inked)


def test_console_capture_sees_script_errors(tmp_path):
    """The control: without it, 'no console messages' could mean the capture is broken."""
    page = tmp_path / "control.html"
    page.write_text('<!DOCTYPE html><p id="x">x</p><script>console.error("control-error"); nope();</script>')
    dom_text, console = browse(page, tmp_path)
    assert any("control-error" in line for line in console), console
    assert any("Uncaught ReferenceError" in line for line in console), console
    assert "script" in Dom(dom_text).tags


# --- a real small run ------------------------------------------------------------------------------

POSITIVE = ["great", "delicious", "love", "excellent", "tasty", "perfect", "fresh", "wonderful"]
NEGATIVE = ["awful", "stale", "hate", "terrible", "bland", "broken", "rotten", "disappointing"]
FILLER = ["the", "a", "this", "product", "was", "really", "and", "it", "i", "box", "taste", "very"]


def _reviews(n: int, seed: int) -> tuple[list[str], list[str]]:
    """Short reviews with one telling word among filler, and 8% of the labels flipped: hard enough
    that the rungs differ."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        label = ["pos", "neg"][i % 2]
        words = list(rng.choice(FILLER, size=7)) + [rng.choice(POSITIVE if label == "pos" else NEGATIVE)]
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(label if rng.random() > 0.08 else {"pos": "neg", "neg": "pos"}[label])
    return texts, labels


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("real-run")
    texts, labels = _reviews(200, seed=0)
    texts += texts[:8]  # copies that the split scatters: the audit must find cross-split duplicates
    labels += labels[:8]
    ood_texts, ood_labels = _reviews(40, seed=1)
    import pandas as pd

    pd.DataFrame({"text": [t.upper() + " !!" for t in ood_texts], "label": ood_labels}).to_csv(
        tmp / "shouting.csv", index=False
    )
    results = transferlab.run(
        from_arrays(texts, labels),
        backbones=["minilm"],
        rungs="majority,classical,frozen,finetune",
        epochs=1,
        head_epochs=3,
        max_length=24,
        seeds=2,
        ood_max_items=40,
        ood=str(tmp / "shouting.csv"),
        cache_dir=str(tmp / "cache"),
        out=str(tmp / "run"),
        quiet=True,
    )
    return Path(results.path), tmp


def test_real_run_report_in_chromium(real_run):
    run, tmp = real_run
    results = json.loads((run / "results.json").read_text())
    dom_text, console = browse(run / "report.html", tmp)
    dom = Dom(dom_text)
    assert_sound(dom, console)
    order = [i for i in dom.ids if i in SECTIONS]
    assert order == SECTIONS, order  # every section, in reading order
    text = dom.all_text
    assert "Strategy ladder" in text and "Learning curve" in text and "Robustness under distribution shift" in text
    frozen = results["rungs"][[r["name"] for r in results["rungs"]].index("frozen:minilm")]
    lo, hi = frozen["test"]["accuracy"]["ci"]
    assert f"[{lo:.3f}, {hi:.3f}]" in text  # the ladder's intervals come from results.json
    assert "Train − validation accuracy" in text  # the gap of a fine-tuned rung
    assert "shouting.csv" in text and "truncation" in text  # the user's OOD set and a corruption
    assert any(f["check"] == "exact_duplicates" for f in results["audit"]["findings"])
    assert "blockquote" in dom.tags and dom.tags.count("svg") >= 4
    png = screenshot(run / "report.html", tmp / "real.png", tmp)
    assert_not_blank(png)
    target = os.environ.get("TRANSFERLAB_REPORT_SCREENSHOT")
    if target:
        _save_for_docs(png, Path(target))


def _save_for_docs(png: Path, target: Path, width: int = 760, height: int = 3400) -> None:
    """The top of the page, scaled down and quantised to a small PNG for the README."""
    from PIL import Image

    with Image.open(png) as im:
        top = im.convert("RGB").crop((0, 0, 1280, min(height, im.height)))
        small = top.resize((width, round(top.height * width / 1280)), Image.LANCZOS)
        small.quantize(colors=96, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)


# --- hostile strings ---------------------------------------------------------------------------------


def hostile_results() -> dict:
    """A results.json whose every user-controlled string is an attack or an oddity, with 60 classes."""
    labels = [XSS, XSS_LOG, XSS_IMG, QUOTES, UNICODE, LONG] + [f"class {i} & <b>{i}</b>" for i in range(54)]
    n = len(labels)
    rng = np.random.default_rng(0)
    confusion = (np.eye(n, dtype=int) * 8 + rng.integers(0, 2, (n, n))).tolist()

    def metric(mean):
        return {"mean": mean, "ci": [mean - 0.05, mean + 0.05], "seeds": [mean - 0.01, mean + 0.01], "sd": 0.014}

    rung = {
        "name": XSS_LOG,
        "strategy": "finetune",
        "backbone": XSS_IMG,
        "seeds": [0, 1],
        "test": {
            "accuracy": metric(0.61),
            "balanced_accuracy": metric(0.6),
            "macro_f1": metric(0.58),
            "n": 600,
            "ece": 0.05,
            "confusion_matrix": confusion,
            "per_class": {label: {"precision": 0.5, "recall": 0.6, "f1": 0.55, "support": 10} for label in labels},
        },
        "val": {"accuracy": metric(0.6)},
        "ood": {
            XSS_LOG: {"accuracy": {"mean": 0.4}, "drop": {"accuracy": 0.21}, "kind": XSS},
            "noise": {"accuracy": {"mean": 0.55}, "drop": {"accuracy": 0.06}, "kind": "corruption"},
        },
        "curves": {
            "epoch": [0, 1, 2],
            "phase": [XSS_LOG, QUOTES, UNICODE],
            "train_metric": [0.4, 0.7, 0.9],
            "val_metric": [0.4, 0.55, 0.6],
            "train_loss": [2.0, 1.0, 0.5],
            "val_loss": [2.1, 1.5, 1.4],
            "best_epoch": 2,
            "metric": XSS,
        },
        "cost": {"fit_seconds": 12.0, "trainable_params": 1000, "total_params": 2000, "predict_ms_per_item": 1.0},
        "notes": [XSS_IMG, LONG],
        "chosen": {XSS: QUOTES},
        "description": XSS_LOG,
    }
    png = (
        "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAA"
        "AABJRU5ErkJggg=="
    )
    side = {"index": 1, "split": "train", "origin": XSS_LOG, "label": XSS, "text": XSS_IMG + QUOTES + UNICODE}
    return {
        "schema": "transferlab.run/1",
        "task": {
            "modality": XSS,
            "labels": labels,
            "splits": {"train": 3000, "val": 600, "test": 600},
            "source": XSS_IMG,
        },
        "notes": [XSS_LOG, QUOTES],
        "verdicts": [
            {
                "code": XSS,
                "severity": "error",
                "rungs": [XSS_LOG],
                "message": XSS_IMG,
                "action": QUOTES,
                "evidence": {
                    XSS: {XSS_LOG: UNICODE},
                    "comparison": {"a": XSS, "b": XSS_LOG, "delta": 0.1, "ci": [0.0, 0.2], "p_value": 0.04},
                },
            }
        ],
        "recommendation": {"rung": XSS_LOG, "why": XSS_IMG, "within_noise_of_best": [XSS, XSS_LOG]},
        "audit": {
            "findings": [
                {
                    "check": XSS,
                    "severity": "error",
                    "count": 2,
                    "message": XSS_LOG,
                    "examples": [
                        {
                            "a": {**side, "thumbnail": png},
                            "b": {**side, "thumbnail": "javascript:alert(1)"},
                            "kind": XSS,
                            "similarity": 0.99,
                        },
                        {XSS: XSS_IMG},
                    ],
                }
            ]
        },
        "ranking": [
            {
                "backbone": XSS_LOG,
                "scores": {"logme": 0.5, XSS: 1.0},
                "params": 1e6,
                "items_per_second": 10.0,
                "pretrained_on": XSS_IMG,
                "licence": QUOTES,
                "source": LONG,
                "achieved_test_accuracy": {XSS: 0.61},
            },
            {"backbone": UNICODE, "scores": {"logme": 0.2}, "params": 1e7, "items_per_second": 5.0},
        ],
        "rungs": [rung],
        "learning_curve": {
            "metric": XSS,
            "target": 0.9,
            "rungs": {
                XSS_LOG: {
                    "n_per_class": [5.0, 10.0, 20.0, 35.0, 50.0],
                    "score_mean": [0.3, 0.4, 0.5, 0.56, 0.6],
                    "score_sd": [0.05, 0.04, 0.03, 0.02, 0.01],
                    "fits": [{"a": 0.9, "b": 0.5, "c": 0.8}],
                    "plateau": {"estimate": 0.8, "range": [0.8, 0.8]},
                    "examples_per_class": None,
                    "verdict": XSS_IMG,
                }
            },
        },
        "environment": {XSS: XSS_LOG, "device": QUOTES, "seed": 0},
        "artifacts": {XSS: "javascript:alert(1)", "results": "results.json"},
    }


def test_hostile_strings_stay_text_in_chromium(tmp_path):
    page = write_html(hostile_results(), tmp_path / "report.html")
    dom_text, console = browse(page, tmp_path)
    dom = Dom(dom_text)
    assert_sound(dom, console)  # no console line: neither console.error("XSS-RAN") nor an error ran
    assert "img" in dom.tags and dom.tags.count("img") == 1  # only the one PNG data thumbnail
    text = dom.all_text
    for s in (XSS, XSS_LOG, XSS_IMG, QUOTES, "日本語", "🧪🐱", LONG):
        assert s in text, s[:40]  # shown to the reader as text
    assert [i for i in dom.ids if i in SECTIONS] == SECTIONS
    assert dom.all_text.count("class 53 & <b>53</b>") >= 3  # chip, per-class row, confusion row and column
    png = screenshot(page, tmp_path / "hostile.png", tmp_path)
    assert_not_blank(png)


def test_new_sections_show_their_numbers():
    """Without a browser: the gap, the spread over seeds, the OOD drop and the learning-curve row."""
    from transferlab.report import render_html

    html = render_html(hostile_results())
    assert "+0.300 at the best and last epoch (2)" in html  # train 0.9 − validation 0.6
    assert "sd 0.014 over 2 seeds" in html and "accuracy per seed: 0.600, 0.620" in html
    assert '0.400<span class="ci">−0.210</span>' in html and "rgba(220, 38, 38, 0.420)" in html
    assert "0.800 [0.800, 0.800]" in html and '<polyline class="fit"' in html and 'class="target"' in html
    assert '<polygon class="gap"' in html
