"""The non-transfer control: hand-made features + logistic regression, no pretrained model.

* text: TF-IDF of words and word pairs (sublinear term frequency);
* images: HOG on a 64x64 grey image, plus the 16x16 grey pixels.
"""

from __future__ import annotations

import time

import numpy as np

from .base import RUNGS, Context, Rung, RungOutput, full_proba
from .linear import fit_logreg, neighbours


def image_features(items: list) -> np.ndarray:
    """(N, D) HOG + small-pixel features; deterministic, no learning."""
    from PIL import Image
    from skimage.feature import hog

    from ..backbones.images import load_image

    rows = []
    for item in items:
        grey = load_image(item).convert("L")
        big = np.asarray(grey.resize((64, 64), Image.BILINEAR), dtype=np.float32) / 255.0
        small = np.asarray(grey.resize((16, 16), Image.BILINEAR), dtype=np.float32).ravel() / 255.0
        rows.append(np.concatenate([hog(big, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(2, 2)), small]))
    return np.stack(rows)


@RUNGS.register("classical")
class Classical(Rung):
    strategy = "classical"
    description = "TF-IDF (text) or HOG + pixels (images) with logistic regression; C chosen on validation."

    def run(self, ctx: Context) -> RungOutput:
        (train_items, y_train), (val_items, y_val) = ctx.train(), ctx.val()
        test_items = ctx.test_items()
        start = time.perf_counter()
        if ctx.task.modality == "text":
            vec = _tfidf()
            X_train = vec.fit_transform(train_items)  # vocabulary from training texts only
            transform, scale, what = vec.transform, False, "TF-IDF words + bigrams"
        else:
            X_train = image_features(train_items)
            transform, scale, what = image_features, True, "HOG + 16x16 pixels"
        model, c, scores = fit_logreg(X_train, y_train, transform(val_items), y_val, metric=ctx.spec.metric,
                                      seed=ctx.seed, scale=scale)
        fit = time.perf_counter() - start
        val_pred = model.predict(transform(val_items))
        start = time.perf_counter()
        X_test = transform(test_items)
        proba = full_proba(model.predict_proba(X_test), model.classes_, len(ctx.task.classes))
        test_pred = proba.argmax(1)
        predict = time.perf_counter() - start
        n_params = int(np.prod(model[-1].coef_.shape) + model[-1].intercept_.size)
        k = len(ctx.task.classes)
        return RungOutput(val_pred, test_pred, fit, predict, n_params, n_params, test_proba=proba,
                          predict_proba=lambda items: full_proba(model.predict_proba(transform(items)), model.classes_, k),
                          refit_predict=self._refitter(ctx, X_train, transform(val_items), X_test, scale, c),
                          chosen={"features": what, "C": c, "val_scores_by_C": scores})

    @staticmethod
    def _refitter(ctx: Context, X_train, X_val, X_test, scale: bool, c: float):
        """Refit on a subset of training rows; for text the vocabulary is relearned from that subset."""
        (train_items, y_train), (val_items, y_val) = ctx.train(), ctx.val()
        test_items = ctx.test_items()

        def refit(idx: np.ndarray) -> np.ndarray:
            if ctx.task.modality == "text":
                vec = _tfidf(min_df=1 if len(idx) < 200 else 2)
                Xtr = vec.fit_transform([train_items[i] for i in idx])
                Xva, Xte = vec.transform(val_items), vec.transform(test_items)
            else:
                Xtr, Xva, Xte = X_train[idx], X_val, X_test
            model, _, _ = fit_logreg(Xtr, y_train[idx], Xva, y_val, metric=ctx.spec.metric, seed=ctx.seed, scale=scale,
                                     grid=neighbours(c))
            return model.predict(Xte)

        return refit


def _tfidf(min_df: int = 2):
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=min_df, max_features=100_000)
