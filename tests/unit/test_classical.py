"""The classical rung's hand-made features: computed once an item for all its seeds."""

import numpy as np


def test_hand_made_image_features_are_computed_once_for_all_seeds(image_folder, tmp_path, monkeypatch):
    """The classical rung's seeds re-split the same images: HOG runs once an image, and the rows
    read back are the ones computed (same features, same predictions as without the memo)."""
    import transferlab
    from transferlab.rungs import classical

    monkeypatch.setattr(classical, "ROWS", classical.RowMemo())
    computed: list[int] = []
    real = classical.image_features

    def counting(items):
        computed.append(len(items))
        return real(items)

    monkeypatch.setattr(classical, "image_features", counting)
    settings = dict(
        backbones=[],
        rungs="majority,classical",
        train_seeds=3,
        learning_curve=False,
        corruptions=False,
        audit=False,
        quiet=True,
    )
    r = transferlab.run(image_folder, out=str(tmp_path / "memo"), **settings)
    n_items = sum(r["task"]["splits"].values())
    assert sum(computed) == n_items  # every image once, though 3 seeds read them all
    monkeypatch.setattr(classical, "ROWS", classical.RowMemo(limit=0))  # nothing kept: recomputed each time
    again = transferlab.run(image_folder, out=str(tmp_path / "no-memo"), force=True, **settings)
    assert sum(computed) > 2 * n_items
    scores = lambda res: [x["test"]["accuracy"]["mean"] for x in res["rungs"] if x["name"] == "classical"]  # noqa: E731
    assert scores(r) == scores(again)


def test_the_row_memo_keeps_order_and_forgets_the_oldest_past_its_size():
    from transferlab.rungs.classical import RowMemo

    memo, calls = RowMemo(limit=3 * 8 * 4), []  # three rows of 4 float64

    def compute(items):
        calls.append(list(items))
        return np.array([[float(x)] * 4 for x in items])

    out = memo(compute, "r", [1, 2, 3], ["a", "b", "c"])
    assert out[:, 0].tolist() == [1.0, 2.0, 3.0] and calls == [[1, 2, 3]]
    out = memo(compute, "r", [3, 1, 4], ["c", "a", "d"])  # c and a are known; d is new; b is forgotten
    assert out[:, 0].tolist() == [3.0, 1.0, 4.0] and calls[-1] == [4]
    assert set(k for _, k in memo.rows) == {"c", "a", "d"}
    memo(compute, "other recipe", [1], ["a"])  # another recipe is another row
    assert calls[-1] == [1]
