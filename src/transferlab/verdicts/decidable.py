"""Can this test split compare rungs at all? ``test_cannot_decide`` when it cannot.

A test split with one class, or with a training class it barely holds, cannot tell rungs apart:
on a one-class test, always predicting that class scores 1.0 and every difference between rungs
measures only how often each predicts it. That happens when the label mix drifts (a class stops
occurring in the newest data of a time split) or when groups or a given split leave a class out.
"""

from __future__ import annotations

import numpy as np

from . import RULES, VerdictContext, verdict

MIN_SUPPORT = 5  # test examples of a class below which its recall is not estimated (recall steps of 0.2)


def needed_support(expected: float) -> int:
    """Test examples a training class needs: 5, or half of what its training share predicts when
    that is fewer (a small test set or a rare class), and never fewer than 1.

    A class 40% of training with 3 of 500 test examples fails (it needed 5); a class 2% of training
    with 1 of 100 passes (its share predicts 2, so 1 is what a representative test holds).
    """
    return int(min(MIN_SUPPORT, max(1, expected // 2)))


def split_problem(y: np.ndarray, y_train: np.ndarray, classes: list[str], split: str = "test") -> dict | None:
    """Why ``y`` (a split's labels) cannot compare rungs trained on ``y_train``, or None when it can.

    ``thin`` lists each training class with fewer examples than ``needed_support`` asks for; the
    split also fails when it holds fewer than two classes.
    """
    y, y_train = np.asarray(y, dtype=np.int64), np.asarray(y_train, dtype=np.int64)
    n_classes = len(classes)
    have = np.bincount(y, minlength=n_classes)
    train = np.bincount(y_train, minlength=n_classes)
    thin = []
    for k in np.flatnonzero(train):
        expected = len(y) * train[k] / train.sum()
        if have[k] < needed_support(expected):
            thin.append(
                {
                    "class": classes[k],
                    "count": int(have[k]),
                    "needed": needed_support(expected),
                    "expected": round(float(expected), 1),
                    "train_share": round(float(train[k] / train.sum()), 3),
                }
            )
    present = int((have > 0).sum())
    if present >= 2 and not thin:
        return None
    return {
        "split": split,
        "n": int(len(y)),
        "classes_present": present,
        "counts": {classes[k]: int(have[k]) for k in range(n_classes)},
        "train_counts": {classes[k]: int(train[k]) for k in range(n_classes)},
        "thin": thin,
    }


def _what_is_wrong(p: dict) -> str:
    """The counts, in the user's words: which classes the test lacks, and how many it should hold."""
    present = [(c, n) for c, n in p["counts"].items() if n > 0]
    if len(present) == 1:
        head = f"all {p['n']} test examples are '{present[0][0]}'"
    elif not present:
        head = "it holds no examples"
    else:
        head = f"it holds {p['n']} examples"
    parts = []
    for t in p["thin"]:
        share = f"{t['train_share']:.0%} of the training set"
        if t["count"] == 0:
            parts.append(f"'{t['class']}' ({share}) has none")
        else:
            parts.append(
                f"'{t['class']}' ({share}) has {t['count']}, fewer than the {t['needed']} needed to "
                f"estimate its recall (its training share predicts {t['expected']:g})"
            )
    return head + ("; " + "; ".join(parts) if parts else "")


def _advice(split_by: str) -> str:
    """Splits that can decide, the likeliest fix for how this split was made first."""
    if split_by == "time":
        fixes = [
            "an earlier train/test cut-off (a larger test_fraction in a --config spec), so the test window "
            "reaches back to where every class still occurs",
            "a stratified random split (run without --time-column) if the order in time does not matter",
            "your own split with --split-column",
        ]
    elif split_by == "group":
        fixes = [
            "another draw of the group split (--seed) or more groups, so that every class reaches test",
            "your own split with --split-column",
        ]
    else:
        fixes = [
            "a stratified random split (run without --split-column: transferlab then splits by label)",
            "a split column in which every class has test examples",
        ]
    return "Split so that every class is in test: " + "; or ".join(fixes) + "."


def _meaning(split_by: str) -> str:
    """What a drifting label mix means for the user, and which window to evaluate on."""
    if split_by == "time":
        return (
            "Decide which window you care about: if the newest data is what the model will see, the missing "
            "classes may have stopped occurring (retrain on recent data, or without them); if every class "
            "still matters, evaluate on a window where every class occurs."
        )
    return (
        "If this test's mix is what the model will see, the missing classes may no longer matter (retrain "
        "without them); if every class still matters, evaluate on a test split where every class occurs."
    )


@RULES.register("test_cannot_decide")
def test_cannot_decide(ctx: VerdictContext) -> list[dict]:
    """test_cannot_decide: the test split holds one class, or too few examples of a training class,
    so no rule compares rungs on it and no rung is recommended."""
    p = ctx.test_problem
    if p is None:
        return []
    one_class = "; always predicting its one class scores 1.0 and looks best" if p["classes_present"] == 1 else ""
    newest = " (the split is by time: the test is the newest data)" if ctx.split_by == "time" else ""
    message = (
        f"The test split cannot compare rungs: {_what_is_wrong(p)}. The label mix changed between training "
        f"and test{newest}: a score on this test says how a rung does on the classes the test still holds, "
        f"not on the task it was trained for{one_class}. {_meaning(ctx.split_by)} No verdict here compares "
        "rungs on this test, and no rung is recommended."
    )
    return [verdict("test_cannot_decide", "error", [], message, _advice(ctx.split_by), split_by=ctx.split_by, **p)]
