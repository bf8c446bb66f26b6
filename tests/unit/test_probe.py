"""The probe's training steps: text timed at the padded lengths the loop's batches really have, and
finetune's partly frozen steps timed rather than guessed from the count of open layer groups."""

import dataclasses

import numpy as np
import pytest
from conftest import FILLER, WORDS

from transferlab.backbones import resolve
from transferlab.config import RunSpec
from transferlab.stages import make_plan, ood_item_count, prepare_task, resolve_backbones
from transferlab.stages.costplan import unfreeze_counts
from transferlab.training.probe import STRATA, probe_backbone, steady_batches, token_lengths

TEXT = {"text_column": "review", "label_column": "stars", "max_length": 48, "head_epochs": 2}


def _texts(n=200, seed=0):
    """Texts whose lengths are skewed as reviews are: most short, a few long."""
    rng = np.random.default_rng(seed)
    words = FILLER + WORDS["pos"] + WORDS["neg"]
    return [" ".join(rng.choice(words, size=int(min(rng.exponential(10) + 2, 60)))) for _ in range(n)]


@pytest.fixture
def bert(tiny_bert):
    return resolve(f"hf:{tiny_bert}", max_length=48)


def test_text_steps_are_timed_at_the_quantile_bands_of_the_loops_padded_length(bert):
    texts = _texts()
    lengths = token_lengths(bert, texts)
    assert lengths is not None and lengths.max() == 48 and np.median(lengths) < 20
    first, batches, stratified = steady_batches(bert, texts, 16, np.random.default_rng(0))
    assert stratified and len(batches) == STRATA
    longest = [token_lengths(bert, rows).max() for rows in batches]
    # the loop's random batches, simulated: the middles of their quantile bands
    rng = np.random.default_rng(1)
    sim = [lengths[rng.permutation(len(texts))[:16]].max() for _ in range(2000)]
    middles = np.quantile(sim, (np.arange(STRATA) + 0.5) / STRATA)
    assert np.all(np.abs(np.array(longest) - middles) <= 3), (longest, middles)
    assert token_lengths(bert, first).max() == max(sim)  # the cold first step at the full shape


def test_items_without_a_length_get_random_batches():
    class Images:  # no sort_key: every batch has the same shape
        pass

    first, batches, stratified = steady_batches(Images(), list(range(100)), 8, np.random.default_rng(0))
    assert not stratified and len(first) == 8 and all(len(b) == 8 for b in batches)
    assert len({tuple(b) for b in batches}) == len(batches)


def test_finetune_steps_with_frozen_groups_are_timed(bert):
    spec = RunSpec(unfreeze_stages=3)
    counts = unfreeze_counts(bert, spec)
    groups = len(bert.layer_groups(bert.encoder()))
    assert counts and all(0 < n < groups for n in counts)
    t = probe_backbone(bert, _texts(), eval_batch_size=32, batch_size=8, train=True, open_counts=counts)
    assert set(t.train_open_ratios) == set(counts)
    assert all(0 < r <= 1 for r in t.train_open_ratios.values())
    assert 0 < t.train_forward <= t.train_step
    # without finetune nothing is timed apart
    assert probe_backbone(bert, _texts(), eval_batch_size=32, batch_size=8, train=True).train_open_ratios is None


def test_the_plan_of_finetune_follows_its_timed_partial_steps(tiny_bert, reviews_csv, tmp_path):
    spec = RunSpec(
        backbones=[f"hf:{tiny_bert}"], rungs="finetune,full", epochs=3, cache_dir=str(tmp_path / "c"), **TEXT
    )
    task = prepare_task(reviews_csv, spec)
    backbones = resolve_backbones(spec, task.modality)
    name = f"hf:{tiny_bert}"

    def plan(ratio):
        base = make_plan(task, backbones, spec, ood_items=ood_item_count(task, spec)).probes
        t = base[name]
        probes = {name: dataclasses.replace(t, train_open_ratios={n: ratio for n in t.train_open_ratios})}
        p = make_plan(task, backbones, spec, probes=probes, ood_items=ood_item_count(task, spec))
        return p.stage(f"finetune:{name}").seconds, p.stage(f"full:{name}").seconds, t

    cheap_finetune, full_a, t = plan(0.05)
    dear_finetune, full_b, _ = plan(1.0)
    steps = t.train_step * len(task.part("train")[0]) / 16  # about one epoch of full steps
    assert dear_finetune - cheap_finetune > 0.5 * steps  # two of the three epochs run partly frozen
    assert full_a == pytest.approx(full_b, rel=0.5)  # full trains everything every epoch either way
