import math

import numpy as np
import pytest
import torch
from torch import nn

from transferlab.backbones import resolve
from transferlab.data.splits import content_hash
from transferlab.features import extract
from transferlab.training import LoopConfig, ParamGroup, fit


def test_cache_hit_and_invalidation(tiny_bert, tmp_path):
    b = resolve(f"hf:{tiny_bert}", max_length=16)
    items = [f"great taste {i}" for i in range(10)]
    hashes = [content_hash(t) for t in items]
    first = extract(b, items, hashes, cache_dir=tmp_path, batch_size=4)
    again = extract(b, items, hashes, cache_dir=tmp_path, batch_size=4)
    assert not first.from_cache and again.from_cache
    np.testing.assert_array_equal(first.features, again.features)
    # extraction keeps input order even though it batches by length
    with torch.inference_mode():
        direct = b.encoder()(**b.preprocess(items[3:4])).numpy()
    np.testing.assert_allclose(first.features[3:4], direct, atol=1e-5)
    items[4] = "awful stale"
    changed = extract(b, items, [content_hash(t) for t in items], cache_dir=tmp_path, batch_size=4)
    assert not changed.from_cache
    # a different preprocessing (max_length) is a different cache entry
    b2 = resolve(f"hf:{tiny_bert}", max_length=8)
    assert not extract(b2, items[:3], [content_hash(t) for t in items[:3]], cache_dir=tmp_path).from_cache


def test_truncated_cache_file_is_rebuilt(tiny_bert, tmp_path):
    b = resolve(f"hf:{tiny_bert}", max_length=16)
    items = ["a b c", "great"]
    hashes = [content_hash(t) for t in items]
    first = extract(b, items, hashes, cache_dir=tmp_path)
    first.path.write_bytes(first.path.read_bytes()[:60])
    assert not extract(b, items, hashes, cache_dir=tmp_path).from_cache


def test_corrupted_or_unchecked_cache_entries_are_rebuilt(tiny_bert, tmp_path):
    b = resolve(f"hf:{tiny_bert}", max_length=16)
    items = ["a b c", "great", "not good at all"]
    hashes = [content_hash(t) for t in items]
    first = extract(b, items, hashes, cache_dir=tmp_path)
    expected = np.array(first.features)
    assert extract(b, items, hashes, cache_dir=tmp_path).from_cache
    data = bytearray(first.path.read_bytes())
    data[-5] ^= 0xFF  # one flipped bit pattern in the last feature: same size, same header
    first.path.write_bytes(bytes(data))
    again = extract(b, items, hashes, cache_dir=tmp_path)
    assert not again.from_cache and np.allclose(again.features, expected, atol=1e-6)
    first.path.with_suffix(".json").unlink()  # an entry whose checksum was never recorded
    assert not extract(b, items, hashes, cache_dir=tmp_path).from_cache
    assert not list(tmp_path.glob("*.tmp*"))


def _blobs(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = (rng.normal(size=(n, 4)) + 3 * y[:, None]).astype(np.float32)
    return x, y


def test_loop_learns_stops_early_and_restores_best():
    torch.manual_seed(0)
    xtr, ytr = _blobs(200, 0)
    xva, yva = _blobs(100, 1)
    model = nn.Sequential(nn.Linear(4, 2))
    wrapped = type("W", (nn.Module,), {"forward": lambda self, x: model(x)})()
    wrapped.add_module("m", model)
    make_batch = lambda rows, train: {"x": torch.from_numpy(np.stack(rows))}  # noqa: E731
    groups = [ParamGroup("all", list(model.parameters()), 0.05)]
    res = fit(
        wrapped,
        make_batch,
        (list(xtr), ytr),
        (list(xva), yva),
        groups,
        LoopConfig(epochs=30, batch_size=32, patience=2),
    )
    assert res.best_val > 0.95
    assert res.stopped_early and len(res.curves["epoch"]) < 30
    assert res.curves["val_metric"][res.best_epoch - 1] == res.best_val
    # restored weights reproduce the best validation score
    with torch.no_grad():
        acc = (model(torch.from_numpy(xva)).argmax(1).numpy() == yva).mean()
    assert acc == res.best_val


def test_start_score_keeps_initial_weights_when_nothing_beats_them():
    torch.manual_seed(0)
    xtr, ytr = _blobs(50, 0)
    model = nn.Linear(4, 2)
    before = [p.detach().clone() for p in model.parameters()]
    wrapped = nn.Sequential()
    wrapped.forward = lambda x: model(x)
    wrapped.add_module("m", model)
    make_batch = lambda rows, train: {"x": torch.from_numpy(np.stack(rows))}  # noqa: E731
    res = fit(
        wrapped,
        make_batch,
        (list(xtr), ytr),
        (list(xtr), ytr),
        [ParamGroup("all", list(model.parameters()), 0.1)],
        LoopConfig(epochs=2, patience=5),
        start_score=1.01,
    )
    assert res.best_epoch == 0
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_a_last_batch_too_small_for_batchnorm_joins_the_one_before():
    from transferlab.training.loop import batch_starts

    assert batch_starts(49, 16) == [0, 16, 32]  # 1 left over: 32..49 is one batch of 17
    assert batch_starts(50, 16) == [0, 16, 32, 48]  # 2 left over: a batch of its own
    assert batch_starts(50, 16, processes=2) == [0, 16, 32]  # 2 cannot give two processes two each
    assert batch_starts(1, 16) == [0] and batch_starts(16, 16) == [0]


def _fit_blobs(epochs: int = 3) -> tuple[list[torch.Tensor], object]:
    """A two-group model fitted by the loop, the first group frozen in epoch 1 (gradual unfreezing)."""
    from transferlab.training import set_trainable

    torch.manual_seed(0)
    xtr, ytr = _blobs(120, 0)
    xva, yva = _blobs(60, 1)
    model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2))
    wrapped = nn.Sequential()
    wrapped.forward = lambda x: model(x)
    wrapped.add_module("m", model)
    groups = [
        ParamGroup("body", list(model[:2].parameters()), 0.01),
        ParamGroup("head", list(model[2].parameters()), 0.05),
    ]
    res = fit(
        wrapped,
        lambda rows, train: {"x": torch.from_numpy(np.stack(rows))},
        (list(xtr), ytr),
        (list(xva), yva),
        groups,
        LoopConfig(epochs=epochs, batch_size=16, patience=epochs),
        on_epoch=lambda epoch: set_trainable(groups, {1} if epoch == 1 else {0, 1}) or "train",
    )
    return [p.detach().clone() for p in model.parameters()], res


def test_the_loop_steps_with_the_fused_adamw_and_trains_what_the_per_parameter_loop_trains(monkeypatch):
    from transferlab.training import loop

    made = []
    fused_adamw = loop.adamw
    monkeypatch.setattr(loop, "adamw", lambda *a: made.append(fused_adamw(*a)) or made[-1])
    fused, res_fused = _fit_blobs()
    assert made[0].defaults["fused"]  # CPU has the kernel in the torch transferlab needs

    monkeypatch.setattr(loop, "adamw", lambda groups, decay: torch.optim.AdamW(groups, weight_decay=decay))
    plain, res_plain = _fit_blobs()
    # the same update up to float rounding: same weights, same curves, same best epoch
    assert max(float((a - b).abs().max()) for a, b in zip(fused, plain)) < 1e-5
    assert res_fused.curves["val_metric"] == res_plain.curves["val_metric"]
    assert res_fused.best_epoch == res_plain.best_epoch
    np.testing.assert_allclose(res_fused.curves["train_loss"], res_plain.curves["train_loss"], rtol=1e-5)


def test_adamw_falls_back_to_the_per_parameter_loop_where_there_is_no_fused_kernel():
    from transferlab.training.loop import adamw

    real = nn.Parameter(torch.ones(3))
    assert adamw([{"params": [real], "lr": 0.1}], 0.01).defaults["fused"]
    complex_param = nn.Parameter(torch.ones(3, dtype=torch.complex64))  # no fused kernel for complex numbers
    opt = adamw([{"params": [complex_param], "lr": 0.1}], 0.01)
    assert not opt.defaults["fused"]
    complex_param.grad = torch.ones(3, dtype=torch.complex64)
    opt.step()  # the fused kernel would raise here
    assert not torch.equal(complex_param.detach(), torch.ones(3, dtype=torch.complex64))


def test_a_fractional_epoch_count_trains_that_share_of_the_last_epoch_and_decays_over_it(monkeypatch):
    """epochs=2.5 (transformers' num_train_epochs): two epochs and half of a third, each validated,
    with the learning rate's decay planned over those 20 steps, not over 3 epochs' 24."""
    torch.manual_seed(0)
    xtr, ytr = _blobs(128, 0)  # 8 batches of 16 an epoch
    xva, yva = _blobs(40, 1)
    model = nn.Linear(4, 2)
    wrapped = nn.Sequential()
    wrapped.forward = lambda x: model(x)
    wrapped.add_module("m", model)
    groups = [ParamGroup("all", list(model.parameters()), 0.1)]
    rates: list[float] = []
    seen: list[int] = []

    def make_batch(rows, train):
        if train:
            seen.append(len(rows))
        return {"x": torch.from_numpy(np.stack(rows))}

    opt_step = torch.optim.AdamW.step

    def recording_step(self, *args, **kwargs):
        rates.append(self.param_groups[0]["lr"])
        return opt_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", recording_step)
    res = fit(wrapped, make_batch, (list(xtr), ytr), (list(xva), yva), groups, LoopConfig(epochs=2.5, patience=5))
    assert len(seen) == 20 and res.curves["epoch"] == [1, 2, 3]
    assert res.curves["phase"][-1] == "train (4 of 8 batches)" and not res.stopped_early
    # the cosine decay over the last 20% of 20 steps: at step 19 of 0-19, 3/4 of the way to its floor
    # (over 24 steps it would not have begun)
    assert rates[-1] == pytest.approx(0.1 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.75))))
    assert max(rates) == pytest.approx(0.1)
