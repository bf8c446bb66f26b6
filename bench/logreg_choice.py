"""What choosing the logistic regression's C costs, and what the cheaper choice costs in accuracy.

The classical and frozen rungs fit a logistic regression whose C is chosen by held-out log loss
on train (``transferlab.rungs.linear.fit_logreg``). On real data shipped offline, the features
of the demos and of the tests:

* fine-food reviews, TF-IDF of words and word pairs (the classical rung's text features,
  unscaled): the text demo's split (400 training reviews) and 4,000 training reviews;
* fine-food reviews, 384-d MiniLM features (the text demo's split; the frozen rung's features);
* Animal-MNIST, 1,280-d MobileNetV2 features at 96 px (the image demo's split, 800 training
  images);
* Animal-MNIST, HOG + 16x16 pixel features (2,020-d, the classical rung's image features): the
  image demo's split (800 training images) and 2,000 training images;
* scikit-learn's digits (64-d), half to train, half to test.

Five fits on the same training features, alternating, median of the repeats:

* ``LogisticRegression(max_iter=1000)`` with every other default (C=1), after the same
  standardisation the rung applies: the unit of cost, one fit with no choice;
* the same at the C ``fit_logreg`` chooses: one fit at equal accuracy, by someone who already
  knew that C;
* the choice before the walk, copied below as a reference: ``LogisticRegressionCV`` over 13 Cs
  and 5 stratified folds, then refitted at the best C;
* the walk before the probes, copied below as a reference (``walk_choice``: 3 folds up to 1,000
  training examples, one 80/20 split above, each C a scikit-learn fit);
* transferlab's ``fit_logreg`` as it is now (one half/half split above 300 training examples,
  3 folds up to 300; Cs a decade apart walked from 0.1 with warm starts until past the minimum,
  then the half-decades beside the best; lean float32 probes, refit from their weights).

Time is the fit alone (features ready). Test accuracy of each, with its 95% bootstrap interval,
and the paired bootstrap difference of the new choice from each of the others. Then
``split_check``: on training sets of 200-800, the accuracy lost by choosing C on one split
rather than 3 folds (why folds serve up to 300 examples). Feature extraction (MiniLM,
MobileNetV2) uses the default feature cache, so it is paid once.

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


def walk_choice(X, y, scale: bool, seed: int = 0):
    """transferlab's choice of C before the probes (kept as a reference): 3 stratified folds up
    to 1,000 training examples (one 80/20 split above), each fold a warm-started scikit-learn
    ``LogisticRegression`` walked over Cs a decade apart from 10^-4 until the log loss rose more
    than 1% above the best, then the half-decades beside the best; refitted on all of train from
    the first fold's model. Returns the pipeline and C."""
    import copy

    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    grid = tuple(float(f"{10**e:.3g}") for e in np.arange(-4, 2.01, 0.5))
    scaler = StandardScaler().fit(X) if scale else None
    X = X if scaler is None else scaler.transform(X)
    classes = np.unique(y)

    def fit(model, X, y, c):  # until the gradient is a tenth of its start and below 0.001
        if hasattr(model, "coef_"):
            proba, coef = model.predict_proba(X), model.coef_
        else:
            proba = np.full((len(y), len(classes)), 1 / len(classes))
            coef = np.zeros((1 if len(classes) == 2 else len(classes), X.shape[1]))
        residual = (proba - (y[:, None] == classes[None, :])) / len(y)
        residual = residual[:, 1:] if coef.shape[0] == 1 else residual
        grad = np.asarray(X.T @ residual).T + coef / (c * len(y))
        start = max(np.abs(grad).max(), np.abs(residual.sum(0)).max())
        return model.set_params(C=c, tol=max(min(1e-3, 0.1 * start), 1e-12)).fit(X, y)

    def loss(model, X, y):
        p = model.predict_proba(X)[np.arange(len(y)), np.searchsorted(classes, y)]
        return float(-np.mean(np.log(np.clip(p, 1e-15, 1))))

    k = int(min(3, np.unique(y, return_counts=True)[1].min()))
    rows = np.zeros(len(y))
    if len(y) > 1000:
        splits = StratifiedShuffleSplit(1, test_size=0.2, random_state=seed).split(rows, y)
    else:
        splits = StratifiedKFold(k, shuffle=True, random_state=seed).split(rows, y)
    parts = [(X[a], y[a], X[b], y[b]) for a, b in splits]
    losses, models = {}, {}

    def score_at(c, probes):
        for probe, (Xf, yf, _, _) in zip(probes, parts):
            fit(probe, Xf, yf, c)
        losses[c] = float(np.mean([loss(p, Xh, yh) for p, (_, _, Xh, yh) in zip(probes, parts)]))
        models[c] = [copy.deepcopy(p) for p in probes]

    probes = [LogisticRegression(max_iter=1000, random_state=seed, warm_start=True) for _ in parts]
    for c in grid[::2]:
        score_at(c, probes)
        seen = list(losses.values())
        if len(seen) > 1 and seen[-1] > min(seen) * 1.01:
            break
    best = grid.index(min(losses, key=losses.get))
    for c in grid[max(best - 1, 0) : best + 2]:
        if c not in losses:
            score_at(c, [copy.deepcopy(p) for p in models[grid[best]]])
    best = min(sorted(losses), key=losses.get)
    final = fit(models[best][0], X, y, best)
    return Pipeline([*([("standardscaler", scaler)] if scale else []), ("logisticregression", final)]), best


WALK = "fit_logreg before the probes (3 folds, 13 Cs walked)"
KNOWING = "LogisticRegression(C=the C chosen, max_iter=1000)"


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

    chosen_c = new()[1]  # deterministic: the C every timed call of fit_logreg chooses

    def knowing():
        lr = LogisticRegression(C=chosen_c, max_iter=1000)
        return make_pipeline(*([StandardScaler()] if scale else []), lr).fit(X, y), chosen_c

    contenders = {
        "LogisticRegression(max_iter=1000)": default,
        KNOWING: knowing,
        "previous choice (LogisticRegressionCV, 13 C x 5 folds)": lambda: previous_choice(X, y, scale),
        WALK: lambda: walk_choice(X, y, scale),
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
        "new_minus_walk": paired_bootstrap(y_test, ours, preds[WALK], "accuracy", n_classes=k),
        "new_minus_knowing": paired_bootstrap(y_test, ours, preds[KNOWING], "accuracy", n_classes=k),
        "time_over_knowing": median(times["transferlab fit_logreg"]) / median(times[KNOWING]),
    }


def split_check(resamples: int) -> list[dict]:
    """Whether one split is enough on small training sets (subsamples of the sets above): the test
    accuracy lost by the C chosen on 3 stratified folds and on one stratified split (half of
    train fitted, half held out: the default above ``FOLDS_UP_TO``), against the best of 13 Cs
    half a decade apart in hindsight (each refitted on the same training set). A benchmark of
    the procedure on the test split, not a held-out score of any model."""
    from transferlab.evaluation.metrics import score
    from transferlab.rungs import linear

    hindsight = tuple(float(f"{10**e:.3g}") for e in np.arange(-4, 2.01, 0.5))
    loaded: dict[str, dict] = {}
    rows = []
    for name, n in (
        ("reviews-minilm", 200),
        ("reviews-minilm", 400),
        ("reviews-tfidf-400", 400),
        ("animals-mobilenet", 400),
        ("animals-mobilenet", 800),
        ("animals-hog-800", 800),
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

            by_c = dict(accuracy(grid=(c,)) for c in hindsight)
            default_up_to = linear.FOLDS_UP_TO
            for how, up_to in (("folds", len(y)), ("split", 0)):
                linear.FOLDS_UP_TO = up_to
                try:
                    _, acc = accuracy()
                finally:
                    linear.FOLDS_UP_TO = default_up_to
                lost[how].append(max(by_c.values()) - acc)
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
                else r["new_minus_default"]
                if n.startswith("LogisticRegression(")
                else r.get("new_minus_walk")
                if n == WALK
                else r.get("new_minus_knowing")
                if n == KNOWING
                else None
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
        share = how.get("fit_share", 0.8)
        split = f"{how['folds']} folds" if how.get("by") == "cv" else f"one split ({share:.0%} fitted)"
        iterations = f", {how['probe_iterations']} probe iterations" if "probe_iterations" in how else ""
        notes.append(
            f"{r['set']}: the new choice scored {len(tried)} of {len(how.get('C_grid', tried))} Cs on {split}{iterations} "
            f"(log loss {', '.join(f'{c} {v:.3f}' for c, v in tried.items())})."
        )
    repeats = d["results"][0]["repeats"] if d["results"] else "?"
    la = d.get("load_average", {})
    load = f"{la['start'][0]:.1f} at the start and {la['end'][0]:.1f} at the end" if la else "not recorded"
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
Why 3 folds up to 300 training examples only: on subsamples of the sets above, the test
accuracy lost by the chosen C (3 folds, or one split with half of train fitted and half held
out) against the best of the 13 Cs in hindsight (each refitted on the same training set), mean
over resamples (different subsamples and split seeds):

| set | train | resamples | lost with 3 folds | lost with one split |
|---|---|---|---|---|
{split}
"""
    )
    return f"""## Choosing the logistic regression's C: cost and accuracy

`OMP_NUM_THREADS=1 python bench/logreg_choice.py` — the classical and frozen rungs' logistic
regression on the demos' features: transferlab's choice of C (`fit_logreg`: log loss on one
stratified split of train, half fitted and half held out, or 3 folds up to 300 training
examples; Cs a decade apart walked from 0.1 with warm starts until the loss is past its
minimum, then the half-decades beside the best; lean float32 probes, and the refit starts from
their weights) against the walk it replaces (3 folds up to 1,000 examples, an 80/20 split
above, walked from 10^-4, each C a scikit-learn fit), the choice before that
(`LogisticRegressionCV` over the same 13 Cs and 5 folds), one
`LogisticRegression(max_iter=1000)` at C=1 after the same standardisation (the unit of cost),
and one at the C the new choice found (what the fit costs to someone who already knows that C:
the same accuracy without any choice).
Time is the fit on ready features, median of {repeats} alternating repeats; accuracy is on the
test split with its 95% bootstrap interval, and "difference" is the new choice's accuracy minus
that row's, paired over the same test examples. Run {d["date"]}, load average
{load}.

| data, features | fit | C | test accuracy | difference (new − it) | time | time / default fit |
|---|---|---|---|---|---|---|
{chr(10).join(lines)}

{chr(10).join("- " + n for n in notes)}
{split}"""


if __name__ == "__main__":
    main()
