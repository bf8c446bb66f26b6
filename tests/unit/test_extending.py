"""The examples of docs/EXTENDING.md, run: a backbone source, a rung, an audit check and a verdict
rule, each one class or function and one registration, used by a real (tiny) run."""

from __future__ import annotations

import csv
import time
import zlib

import numpy as np
import pytest
import torch
from torch import nn

import transferlab
from transferlab.auditing.base import CHECKS, AuditInputs, Check, Finding, describe, register
from transferlab.backbones import SOURCES, Backbone, resolve
from transferlab.config import RunSpec
from transferlab.data import from_arrays
from transferlab.data.splits import content_hash
from transferlab.errors import ArtifactError, BackboneError, ConfigError
from transferlab.export import export, load_artifact
from transferlab.rungs import RUNGS, Context, Fitted, Rung, RungOutput, strategies
from transferlab.rungs.fitted import BackboneFeatures
from transferlab.rungs.linear import LogregFitted
from transferlab.verdicts import RULES, VerdictContext, verdict
from transferlab.verdicts.recommendation import cost_order

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
            ids += [zlib.crc32(padded[i : i + 3].encode()) % self.buckets for i in range(len(padded) - 2)]
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
    description = "Each example takes the class whose mean training feature vector is closest (cosine)."
    role = "transfer"  # uses pretrained weights: the verdicts weigh it against the controls
    needs_backbone = True
    needs_features = True
    cheap = True  # run for every candidate backbone, even beyond --top-k
    simplicity = 25  # between zero_shot (20) and frozen (30) when costs tie

    def run(self, ctx: Context) -> RungOutput:
        X_train, X_val, X_test = (np.asarray(ctx.features(s)) for s in ("train", "val", "test"))
        y_train, k = ctx.train()[1], len(ctx.task.classes)
        start = time.perf_counter()
        centroids = _unit(np.stack([_unit(X_train)[y_train == c].mean(0) for c in range(k)]))
        # the fitted model: a linear head on the backbone's features (argmax of x @ centroids.T), so the
        # packaged logistic-regression model predicts, saves, loads and exports it
        model = LogregFitted(
            self.strategy,
            BackboneFeatures.for_run(ctx.backbone, ctx.spec),
            {"logreg.coef": centroids, "logreg.intercept": np.zeros(k), "logreg.classes": np.arange(k)},
            k,
        )
        fit = time.perf_counter() - start
        start = time.perf_counter()
        proba = model.proba_of(X_test)
        predict = time.perf_counter() - start
        return RungOutput(
            model.proba_of(X_val).argmax(1),
            proba.argmax(1),
            fit,
            predict,
            test_proba=proba,
            model=model,
            trainable_params=0,
            total_params=ctx.backbone.num_params(),
            notes=["No training: the nearest class mean on the frozen features."],
        )


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
        return [
            self.finding(
                "warning",
                len(short),
                f"{len(short)} texts have fewer than {self.min_words} words; "
                "check that they are not truncated or empty.",
                [describe(task, i) for i in short[:5]],
            )
        ]


# --- a verdict rule: a rung much slower to predict than the best one ------------------------------------


def slow_prediction(ctx: VerdictContext) -> list[dict]:
    scored = ctx.scored()  # every rung but the baselines (majority)
    if len(scored) < 2:
        return []
    best = max(scored, key=ctx.score)
    fastest = min(scored, key=lambda r: r["cost"]["predict_ms_per_item"])
    ratio = best["cost"]["predict_ms_per_item"] / max(fastest["cost"]["predict_ms_per_item"], 1e-6)
    if best is fastest or ratio < 10:
        return []
    c = ctx.compare(best, fastest)
    return [
        verdict(
            "slow_prediction",
            "info",
            [best["name"], fastest["name"]],
            f"{best['name']} predicts {ratio:.0f}x slower than {fastest['name']}.",
            "Weigh the difference in score against the serving cost.",
            comparison=c,
            ratio=ratio,
        )
    ]


# --- registration, undone after each test so the registries stay as the package defines them -----------


@pytest.fixture
def extended():
    """Registers the four, with one call each; yields the contexts the verdict rule was called with."""
    calls: list[VerdictContext] = []
    SOURCES.register("chargram")(chargram)
    RUNGS.register("nearest_centroid")(NearestCentroid)
    register(ShortTexts)
    RULES.register("slow_prediction")(lambda ctx: calls.append(ctx) or slow_prediction(ctx))
    yield calls
    for registry, name in (
        (SOURCES, "chargram"),
        (RUNGS, "nearest_centroid"),
        (CHECKS, "short_texts"),
        (RULES, "slow_prediction"),
    ):
        registry.unregister(name)


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
    with pytest.raises(BackboneError, match="names no model after 'chargram:'"):
        resolve("chargram:")


def test_a_registered_rung_is_in_every_list_of_rungs(extended):
    """Its declared role places it, with no other edit: validation of rungs=, the help text, the
    verdicts' transfer rungs, the cheap rungs of --top-k, and the recommendation's tie-break."""
    assert RunSpec(rungs="classical,nearest_centroid").rungs == ["classical", "nearest_centroid"]
    assert "zero_shot, nearest_centroid, frozen" in RunSpec.help()["rungs"]
    assert "nearest_centroid" in strategies(role="transfer") and "nearest_centroid" in strategies(cheap=True)
    assert "nearest_centroid" not in strategies(in_default_ladder=True) + strategies(role="control")
    tied = [
        {"name": s, "strategy": s, "cost": {"fit_seconds": 0.0}} for s in ("frozen", "nearest_centroid", "classical")
    ]
    assert [r["name"] for r, _ in cost_order(tied)] == ["classical", "nearest_centroid", "frozen"]


def test_an_unregistered_rung_is_refused():
    assert "nearest_centroid" not in strategies()
    with pytest.raises(ConfigError, match="Unknown rung 'nearest_centroid'"):
        RunSpec(rungs="nearest_centroid")


def _reviews() -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(0)
    words = {"pos": ["great", "tasty", "fresh", "love"], "neg": ["awful", "stale", "bland", "hate"]}
    texts, labels = [], []
    for i in range(120):
        label = ["pos", "neg"][i % 2]
        texts.append(" ".join(rng.choice(["the", "box", "was", "really", "very"], 4)) + " " + rng.choice(words[label]))
        labels.append(label)
    return texts + ["ok", "fine"], labels + ["pos", "neg"]  # short texts for the new check


def test_a_run_uses_every_extension(extended, spread_bert, tmp_path):
    texts, labels = _reviews()
    hf = f"hf:{spread_bert}"  # texts embed apart, so the exported head meets no near-ties
    results = transferlab.run(
        from_arrays(texts, labels),
        backbones=["chargram:32", hf],
        top_k=1,
        seeds=2,
        rungs="majority,classical,frozen,nearest_centroid,finetune",
        epochs=1,
        head_epochs=2,
        max_length=16,
        corruptions=False,
        learning_curve=False,
        out=str(tmp_path / "run"),
        quiet=True,
    )
    by = {r["name"]: r for r in results["rungs"]}
    # cheap: run for both candidates beyond --top-k 1, which trains (finetune) only one of them
    assert {"nearest_centroid:chargram:32", f"nearest_centroid:{hf}"} <= set(by)
    assert len([n for n in by if n.startswith("finetune:")]) == 1
    centroid = by[f"nearest_centroid:{hf}"]
    assert by["nearest_centroid:chargram:32"]["test"]["accuracy"]["mean"] > 0.5
    assert centroid["strategy"] == "nearest_centroid" and len(centroid["seeds"]) == 2  # seeding "cheap": --seeds
    short = [f for f in results["audit"]["findings"] if f["check"] == "short_texts"]
    assert short and short[0]["severity"] == "warning" and short[0]["count"] == 2
    assert (tmp_path / "run" / "report.html").read_text().count("nearest_centroid:chargram:32") >= 2

    # a transfer rung by its role: the transfer verdict weighs it against the control
    ctx = extended[0]
    pair = VerdictContext([by["classical"], centroid], ctx.y_test, ctx.y_train, ctx.classes, ctx.metric)
    [v] = RULES.get("transfer")(pair)
    assert v["code"] in ("transfer_helped", "negative_transfer") and v["rungs"] == [centroid["name"], "classical"]

    # the rule ran once, on the finished rungs, and its verdicts were kept; it speaks when it should
    assert len(extended) == 1
    kept = [v for v in results["verdicts"] if v["code"] == "slow_prediction"]
    assert len(kept) == len(slow_prediction(ctx))
    slow = [
        dict(r, cost=dict(r["cost"], predict_ms_per_item=ms), test=dict(r["test"], accuracy={"mean": acc}))
        for r, ms, acc in ((by["classical"], 1.0, 0.8), (centroid, 50.0, 0.9))
    ]  # the best is the slowest
    speaks = slow_prediction(VerdictContext(slow, ctx.y_test, ctx.y_train, ctx.classes, "accuracy"))
    assert [v["code"] for v in speaks] == ["slow_prediction"] and speaks[0]["evidence"]["ratio"] == 50

    # exported with no other edit: the artifact predicts what the run recorded
    artifact = load_artifact(export(tmp_path / "run", rung=centroid["name"], out=tmp_path / "exported"))
    by_hash = {content_hash(t): t for t in texts}  # the manifest lists the test split (after dedupe) in order
    with open(tmp_path / "run" / "split_manifest.csv") as fh:
        test = [by_hash[row["sha256"]] for row in csv.DictReader(fh) if row["split"] == "test"]
    assert artifact.predict_proba(test).argmax(1).tolist() == centroid["predictions"]["test"]
    # on a backbone with no saved format the model is kept, and says why it cannot be loaded or exported
    chargram = by["nearest_centroid:chargram:32"]
    assert chargram["artifact"]["not_exportable"].startswith("Backbone 'chargram:32' (CharGram) has no export format")
    with pytest.raises(ArtifactError, match="cannot be loaded: Backbone 'chargram:32'"):
        Fitted.load(tmp_path / "run" / chargram["artifact"]["path"])
    with pytest.raises(ArtifactError, match="cannot be exported: Backbone 'chargram:32'"):
        export(tmp_path / "run", rung=chargram["name"], out=tmp_path / "refused")
