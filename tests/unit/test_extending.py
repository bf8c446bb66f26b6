"""The examples of docs/EXTENDING.md, run: a backbone source, a rung, an audit check and a verdict
rule, each one class or function and one registration, used by a real (tiny) run."""

from __future__ import annotations

import time
import zlib

import numpy as np
import pytest
import torch
from torch import nn

import transferlab
from transferlab import config
from transferlab.auditing.base import CHECKS, AuditInputs, Check, Finding, describe, register
from transferlab.backbones import SOURCES, Backbone, resolve
from transferlab.data import from_arrays
from transferlab.rungs import RUNGS, Context, Rung, RungOutput
from transferlab.verdicts import RULES, VerdictContext, verdict

# --- a backbone source: "chargram:<dim>", hashed character trigrams through a small MLP ----------


class CharGram(Backbone):
    modality = "text"

    def __init__(self, name: str, dim: int, **options):
        super().__init__(name, provenance={"pretrained_on": "nothing (random weights)", "licence": "mit"}, **options)
        self.feature_dim, self.buckets = dim, 4096

    def _build(self, pretrained: bool) -> nn.Module:
        torch.manual_seed(0 if pretrained else 1)  # the "pretrained" weights differ from a scratch init
        return _CharGramEncoder(self.buckets, self.feature_dim)

    def preprocess(self, items: list, train: bool = False) -> dict[str, torch.Tensor]:
        ids, offsets = [], []
        for text in items:
            offsets.append(len(ids))
            padded = f"  {str(text).lower()} "
            ids += [zlib.crc32(padded[i:i + 3].encode()) % self.buckets for i in range(len(padded) - 2)]
        return {"ids": torch.tensor(ids, dtype=torch.long), "offsets": torch.tensor(offsets, dtype=torch.long)}

    def layer_groups(self, encoder: nn.Module) -> list[list[nn.Parameter]]:
        return [list(encoder.embed.parameters()), list(encoder.mid.parameters()), list(encoder.top.parameters())]

    def preprocessing_id(self) -> str:
        return f"chargram3-{self.buckets}"


class _CharGramEncoder(nn.Module):
    def __init__(self, buckets: int, dim: int):
        super().__init__()
        self.embed = nn.EmbeddingBag(buckets, dim, mode="mean")
        self.mid, self.top = nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return self.top(torch.relu(self.mid(self.embed(ids, offsets))))  # (B, dim)


def chargram(rest: str, **options) -> Backbone:
    return CharGram(f"chargram:{rest}", int(rest or 32), **options)


# --- a rung: nearest class centroid on the backbone's cached features ------------------------------


class NearestCentroid(Rung):
    strategy = "nearest_centroid"
    needs_backbone = True
    needs_features = True
    description = "Each example takes the class whose mean training feature vector is closest (cosine)."

    def run(self, ctx: Context) -> RungOutput:
        X_train, X_val, X_test = (_unit(np.asarray(ctx.features(s))) for s in ("train", "val", "test"))
        y_train = ctx.train()[1]
        start = time.perf_counter()
        centroids = _unit(np.stack([X_train[y_train == c].mean(0) for c in range(len(ctx.task.classes))]))
        fit = time.perf_counter() - start
        start = time.perf_counter()
        test_pred = (X_test @ centroids.T).argmax(1)
        predict = time.perf_counter() - start
        return RungOutput((X_val @ centroids.T).argmax(1), test_pred, fit, predict,
                          trainable_params=0, total_params=ctx.backbone.num_params(),
                          notes=["No training: the nearest class mean on the frozen features."])


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


# --- an audit check: texts too short to carry their label ---------------------------------------------


class ShortTexts(Check):
    name = "short_texts"
    description = "Texts with fewer than three words."
    min_words = 3

    def skip_reason(self, inputs: AuditInputs) -> str | None:
        return None if inputs.task.modality == "text" else "applies to text only."

    def run(self, inputs: AuditInputs) -> list[Finding]:
        task = inputs.task
        short = [i for i, text in enumerate(task.items) if len(str(text).split()) < self.min_words]
        if not short:
            return [self.finding("info", 0, "Every text has at least three words.")]
        return [self.finding("warning", len(short), f"{len(short)} texts have fewer than {self.min_words} words; "
                             "check that they are not truncated or empty.", [describe(task, i) for i in short[:5]])]


# --- a verdict rule: a rung much slower to predict than the best one ------------------------------------


def slow_prediction(ctx: VerdictContext) -> list[dict]:
    scored = [r for r in ctx.rungs if r["strategy"] != "majority"]
    if len(scored) < 2:
        return []
    best = max(scored, key=ctx.score)
    fastest = min(scored, key=lambda r: r["cost"]["predict_ms_per_item"])
    ratio = best["cost"]["predict_ms_per_item"] / max(fastest["cost"]["predict_ms_per_item"], 1e-6)
    if best is fastest or ratio < 10:
        return []
    c = ctx.compare(best, fastest)
    return [verdict("slow_prediction", "info", [best["name"], fastest["name"]],
                    f"{best['name']} predicts {ratio:.0f}x slower than {fastest['name']}.",
                    "Weigh the difference in score against the serving cost.", comparison=c, ratio=ratio)]


# --- registration, undone after each test so the registries stay as the package defines them -----------


@pytest.fixture
def extended(monkeypatch):
    """Registers the four; yields the contexts the verdict rule was called with."""
    calls: list[VerdictContext] = []
    SOURCES.register("chargram")(chargram)
    RUNGS.register("nearest_centroid")(NearestCentroid)
    register(ShortTexts)
    RULES.register("slow_prediction")(lambda ctx: calls.append(ctx) or slow_prediction(ctx))
    monkeypatch.setattr(config, "STRATEGIES", (*config.STRATEGIES, "nearest_centroid"))
    monkeypatch.setattr(config, "BACKBONE_STRATEGIES", (*config.BACKBONE_STRATEGIES, "nearest_centroid"))
    yield calls
    for registry, name in ((SOURCES, "chargram"), (RUNGS, "nearest_centroid"), (CHECKS, "short_texts"),
                           (RULES, "slow_prediction")):
        registry._entries.pop(name, None)


def test_duplicate_names_fail(extended):
    with pytest.raises(RuntimeError, match="registered twice"):
        RUNGS.register("nearest_centroid")(NearestCentroid)


def test_backbone_source_meets_the_contract(extended):
    b = resolve("chargram:16")
    enc = b.encoder()
    with torch.inference_mode():
        feats = enc(**b.preprocess(["great taste", "awful"]))
    assert feats.shape == (2, 16)
    ids = [id(p) for g in b.layer_groups(enc) for p in g]
    assert len(ids) == len(set(ids)) == len(list(enc.parameters()))
    scratch = b.trainable_copy(pretrained=False)
    assert any(not torch.equal(a, c) for a, c in zip(scratch.parameters(), enc.parameters()))


def test_a_run_uses_every_extension(extended, tmp_path):
    rng = np.random.default_rng(0)
    words = {"pos": ["great", "tasty", "fresh", "love"], "neg": ["awful", "stale", "bland", "hate"]}
    texts, labels = [], []
    for i in range(120):
        label = ["pos", "neg"][i % 2]
        texts.append(" ".join(rng.choice(["the", "box", "was", "really", "very"], 4)) + " " + rng.choice(words[label]))
        labels.append(label)
    texts += ["ok", "fine"]  # short texts for the new check
    labels += ["pos", "neg"]
    results = transferlab.run(from_arrays(texts, labels), backbones=["chargram:32"],
                              rungs="majority,frozen,nearest_centroid,finetune", epochs=1, head_epochs=2,
                              corruptions=False, learning_curve=False, out=str(tmp_path / "run"), quiet=True)
    names = [r["name"] for r in results["rungs"]]
    assert "nearest_centroid:chargram:32" in names and "finetune:chargram:32" in names
    centroid = results.rung("nearest_centroid:chargram:32")
    assert centroid["test"]["accuracy"]["mean"] > 0.5 and centroid["strategy"] == "nearest_centroid"
    short = [f for f in results["audit"]["findings"] if f["check"] == "short_texts"]
    assert short and short[0]["severity"] == "warning" and short[0]["count"] == 2
    assert len(extended) == 1  # the rule ran once, on the finished rungs, and its verdicts were kept
    codes = [v["code"] for v in results["verdicts"]]
    assert all(v["code"] in codes for v in slow_prediction(extended[0]))
    assert (tmp_path / "run" / "report.html").read_text().count("nearest_centroid:chargram:32") >= 2
