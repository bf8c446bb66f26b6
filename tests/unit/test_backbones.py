"""Backbone details beyond the contract every source meets (tests/unit/test_contracts.py)."""

import numpy as np
import pytest
import torch

from transferlab.backbones import resolve
from transferlab.errors import BackboneError


def test_hf_folder_pooling_and_card(tiny_bert):
    b = resolve(f"hf:{tiny_bert}")
    assert b.pooling == "cls" and b.normalize is False
    assert b.provenance["licence"] == "mit" and "made-up-corpus" in b.provenance["pretrained_on"]


def test_image_augmentation_only_in_training_transform(tiny_torchvision_weights):
    b = resolve(f"torchvision:mobilenet_v3_small@{tiny_torchvision_weights}", image_size=32)
    img = [np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)]
    a, c = b.preprocess(img)["pixel_values"], b.preprocess(img)["pixel_values"]
    assert torch.equal(a, c)  # evaluation preprocessing is deterministic
    torch.manual_seed(0)
    outs = [b.preprocess(img, train=True)["pixel_values"] for _ in range(4)]
    assert any(not torch.equal(outs[0], o) for o in outs[1:])


@pytest.mark.parametrize(
    "name, match",
    [
        ("resnet-9000", "Unknown backbone 'resnet-9000'.*minilm"),
        ("timm:not_a_model_xyz", "timm has no model 'not_a_model_xyz'"),
        ("torchvision:nope", "torchvision has no model 'nope'"),
        ("hf:/no/such/folder", "does not exist"),
        ("timm:", "names no model"),
    ],
)
def test_unknown_backbones_fail_clearly(name, match):
    with pytest.raises(BackboneError, match=match):
        resolve(name)


def test_weights_file_must_exist(tmp_path):
    b = resolve(f"torchvision:mobilenet_v3_small@{tmp_path / 'nope.pth'}")
    with pytest.raises(BackboneError, match="nope.pth' does not exist"):
        b.encoder()


def test_tiny_bert_fixture_sees_its_words(tiny_bert):
    """The fixture's tokenizer knows its vocabulary, so different texts get different features."""
    import numpy as np
    import torch

    from transferlab.backbones import resolve

    b = resolve(f"hf:{tiny_bert}", max_length=16)
    batch = b.preprocess(["great tasty fresh", "awful stale bland"])
    assert (batch["input_ids"][:, 1:4] != 1).all()  # no [UNK]
    with torch.no_grad():
        f = b.encoder()(**batch).numpy()
    assert np.abs(f[0] - f[1]).max() > 1e-3
