"""The packaged offline models really are pretrained, and the demos run end to end (small)."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import transferlab
from transferlab.backbones import resolve
from transferlab.demo import demo_data, demo_spec

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def animals():
    ds = demo_data("image")
    idx = np.random.default_rng(0).permutation(len(ds))[:600]
    return [ds.items[i] for i in idx], np.array([ds.labels[i] for i in idx])


def _probe(features, y):
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000)).fit(features[:400], y[:400])
    return model.score(features[400:], y[400:])


@pytest.mark.parametrize("name", ["mobilenet_v2", "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
def test_image_backbone_features_beat_random_init(name, animals):
    items, y = animals
    b = resolve(name, image_size=64)
    feats = {}
    for pretrained, enc in ((True, b.encoder()), (False, b.trainable_copy(pretrained=False).eval())):
        with torch.inference_mode():
            feats[pretrained] = np.concatenate(
                [enc(**b.preprocess(items[i : i + 100])).numpy() for i in range(0, 600, 100)]
            )
    assert b.provenance["pretrained_on"] == "ImageNet-1k"
    assert _probe(feats[True], y) > 0.8
    assert _probe(feats[True], y) > _probe(feats[False], y) + 0.08


def test_minilm_embeds_meaning():
    b = resolve("minilm")
    with torch.inference_mode():
        e = b.encoder()(
            **b.preprocess(["The cat sits on the mat", "A cat is sitting on a mat", "Stock markets fell sharply today"])
        ).numpy()
    sim = e @ e.T  # rows are L2-normalised, as sentence-transformers configures this model
    assert sim[0, 1] > 0.8 and sim[0, 2] < 0.3
    assert b.num_params() == 22_713_216 and b.feature_dim == 384


def test_text_demo_small(tmp_path):
    # 96 training reviews: with 48, cross-validation on train finds no C whose out-of-fold accuracy
    # beats always predicting the majority class, and the frozen rung rightly settles on the prior.
    # 48 tokens (the demo's 96 halved): the three rungs that train MiniLM were most of the test's time
    spec = demo_spec(
        "text",
        out=str(tmp_path / "demo"),
        max_train=96,
        max_val=40,
        max_test=80,
        epochs=1,
        head_epochs=10,
        max_length=48,
    )
    r = transferlab.run(demo_data("text"), spec=spec, quiet=True)
    strategies = [x["strategy"] for x in r["rungs"]]
    # rungs without a backbone first, then each backbone's
    assert strategies == [
        "majority",
        "classical",
        "scratch_small",
        "zero_shot",
        "frozen",
        "finetune",
        "full",
        "lora",
    ]
    assert r["task"]["splits"] == {"train": 96, "val": 40, "test": 80}
    assert any("Demo sized for a 2-core CPU" in n for n in r["notes"])
    frozen = r.rung("frozen:minilm")["test"]["balanced_accuracy"]["mean"]
    assert frozen > 0.55  # pretrained sentence features carry sentiment even from 96 reviews
    assert (tmp_path / "demo" / "report.html").exists()


def test_image_demo_small(tmp_path):
    spec = demo_spec(
        "image",
        out=str(tmp_path / "demo"),
        max_train=150,
        max_val=50,
        max_test=100,
        epochs=1,
        image_size=64,
        rungs=["majority", "classical", "frozen", "finetune"],
        ood_max_items=50,
    )
    r = transferlab.run(demo_data("image"), spec=spec, quiet=True)
    # candidates run best first by the ranking's lead score (kNN accuracy), and the demo's top_k=1
    # fine-tunes only the first; the cheap rungs run on both
    from transferlab.ranking.scores import LEAD_SCORE

    lead = {c["backbone"]: c["scores"][LEAD_SCORE] for c in r["ranking"]}
    order = [c["backbone"] for c in r["ranking"]]
    assert order == sorted(lead, key=lambda b: -lead[b]) and len(order) == 2
    assert sorted(x["name"] for x in r["rungs"]) == sorted(
        ["majority", "classical", "frozen:mobilenet_v2", "frozen:efficientnet_lite0", f"finetune:{order[0]}"]
    )
    assert (
        r.rung("frozen:mobilenet_v2")["test"]["accuracy"]["mean"] > r.rung("majority")["test"]["accuracy"]["mean"] + 0.4
    )
    assert len(r["task"]["labels"]) == 10
