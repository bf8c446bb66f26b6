"""What choosing the logistic regression's C costs, and what the cheaper choice costs in accuracy.

The classical and frozen rungs fit a logistic regression whose C is chosen by cross-validated
log loss on train (``transferlab.rungs.linear.fit_logreg``). On real data shipped offline, the
features of the demos and of the tests:

* fine-food reviews, TF-IDF of words and word pairs (the classical rung's text features,
  unscaled): the text demo's split (400 training reviews) and 4,000 training reviews;
* fine-food reviews, 384-d MiniLM features (the text demo's split; the frozen rung's features);
* Animal-MNIST, 1,280-d MobileNetV2 features at 96 px (the image demo's split, 800 training
  images);
* Animal-MNIST, HOG + 16x16 pixel features (2,020-d, the classical rung's image features): the
  image demo's split (800 training images) and 2,000 training images;
* scikit-learn's digits (64-d), half to train, half to test.

Three fits on the same training features, alternating, median of the repeats:

* ``LogisticRegression(max_iter=1000)`` with every other default (C=1), after the same
  standardisation the rung applies: the unit of cost, one fit with no choice;
* the previous choice, copied below as the reference: ``LogisticRegressionCV`` over 13 Cs and
  5 stratified folds, then refitted at the best C;
* transferlab's ``fit_logreg`` as it is now (3 folds up to 1,000 training examples, one 80/20
  split above; Cs a decade apart walked with warm starts until past the minimum, then the
  half-decades beside the best).

Time is the fit alone (features ready). Test accuracy of each, with its 95% bootstrap interval,
and the paired bootstrap difference of the new choice from the previous one and from the
default. Then ``split_check``: on training sets of 200-800, the accuracy lost by choosing C on
one 80/20 split rather than 3 folds (why the split only serves above 1,000 examples). Feature extraction (MiniLM, MobileNetV2) uses the default feature cache, so it is
paid once.

    OMP_NUM_THREADS=1 python bench/logreg_choice.py [--repeats 3] [--sets reviews-tfidf-400 digits] [--split-resamples 2]
Writes bench/results/logreg_choice.json.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
from run_all import alternate, median, save

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# --- the previous choice, kept as the reference -----------------------------------------------
def previous_choice(X, y, scale: bool, seed: int = 0):
    """C by 5-fold cross-validated log loss over 13 Cs with ``LogisticRegressionCV`` (warm-started
    along each fold's path), refitted on all of train at the best C: transferlab's choice until
    the cheaper walk replaced it. Returns the pipeline and C."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    grid = tuple(float(f"{10**e:.3g}") for e in np.arange(-4, 2.01, 0.5))
    k = int(min(5, np.unique(y, return_counts=True)[1].min()))
    cv = LogisticRegressionCV(
        Cs=list(grid),
        l1_ratios=(0.0,),
        cv=StratifiedKFold(k, shuffle=True, random_state=seed),
        scoring="neg_log_loss",
        max_iter=1000,
        tol=1e-3,
        random_state=seed,
        use_legacy_attributes=False,
    )
    fitted = make_pipeline(*([StandardScaler()] if scale else []), cv).fit(X, y)
    loss = -np.asarray(fitted[-1].scores_).reshape(k, len(grid)).mean(0)
    return fitted, float(grid[int(np.argmin(loss))])


# --- the data -----------------------------------------------------------------------------------
def _demo_task(modality: str, **caps):
    from transferlab.demo import demo_data, demo_spec
    from transferlab.runner import prepare_task

    spec = demo_spec(modality, **caps)
    return prepare_task(demo_data(modality), spec), spec


def _parts(task, X_train, X_test) -> dict:
    return {
        "X_train": X_train,
        "y_train": np.asarray(task.part("train")[1]),
        "X_test": X_test,
        "y_test": np.asarray(task.part("test")[1]),
        "n_classes": len(task.classes),
    }


def tfidf(max_train: int) -> dict:
    from transferlab.rungs.classical import _fit_tfidf

    task, spec = _demo_task("text", max_train=max_train, max_test=1000)
    vec, X_train = _fit_tfidf(task.part("train")[0], task, spec)
    return {
        **_parts(task, X_train, vec.transform(task.part("test")[0])),
        "scale": False,
        "features": f"TF-IDF, {X_train.shape[1]:,} terms",
    }


def backbone_features(modality: str) -> dict:
    from transferlab.backbones import resolve
    from transferlab.features import extract

    task, spec = _demo_task(modality)
    backbone = resolve(spec.backbones[0], max_length=spec.max_length, image_size=spec.image_size)
    X = {s: np.asarray(extract(backbone, task.part(s)[0], task.part_hashes(s)).features) for s in ("train", "test")}
    return {
        **_parts(task, X["train"], X["test"]),
        "scale": True,
        "features": f"{X['train'].shape[1]}-d {backbone.name}",
    }


def hog_pixels(max_train: int) -> dict:
    from transferlab.rungs.classical import image_features

    task, _ = _demo_task("image", max_train=max_train)
    X_train = image_features(task.part("train")[0])
    return {
        **_parts(task, X_train, image_features(task.part("test")[0])),
        "scale": True,
        "features": f"{X_train.shape[1]}-d HOG + 16x16 pixels",
    }


def digits() -> dict:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, stratify=y, random_state=0)
    return {
        "X_train": X_train,
        "y_train": y_train,
        "X_test": X_test,
        "y_test": y_test,
        "n_classes": 10,
        "scale": True,
        "features": "64-d 8x8 pixels",
    }


SETS = {
    "reviews-tfidf-400": ("fine-food reviews (text demo split)", lambda: tfidf(400)),
    "reviews-tfidf-4000": ("fine-food reviews, 4,000 training", lambda: tfidf(4000)),
    "reviews-minilm": ("fine-food reviews (text demo split)", lambda: backbone_features("text")),
    "animals-mobilenet": ("Animal-MNIST (image demo split)", lambda: backbone_features("image")),
    "animals-hog-800": ("Animal-MNIST (image demo split)", lambda: hog_pixels(800)),
    "animals-hog-2000": ("Animal-MNIST, 2,000 training", lambda: hog_pixels(2000)),
    "digits": ("scikit-learn digits, half to train", digits),
}


# --- the comparison -----------------------------------------------------------------------------
def compare(name: str, repeats: int) -> dict:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from transferlab.evaluation.compare import paired_bootstrap
    from transferlab.evaluation.metrics import bootstrap_ci, score
    from transferlab.rungs.linear import fit_logreg

    title, load = SETS[name]
    d = load()
    X, y, scale = d["X_train"], d["y_train"], d["scale"]
    how: dict = {}

    def default():
        return make_pipeline(*([StandardScaler()] if scale else []), LogisticRegression(max_iter=1000)).fit(X, y), 1.0

    def new():
        model, c, chosen = fit_logreg(X, y, None, None, metric="accuracy", seed=0, scale=scale)
        how.update(chosen)
        return model, c

    contenders = {
        "LogisticRegression(max_iter=1000)": default,
        "previous choice (LogisticRegressionCV, 13 C x 5 folds)": lambda: previous_choice(X, y, scale),
        "transferlab fit_logreg": new,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        times, outputs = alternate(contenders, repeats)
    y_test, k = d["y_test"], d["n_classes"]
    preds = {n: model.predict(d["X_test"]) for n, (model, _) in outputs[-1].items()}
    unit = median(times["LogisticRegression(max_iter=1000)"])
    rows = {}
    for n, (_, c) in outputs[-1].items():
        rows[n] = {
            "seconds": median(times[n]),
            "all_seconds": times[n],
            "time_over_default": median(times[n]) / unit,
            "C": c,
            "test_accuracy": score("accuracy", y_test, preds[n]),
            "ci": bootstrap_ci(y_test, preds[n], n_classes=k)["accuracy"],
        }
    ours = preds["transferlab fit_logreg"]
    return {
        "set": name,
        "task": title,
        "features": d["features"],
        "train": int(len(y)),
        "test": int(len(y_test)),
        "classes": k,
        "repeats": repeats,
        "contenders": rows,
        "chosen": how,
        "new_minus_previous": paired_bootstrap(
            y_test, ours, preds["previous choice (LogisticRegressionCV, 13 C x 5 folds)"], "accuracy", n_classes=k
        ),
        "new_minus_default": paired_bootstrap(
            y_test, ours, preds["LogisticRegression(max_iter=1000)"], "accuracy", n_classes=k
        ),
    }


def split_check(resamples: int) -> list[dict]:
    """Why folds below ``HOLDOUT_ABOVE``: on small training sets (subsamples of the sets above), the
    test accuracy lost by C chosen on 3 folds and on one 80/20 split, against the best C of the
    grid in hindsight (each C refitted on the same training set). A benchmark of the procedure on
    the test split, not a held-out score of any model."""
    from transferlab.evaluation.metrics import score
    from transferlab.rungs import linear

    loaded: dict[str, dict] = {}
    rows = []
    for name, n in (
        ("reviews-minilm", 200),
        ("reviews-minilm", 400),
        ("reviews-tfidf-400", 400),
        ("animals-mobilenet", 400),
        ("animals-mobilenet", 800),
    ):
        d = loaded.setdefault(name, SETS[name][1]())
        lost: dict[str, list[float]] = {"folds": [], "split": []}
        for r in range(resamples):
            rng = np.random.default_rng(r)
            idx = np.sort(rng.choice(len(d["y_train"]), n, replace=False)) if n < len(d["y_train"]) else slice(None)
            X, y = d["X_train"][idx], d["y_train"][idx]

            def accuracy(**kw):
                model, c, _ = linear.fit_logreg(X, y, None, None, metric="accuracy", seed=r, scale=d["scale"], **kw)
                return c, score("accuracy", d["y_test"], model.predict(d["X_test"]))

            by_c = dict(accuracy(grid=(c,)) for c in linear.C_GRID)
            default_above = linear.HOLDOUT_ABOVE
            for how, above in (("folds", default_above), ("split", 0)):
                linear.HOLDOUT_ABOVE = above
                try:
                    c, _ = accuracy()
                finally:
                    linear.HOLDOUT_ABOVE = default_above
                lost[how].append(max(by_c.values()) - by_c[c])
        rows.append({"set": name, "train": n, "resamples": resamples, "accuracy_lost": lost})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sets", nargs="+", choices=list(SETS), default=list(SETS))
    parser.add_argument(
        "--split-resamples",
        type=int,
        default=2,
        help="Resamples for the one-split-vs-folds check on small training sets (0 to skip it).",
    )
    args = parser.parse_args()
    results = []
    for name in args.sets:
        start = time.perf_counter()
        results.append(compare(name, args.repeats))
        print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)
    start = time.perf_counter()
    check = split_check(args.split_resamples) if args.split_resamples else []
    print(f"split check: {time.perf_counter() - start:.0f} s", flush=True)
    save("logreg_choice", {"results": results, "split_check": check})
    print(section({"results": results, "split_check": check, "date": "now"}))


def section(d: dict) -> str:
    """This benchmark's part of bench/RESULTS.md."""
    lines, notes = [], []
    for r in d["results"]:
        for n, v in r["contenders"].items():
            diff = (
                r["new_minus_previous"]
                if n.startswith("previous")
                else (r["new_minus_default"] if n.startswith("LogisticRegression(") else None)
            )
            delta = (
                "—"
                if diff is None
                else (
                    f"{diff['delta']:+.3f} [{diff['ci'][0]:+.3f}, {diff['ci'][1]:+.3f}]"
                    + (" significant" if diff["significant"] else "")
                )
            )
            lines.append(
                f"| {r['task']}, {r['features']} ({r['train']:,} train) | {n} | {v['C']:g} | "
                f"{v['test_accuracy']:.3f} [{v['ci'][0]:.3f}, {v['ci'][1]:.3f}] | {delta} | "
                f"{1000 * v['seconds']:.0f} ms | {v['time_over_default']:.2f} |"
            )
        how = r["chosen"]
        tried = how.get("cv_log_loss_by_C", {})
        split = f"{how['folds']} folds" if how.get("by") == "cv" else "one 80/20 split"
        notes.append(
            f"{r['set']}: the new choice scored {len(tried)} of {len(how.get('C_grid', tried))} Cs on {split} "
            f"(log loss {', '.join(f'{c} {v:.3f}' for c, v in tried.items())})."
        )
    repeats = d["results"][0]["repeats"] if d["results"] else "?"
    split = "\n".join(
        f"| {r['set']} | {r['train']} | {r['resamples']} | "
        + " | ".join(
            f"{np.mean(r['accuracy_lost'][h]):.3f} (largest {max(r['accuracy_lost'][h]):.3f})"
            for h in ("folds", "split")
        )
        + " |"
        for r in d.get("split_check", [])
    )
    split = (
        split
        and f"""
Why 3 folds up to 1,000 training examples: on subsamples of the sets above, the test accuracy
lost by the chosen C against the best C of the grid in hindsight (each refitted on the same
training set), mean over resamples (different subsamples and split seeds):

| set | train | resamples | lost with 3 folds | lost with one 80/20 split |
|---|---|---|---|---|
{split}
"""
    )
    return f"""## Choosing the logistic regression's C: cost and accuracy

`OMP_NUM_THREADS=1 python bench/logreg_choice.py` — the classical and frozen rungs' logistic
regression on the demos' features: transferlab's choice of C (`fit_logreg`: log loss on 3
stratified folds, or one 80/20 split above 1,000 training examples; Cs a decade apart walked
from small to large with warm starts until the loss is past its minimum, then the half-decades
beside the best; refit warm-started) against the previous choice (`LogisticRegressionCV` over
the same 13 Cs and 5 folds) and one `LogisticRegression(max_iter=1000)` at C=1 after the same
standardisation (the unit of cost). Time is the fit on ready
features, median of {repeats} alternating repeats; accuracy is on the test split with its 95%
bootstrap interval, and "difference" is the new choice's accuracy minus that row's, paired over
the same test examples. Run {d["date"]}.

| data, features | fit | C | test accuracy | difference (new − it) | time | time / default fit |
|---|---|---|---|---|---|---|
{chr(10).join(lines)}

{chr(10).join("- " + n for n in notes)}
{split}"""


if __name__ == "__main__":
    main()
