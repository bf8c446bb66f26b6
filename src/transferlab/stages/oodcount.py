"""How many items each fitted rung predicts out of distribution, for the plan (``stages.costplan``).

The rungs predict the corrupted copies of the test items and the user's own OOD set
(``stages.fit.ood_sets``). Text is counted at the training items' padded length: a backbone
embeds text in time about proportional to its padded length, and the corrupted copies are not
the training items' length (a truncated review keeps half its words).
"""

from __future__ import annotations

import numpy as np

from ..config import RunSpec
from ..data import Task


def ood_item_count(
    task: Task, spec: RunSpec, skip: bool = False, ood: dict | None = None, backbones: list | tuple = ()
) -> float:
    """Items each fitted rung predicts out of distribution: the corrupted test copies and the user's
    set (``ood``: the sets the run made; counted from the settings without it). Text is counted at
    the training items' length, by the first backbone's padded length of the OOD items against a
    sample of the training items': a typo-ed copy is longer, a truncated one (half the words) or
    one with a fifth of its words dropped shorter, and text embeds in time about proportional to
    its padded length (the plan timed 1,200 corrupted fine-food reviews at 19 ms each, which took
    13 ms)."""
    if skip:
        return 0
    tokenizer = next((b for b in backbones if getattr(b, "sort_key", None) is not None), None)
    if ood is None and task.modality == "text" and tokenizer is not None:
        from .fit import ood_sets

        ood = ood_sets(task, spec)
    if ood is not None:
        items = [x for s in ood.values() for x in s["items"]]
        return len(items) * (_length_share(tokenizer, task, items) if tokenizer is not None else 1.0)
    from ..evaluation.corruptions import CORRUPTIONS

    n, registry = 0, CORRUPTIONS.get(task.modality)
    if spec.corruptions and registry is not None:
        n += min(task.sizes()["test"], spec.ood_max_items) * len(registry.list_())
    if spec.ood:
        from ..data import load_data

        n += len(load_data(spec.ood, text_column=spec.text_column, label_column=spec.label_column).items)
    return n


LENGTH_SAMPLE = 500  # items of each side whose padded lengths are compared


def _length_share(backbone, task: Task, items: list) -> float:
    """The mean padded length of ``items`` over the training items' (samples of each), for ``backbone``."""
    from ..training.probe import token_lengths

    if not items:
        return 1.0
    rng = np.random.default_rng(0)
    train = task.part("train")[0] or task.items

    def sample(xs: list) -> list:
        return [xs[i] for i in sorted(rng.choice(len(xs), min(LENGTH_SAMPLE, len(xs)), replace=False))]

    ours, theirs = token_lengths(backbone, sample(items)), token_lengths(backbone, sample(train))
    if ours is None or theirs is None or theirs.mean() <= 0:
        return 1.0
    return float(ours.mean() / theirs.mean())
