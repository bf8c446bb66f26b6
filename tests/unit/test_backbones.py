"""The backbone contract, run over every source with tiny random models made here."""

import numpy as np
import pytest
import torch

from transferlab.backbones import resolve
from transferlab.errors import BackboneError


@pytest.fixture(params=["hf", "timm", "torchvision"])
def backbone(request, tiny_bert, tiny_torchvision_weights):
    if request.param == "hf":
        return resolve(f"hf:{tiny_bert}", max_length=16), ["great taste", "awful stale box really"]
    img = [np.zeros((20, 20, 3), dtype=np.uint8), np.full((20, 20), 200, dtype=np.uint8)]
    if request.param == "timm":
        torch.manual_seed(1234)
        import timm
        from safetensors.torch import save_file

        path = tiny_torchvision_weights.parent / "test_resnet.safetensors"
        save_file({k: v.contiguous() for k, v in timm.create_model("test_resnet").state_dict().items()}, str(path))
        return resolve(f"timm:test_resnet@{path}", image_size=32), img
    return resolve(f"torchvision:mobilenet_v3_small@{tiny_torchvision_weights}", image_size=32), img


def test_contract(backbone):
    b, items = backbone
    enc = b.encoder()
    with torch.inference_mode():
        feats = enc(**b.preprocess(items))
    assert feats.shape == (2, b.feature_dim)
    groups = b.layer_groups(enc)
    assert len(groups) >= 3  # stem, blocks, top
    ids = [id(p) for g in groups for p in g]
    assert len(ids) == len(set(ids)) and set(ids) == {id(p) for p in enc.parameters()}
    assert b.num_params() == sum(p.numel() for p in enc.parameters())
    assert b.provenance["pretrained_on"] and b.provenance["licence"]
    # the scratch copy has the same architecture and different (random) weights
    scratch = b.trainable_copy(pretrained=False)
    assert [p.shape for p in scratch.parameters()] == [p.shape for p in enc.parameters()]
    assert any(not torch.equal(a, c) for a, c in zip(scratch.parameters(), enc.parameters()))
    # a trainable copy never aliases the shared pretrained encoder
    copy = b.trainable_copy(pretrained=True)
    assert all(a.data_ptr() != c.data_ptr() for a, c in zip(copy.parameters(), enc.parameters()))


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


@pytest.mark.parametrize("name, match", [
    ("resnet-9000", "Unknown backbone 'resnet-9000'.*minilm"),
    ("timm:not_a_model_xyz", "timm has no model 'not_a_model_xyz'"),
    ("torchvision:nope", "torchvision has no model 'nope'"),
    ("hf:/no/such/folder", "does not exist"),
    ("timm:", "names no model"),
])
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
