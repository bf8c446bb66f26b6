"""The non-transfer control: hand-made features + logistic regression, no pretrained model.

* text: TF-IDF of words and word pairs (sublinear term frequency);
* images: HOG on a 64x64 grey image, plus the 16x16 grey pixels;
* audio: mean and standard deviation over time of 20 MFCCs and their deltas.
"""

from __future__ import annotations

import time
from functools import partial

import numpy as np

from .base import RUNGS, Context, Rung, RungOutput, full_proba
from .linear import fit_logreg, logreg_tensors, neighbours

# what image_features computes, saved with an exported model so a changed recipe is detected
IMAGE_FEATURES = {"grey": "PIL L", "hog": {"size": 64, "resize": "bilinear", "orientations": 9, "pixels_per_cell": 8,
                                           "cells_per_block": 2}, "pixels": {"size": 16, "resize": "bilinear"},
                  "scale": "pixel / 255"}


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


def audio_features(items: list, seconds: float = 3.0, rate: int = 16_000) -> np.ndarray:
    """(N, 80) MFCC statistics of each clip at 16 kHz, cropped or padded to ``seconds``: mean and std
    over 10 ms frames (25-32 ms windows, 40 mel bands) of 20 MFCCs and of their deltas."""
    import librosa

    from ..data.audio import load_clip

    rows = []
    for item in items:
        mfcc = librosa.feature.mfcc(y=load_clip(item, rate, seconds), sr=rate, n_mfcc=20, n_fft=512,
                                    win_length=400, hop_length=160, n_mels=40)  # (20, frames)
        delta = librosa.feature.delta(mfcc)
        rows.append(np.concatenate([mfcc.mean(1), mfcc.std(1), delta.mean(1), delta.std(1)]))
    return np.stack(rows).astype(np.float32)


@RUNGS.register("classical")
class Classical(Rung):
    strategy = "classical"
    description = ("TF-IDF (text), HOG + pixels (images) or MFCC statistics (audio) with logistic regression; "
                   "C chosen by 5-fold cross-validation on train.")

    def run(self, ctx: Context) -> RungOutput:
        (train_items, y_train), (val_items, y_val) = ctx.train(), ctx.val()
        test_items = ctx.test_items()
        start = time.perf_counter()
        if ctx.task.modality == "text":
            vec = _tfidf()
            X_train = vec.fit_transform(train_items)  # vocabulary from training texts only
            transform, scale, what = vec.transform, False, "TF-IDF words + bigrams"
        elif ctx.task.modality == "audio":
            transform, scale, what = partial(audio_features, seconds=ctx.spec.clip_seconds), True, "MFCC + delta mean/std"
            vec, X_train = None, transform(train_items)
        else:
            vec, X_train = None, image_features(train_items)
            transform, scale, what = image_features, True, "HOG + 16x16 pixels"
        model, c, how = fit_logreg(X_train, y_train, transform(val_items), y_val, metric=ctx.spec.metric,
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
                          chosen={"features": what, "C": c, **how},
                          save=lambda folder: _save(folder, model, vec, c, ctx.task.modality))

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


def _save(folder, model, vec, c: float, modality: str) -> dict:
    """Logistic-regression arrays, plus the TF-IDF vocabulary and idf (text) or the image-feature recipe.
    Settings that are code (a custom tokenizer or preprocessor) cannot be stored safely: marked not exportable."""
    from ..export import write_saved

    tensors, files, unsafe = logreg_tensors(model), {}, None
    if modality not in ("text", "image"):
        unsafe = f"classical {modality} models have no export format yet (text and image do)."
    elif vec is None:
        files["image_features.json"] = IMAGE_FEATURES
    else:
        params = {k: v for k, v in vec.get_params().items() if k not in ("vocabulary", "dtype")}
        code = [k for k, v in params.items() if callable(v)]
        if code:
            unsafe = f"the TF-IDF settings {', '.join(code)} are Python functions, which are not stored (no pickles)."
        else:
            params["ngram_range"] = list(params["ngram_range"])
            files["tfidf.json"] = params
            files["vocabulary.json"] = sorted(vec.vocabulary_, key=vec.vocabulary_.get)
            tensors["tfidf.idf"] = vec.idf_
    features = {"text": "tfidf", "image": "image_features"}.get(modality, modality)
    return write_saved(folder, strategy="classical", tensors=tensors, head={"kind": "logreg", "features": features, "C": c},
                       files=files, unsafe=unsafe)


def _tfidf(min_df: int = 2):
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=min_df, max_features=100_000)
