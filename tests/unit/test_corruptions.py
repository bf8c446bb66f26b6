import numpy as np
import pandas as pd
import pytest

import transferlab
from transferlab.errors import DataError
from transferlab.evaluation.corruptions import CORRUPTIONS, corrupted_sets


def test_every_corruption_changes_items_and_leaves_originals_alone():
    texts = ["The quick brown fox jumps over the lazy dog again and again"] * 5
    images = [np.random.default_rng(i).integers(0, 255, (32, 32), dtype=np.uint8) for i in range(5)]
    for modality, items in (("text", texts), ("image", images)):
        before = [x.copy() if isinstance(x, np.ndarray) else x for x in items]
        sets = corrupted_sets(modality, items, seed=0)
        assert set(sets) == set(CORRUPTIONS[modality].list_()) and len(sets) >= 4
        for name, corrupted in sets.items():
            assert len(corrupted) == len(items)
            changed = [
                not np.array_equal(np.asarray(a), np.asarray(b)) if modality == "image" else a != b
                for a, b in zip(corrupted, items)
            ]
            assert any(changed), name
        for a, b in zip(items, before):
            assert np.array_equal(np.asarray(a), np.asarray(b))


def test_run_scores_rungs_out_of_distribution(reviews_csv, tmp_path):
    ood = tmp_path / "ood.csv"
    pd.DataFrame(
        {"review": ["simply great and delicious", "awful and stale, terrible"], "stars": ["pos", "neg"]}
    ).to_csv(ood, index=False)
    r = transferlab.run(
        reviews_csv,
        text_column="review",
        label_column="stars",
        rungs="majority,classical",
        ood=str(ood),
        out=str(tmp_path / "r"),
        quiet=True,
    )
    scores = r.rung("classical")["ood"]
    assert set(scores) == {"typos", "casing", "truncation", "word_dropout", "ood:ood.csv"}
    assert scores["ood:ood.csv"]["kind"] == "user" and scores["ood:ood.csv"]["n"] == 2
    assert scores["truncation"]["drop"]["accuracy"] == pytest.approx(
        1.0 - scores["truncation"]["accuracy"]["mean"], abs=0.2
    )
    assert r.rung("majority")["ood"]["casing"]["drop"]["accuracy"] == 0  # a constant guess cannot degrade


def test_ood_label_unknown_is_a_clear_error(reviews_csv, tmp_path):
    ood = tmp_path / "ood.csv"
    pd.DataFrame({"review": ["meh"], "stars": ["neutral"]}).to_csv(ood, index=False)
    with pytest.raises(DataError, match="ood.csv row 2: label 'neutral' of the OOD set is not a class"):
        transferlab.run(
            reviews_csv,
            text_column="review",
            label_column="stars",
            rungs="majority",
            ood=str(ood),
            out=str(tmp_path / "r"),
            quiet=True,
        )
    assert not (tmp_path / "r").exists()
