"""The lora and zero_shot rungs and the CLIP backbone, on tiny random models made here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import transferlab
from transferlab.backbones import resolve
from transferlab.config import RunSpec
from transferlab.errors import ConfigError
from transferlab.rungs import RUNGS, Context
from transferlab.rungs.lora import find_targets
from transferlab.rungs.zero_shot import read_label_descriptions

EXAMPLE = Path(__file__).parents[2] / "examples" / "load_exported.py"


@pytest.fixture(scope="module")
def tiny_mobilenet(tmp_path_factory) -> Path:
    import torchvision
    from safetensors.torch import save_file

    torch.manual_seed(1234)
    model = torchvision.models.mobilenet_v2(weights=None)
    path = tmp_path_factory.mktemp("mnv2") / "mnv2.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


def _context(data, backbone, **settings) -> Context:
    """A Context over split data, with the features extracted as the runner would."""
    from transferlab.features import extract
    from transferlab.runner import prepare_task

    spec = RunSpec(**settings)
    task = prepare_task(data, spec)

    def features(split):
        return np.asarray(extract(backbone, task.part(split)[0], task.part_hashes(split)).features)

    return Context(task, spec, 0, backbone, features)


# --- lora -----------------------------------------------------------------------------------------


def test_default_targets_per_architecture(tiny_bert, tiny_clip, tiny_mobilenet):
    bert = resolve(f"hf:{tiny_bert}", max_length=16).encoder()
    names, what = find_targets(bert)
    assert what.startswith("BERT") and len(names) == 2 * 6  # q, k, v, attention out, intermediate, output per layer
    assert not any("pooler" in n for n in names)  # unused by the pooled embedding
    clip = resolve(f"clip:{tiny_clip}", image_size=32).encoder()
    names, what = find_targets(clip)
    assert what.startswith("CLIP") and len(names) == 2 * 4 and all(n.startswith("vision_model.") for n in names)
    mnv2 = resolve(f"torchvision:mobilenet_v2@{tiny_mobilenet}", image_size=32).encoder()
    names, what = find_targets(mnv2)
    convs = dict(mnv2.named_modules())
    assert what.startswith("pointwise") and len(names) == 1 + 16 * 2 + 1  # project, expand + project, last 1x1
    assert all(convs[n].kernel_size == (1, 1) and convs[n].groups == 1 for n in names)
    assert find_targets(bert, ["query", "value"])[0] == [n for n in names_of(bert) if n.endswith(("query", "value"))]
    assert "no layer named" in find_targets(bert, ["q_proj"])[1]


def names_of(module):
    return [n for n, _ in module.named_modules()]


def test_custom_conv_layers_make_lora_not_applicable():
    from efficientnet_lite_pytorch import EfficientNet

    from transferlab.backbones.packaged import LiteEncoder

    encoder = LiteEncoder(EfficientNet.from_name("efficientnet-lite0", image_size=32))
    names, why = find_targets(encoder)
    assert names == [] and "Conv2dStaticSamePadding" in why and "cannot adapt" in why


def test_lora_trains_only_adapters_and_head_and_saves_a_reloadable_adapter(spread_bert, tmp_path):
    from conftest import synthetic_reviews
    from peft import PeftModel
    from safetensors.torch import load_file

    from transferlab.data import from_arrays

    backbone = resolve(f"hf:{spread_bert}", max_length=16)
    before = {k: v.clone() for k, v in backbone.encoder().state_dict().items()}
    ctx = _context(from_arrays(*synthetic_reviews(30)), backbone, epochs=3, lora_rank=4, lora_alpha=8)
    rung = RUNGS.get("lora")()
    assert rung.applies_to(backbone, ctx.spec) is None
    out = rung.run(ctx)
    model = rung.model_
    head = sum(p.numel() for p in model.head.parameters())
    adapter = sum(p.numel() for n, p in model.encoder.named_parameters() if "lora_" in n)
    # rank 4, per layer: A (r x in) + B (out x r) for q, k, v, attention out (32 -> 32), intermediate and output
    assert adapter == 2 * (4 * 4 * (32 + 32) + 2 * 4 * (32 + 64))
    assert out.trainable_params == adapter + head and out.cost["adapter_bytes"] == 4 * adapter
    assert out.total_params == backbone.num_params() + adapter + head
    assert len(out.curves["val_metric"]) >= 1 and out.curves["best_epoch"] >= 1
    assert any(
        float(p.detach().abs().sum()) > 0 for n, p in model.encoder.named_parameters() if "lora_B" in n
    )  # B left 0
    after = backbone.encoder().state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the shared pretrained encoder is untouched

    meta = out.save(tmp_path)
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file() and meta["adapter"] == "adapter"
    # the adapter and head reload onto a fresh copy of the backbone and predict the same
    from transferlab.rungs.trainable import Classifier

    fresh = PeftModel.from_pretrained(backbone.trainable_copy(), str(tmp_path / "adapter"))
    clone = Classifier(fresh, backbone.feature_dim, 2)
    clone.head.load_state_dict(load_file(str(tmp_path / "head.safetensors")))
    clone.eval()
    items = ctx.test_items()[:8]
    with torch.inference_mode():
        proba = torch.softmax(clone(**backbone.preprocess(items)).double(), 1).numpy()
    np.testing.assert_allclose(proba, out.predict_proba(items), atol=1e-5)
    # the merged whole-classifier weights match too
    merged = load_file(str(tmp_path / "model.safetensors"))
    plain = Classifier(backbone.trainable_copy(), backbone.feature_dim, 2)
    plain.load_state_dict(merged)
    plain.eval()
    with torch.inference_mode():
        np.testing.assert_allclose(
            torch.softmax(plain(**backbone.preprocess(items)).double(), 1).numpy(), proba, atol=1e-4
        )


def test_lora_on_a_cnn_keeps_batchnorm_statistics(tiny_mobilenet, image_folder):
    backbone = resolve(f"torchvision:mobilenet_v2@{tiny_mobilenet}", image_size=32)
    ctx = _context(str(image_folder), backbone, epochs=1, batch_size=8)
    rung = RUNGS.get("lora")()
    out = rung.run(ctx)
    stats = {k: v for k, v in rung.model_.encoder.state_dict().items() if "running_mean" in k}
    original = backbone.encoder().state_dict()
    for k, v in stats.items():  # frozen BatchNorm layers must not drift during training
        assert torch.equal(v, original[k.replace("base_model.model.", "")])
    assert out.cost["adapter_params"] > 0 and out.trainable_params < out.total_params / 5


# --- zero_shot ------------------------------------------------------------------------------------


def test_items_identical_to_a_prompt_get_that_label(spread_bert):
    """With no training the prediction is the most similar prompt: an item that is a prompt must win."""
    from transferlab.data import from_arrays

    texts = ["great delicious"] * 12 + ["awful stale"] * 12
    labels = ["pos"] * 12 + ["neg"] * 12
    descriptions = {"pos": "great delicious", "neg": "awful stale"}
    backbone = resolve(f"hf:{spread_bert}", max_length=16)
    ctx = _context(from_arrays(texts, labels), backbone, label_descriptions=descriptions)
    out = RUNGS.get("zero_shot")().run(ctx)
    assert (ctx.task.part("test")[1] == -1).all()  # a rung is never given the test labels
    y_test = np.array([ctx.task.classes.index("pos" if t == "great delicious" else "neg") for t in ctx.test_items()])
    assert (out.test_pred == y_test).all() and (out.val_pred == ctx.val()[1]).all()
    assert out.trainable_params == 0 and out.chosen["temperature"] > 0
    np.testing.assert_allclose(out.test_proba.sum(1), 1.0)
    assert out.chosen["prompts"] == descriptions


def test_temperature_calibrates_without_changing_predictions():
    from transferlab.rungs.zero_shot import fit_temperature, softmax

    rng = np.random.default_rng(0)
    sim = rng.uniform(-0.2, 0.2, size=(200, 3))
    y = sim.argmax(1)
    sim[np.arange(200), y] += 0.05  # confidently right -> a high temperature fits best
    assert fit_temperature(sim, y) > 50
    assert (softmax(fit_temperature(sim, y) * sim).argmax(1) == sim.argmax(1)).all()
    noisy = rng.integers(0, 3, size=200)  # labels unrelated to the similarities -> near-uniform probabilities
    assert fit_temperature(sim, noisy) < 5


def test_label_descriptions_from_files(tmp_path):
    classes = ["cooking", "sports"]
    (tmp_path / "d.json").write_text(json.dumps({"cooking": "recipes and food", "sports": "games and teams"}))
    (tmp_path / "d.yaml").write_text("cooking: recipes and food\nsports: games and teams\n")
    (tmp_path / "d.csv").write_text("label,description\ncooking,recipes and food\nsports,games and teams\n")
    for name in ("d.json", "d.yaml", "d.csv"):
        spec = RunSpec(label_descriptions=str(tmp_path / name))
        assert read_label_descriptions(spec.label_descriptions, classes)["sports"] == "games and teams"
    with pytest.raises(ConfigError, match="'tennis'.*not in the data"):
        read_label_descriptions({"cooking": "x", "sports": "y", "tennis": "z"}, classes)
    with pytest.raises(ConfigError, match="no description for label.*'sports'"):
        read_label_descriptions({"cooking": "x"}, classes)
    with pytest.raises(ConfigError, match="does not exist"):
        RunSpec(label_descriptions=str(tmp_path / "missing.json"))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="bad.json"):
        read_label_descriptions(str(tmp_path / "bad.json"), classes)


@pytest.mark.parametrize(
    "settings, field",
    [
        ({"lora_rank": 0}, "lora_rank"),
        ({"lora_alpha": -1}, "lora_alpha"),
        ({"lora_dropout": 1.5}, "lora_dropout"),
        ({"zero_shot_template": "a photo"}, "zero_shot_template"),
    ],
)
def test_bad_settings_name_the_field(settings, field):
    with pytest.raises(ConfigError, match=field):
        RunSpec(**settings)
    assert RunSpec(lora_targets="query, value").lora_targets == ["query", "value"]


# --- CLIP -----------------------------------------------------------------------------------------


def test_clip_backbone_matches_transformers(tiny_clip):
    from transformers import CLIPModel

    backbone = resolve(f"clip:{tiny_clip}", image_size=32)
    assert backbone.modality == "image"
    pixels = torch.randn(3, 3, 32, 32)
    model = CLIPModel.from_pretrained(tiny_clip).eval()
    with torch.inference_mode():
        mine = backbone.encoder()(pixel_values=pixels)
        ref = model.visual_projection(model.vision_model(pixel_values=pixels).pooler_output)
        torch.testing.assert_close(mine, ref)
        tokens = backbone.tokenizer(["a photo of a cat.", "a dog"], padding=True, return_tensors="pt")
        text_ref = model.text_projection(model.text_model(**tokens).pooler_output).numpy()
    np.testing.assert_allclose(backbone.embed_texts(["a photo of a cat.", "a dog"]), text_ref, atol=1e-5)
    assert backbone.feature_dim == 16 and len(backbone.layer_groups(backbone.trainable_copy())) == 4
    # another size is fed with interpolated position embeddings
    assert resolve(f"clip:{tiny_clip}", image_size=48).encoder()(pixel_values=torch.randn(1, 3, 48, 48)).shape == (
        1,
        16,
    )


def test_clip_runs_frozen_zero_shot_and_lora(tiny_clip, image_folder, tmp_path):
    r = transferlab.run(
        str(image_folder),
        backbones=[f"clip:{tiny_clip}"],
        rungs=["frozen", "zero_shot", "lora"],
        image_size=32,
        epochs=2,
        batch_size=8,
        out=str(tmp_path / "run"),
        quiet=True,
        corruptions=False,
        learning_curve=False,
    )
    by = {x["strategy"]: x for x in r["rungs"]}
    assert set(by) == {"frozen", "zero_shot", "lora"}
    assert by["zero_shot"]["chosen"]["prompts"] == {"bright": "a photo of a bright.", "dark": "a photo of a dark."}
    assert by["zero_shot"]["cost"]["trainable_params"] == 0
    assert by["lora"]["cost"]["adapter_bytes"] > 0 and "LoRA rank 8" in by["lora"]["notes"][0]
    assert (r.path / by["lora"]["artifact"]["path"] / "adapter" / "adapter_config.json").is_file()
    # every CLIP rung exports; transferlab and the standalone example predict what the run recorded
    import csv
    import importlib.util

    from transferlab.export import export, load_artifact

    with open(r.path / "split_manifest.csv") as fh:
        test = [row["origin"] for row in csv.DictReader(fh) if row["split"] == "test"]
    example = importlib.util.spec_from_file_location("load_exported", EXAMPLE)
    module = importlib.util.module_from_spec(example)
    example.loader.exec_module(module)
    for strategy in ("frozen", "zero_shot", "lora"):
        art = export(r.path, by[strategy]["name"], tmp_path / f"art-{strategy}")
        proba = load_artifact(art).predict_proba(test)
        assert proba.argmax(1).tolist() == by[strategy]["predictions"]["test"]
        np.testing.assert_allclose(module.Exported(art).predict_proba(test), proba, atol=1e-6)


def test_runner_notes_rungs_that_do_not_apply(tiny_mobilenet, make_image_folder, tmp_path):
    r = transferlab.run(
        str(make_image_folder(tmp_path / "img", n_per_class=8)),
        backbones=[f"torchvision:mobilenet_v2@{tiny_mobilenet}"],
        rungs=["majority", "zero_shot", "lora"],
        lora_targets=["query"],
        image_size=32,
        epochs=1,
        out=str(tmp_path / "run"),
        quiet=True,
        corruptions=False,
        learning_curve=False,
        audit=False,
    )
    assert [x["strategy"] for x in r["rungs"]] == ["majority"]
    notes = " ".join(r["notes"])
    assert "zero_shot:torchvision:mobilenet_v2" in notes and "needs a CLIP backbone" in notes
    assert "no layer named query" in notes


def test_cli_flags_reach_the_rungs(spread_bert, reviews_csv, tmp_path):
    from typer.testing import CliRunner

    from transferlab.cli import app

    (tmp_path / "labels.json").write_text(json.dumps({"pos": "great", "neg": "awful"}))
    res = CliRunner().invoke(
        app,
        [
            "run",
            str(reviews_csv),
            "--text-column",
            "review",
            "--label-column",
            "stars",
            "--backbone",
            f"hf:{spread_bert}",
            "--rungs",
            "zero_shot,lora",
            "--epochs",
            "1",
            "--max-length",
            "16",
            "--lora-rank",
            "2",
            "--lora-alpha",
            "4",
            "--lora-targets",
            "query,value",
            "--label-descriptions",
            str(tmp_path / "labels.json"),
            "--zero-shot-template",
            "it was {}",
            "--out",
            str(tmp_path / "r"),
            "--json",
            "--no-corruptions",
        ],
    )
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout[res.stdout.index("{") :])
    by = {x["strategy"]: x for x in r["rungs"]}
    assert by["zero_shot"]["chosen"]["prompts"] == {"neg": "it was awful", "pos": "it was great"}
    assert by["lora"]["chosen"]["lora_rank"] == 2 and by["lora"]["chosen"]["lora_layers"] == 4
    # the merged weights export like any trained classifier and predict what the run predicted
    import csv

    import pandas as pd

    from transferlab.export import export, load_artifact

    artifact = load_artifact(export(tmp_path / "r", rung=by["lora"]["name"], out=tmp_path / "exported"))
    texts = pd.read_csv(reviews_csv)["review"].tolist()
    test = [
        int(row["index"])
        for row in csv.DictReader(open(tmp_path / "r" / "split_manifest.csv"))
        if row["split"] == "test"
    ]
    assert artifact.predict_proba([texts[i] for i in test]).argmax(1).tolist() == by["lora"]["predictions"]["test"]
    bad = CliRunner().invoke(
        app,
        [
            "run",
            str(reviews_csv),
            "--text-column",
            "review",
            "--label-column",
            "stars",
            "--backbone",
            f"hf:{spread_bert}",
            "--rungs",
            "zero_shot",
            "--label-descriptions",
            str(tmp_path / "nope.yaml"),
            "--out",
            str(tmp_path / "r2"),
        ],
    )
    assert bad.exit_code == 2 and "nope.yaml" in bad.output


# --- verdicts -------------------------------------------------------------------------------------


def test_verdicts_treat_lora_as_training_and_zero_shot_as_no_training():
    from transferlab.evaluation import evaluate
    from transferlab.verdicts import VerdictContext, run_verdicts

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)

    y_val = rng.integers(0, 2, 200)

    def rung(name, strategy, acc, seed, fit=1.0):
        pred = np.where(np.random.default_rng(seed).random(len(y)) < acc, y, 1 - y)
        val = np.where(np.random.default_rng(seed + 1).random(len(y_val)) < acc, y_val, 1 - y_val)
        return {
            "name": name,
            "strategy": strategy,
            "backbone": "m",
            "test": evaluate(y, pred, ["a", "b"]),
            "val": evaluate(y_val, val, ["a", "b"], with_details=False),
            "predictions": {"test": pred.tolist(), "val": val.tolist()},
            "curves": {},
            "cost": {"fit_seconds": fit},
        }

    def codes(rungs):
        return {
            v["code"]: v
            for v in run_verdicts(VerdictContext(rungs, y, rng.integers(0, 2, 800), ["a", "b"], "accuracy"))
        }

    frozen, zero = rung("frozen:m", "frozen", 0.9, 1), rung("zero_shot:m", "zero_shot", 0.89, 3, fit=0.1)
    found = codes([frozen, rung("lora:m", "lora", 0.6, 2, fit=100.0), zero])
    assert found["catastrophic_forgetting"]["rungs"] == ["lora:m"]
    assert "lora:m" in found["finetune_not_worth_cost"]["rungs"]
    assert found["no_training_needed"]["rungs"] == ["zero_shot:m", "frozen:m"]
    assert "no_training_needed" not in codes(
        [rung("lora:m", "lora", 0.97, 2), rung("zero_shot:m", "zero_shot", 0.7, 3)]
    )
