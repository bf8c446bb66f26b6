"""The non-transfer control: hand-made features + logistic regression, no pretrained model.

* text: TF-IDF of words and word pairs (sublinear term frequency);
* images: HOG on a 64x64 grey image, plus the 16x16 grey pixels;
* audio: mean and standard deviation over time of 20 MFCCs and their deltas.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import numpy as np

from ..config import RunSpec
from ..data.splits import Task
from ..errors import DataError
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
    settings = ("clip_seconds",)
    role = "control"
    in_default_ladder = True
    simplicity = 10
    description = ("TF-IDF (text), HOG + pixels (images) or MFCC statistics (audio) with logistic regression; "
                   "C chosen by 5-fold cross-validation on train.")

    def check_data(self, task: Task, spec: RunSpec) -> None:
        if task.modality == "text" and not _has_terms(task.part("train")[0]):
            raise DataError(_no_terms_message(task, spec))

    def run(self, ctx: Context) -> RungOutput:
        (train_items, y_train), (val_items, y_val) = ctx.train(), ctx.val()
        test_items = ctx.test_items()
        start = time.perf_counter()
        if ctx.task.modality == "text":
            vec, X_train = _fit_tfidf(train_items, ctx.task, ctx.spec)  # vocabulary from training texts only
            transform, scale, what = vec.transform, False, "TF-IDF words + bigrams"
            if vec.min_df == 1:
                what += " (every term: no term is in two training texts)"
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
                vec, Xtr = _fit_tfidf([train_items[i] for i in idx], ctx.task, ctx.spec,
                                      min_df=1 if len(idx) < 200 else 2)
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


def _has_terms(texts: list[str]) -> bool:
    """Whether any text has a term: the vectoriser's tokens are runs of 2+ letters or digits."""
    analyse = _tfidf().build_analyzer()
    return any(analyse(text) for text in texts)


def _fit_tfidf(texts: list[str], task: Task, spec: RunSpec, min_df: int = 2):
    """The vectoriser fitted on ``texts`` and their (N, terms) matrix.

    ``min_df=2`` keeps the terms two texts share; when no term is shared (texts that are ids,
    numbers or codes, each its own), every term is kept instead of none.
    """
    vec = _tfidf(min_df)
    try:
        return vec, vec.fit_transform(texts)
    except ValueError:  # sklearn: "After pruning, no terms remain" or "empty vocabulary"
        if not _has_terms(texts):
            raise DataError(_no_terms_message(task, spec)) from None
        if min_df == 1:
            raise
    vec = _tfidf(1)
    return vec, vec.fit_transform(texts)


def _no_terms_message(task: Task, spec: RunSpec) -> str:
    where = f"column '{task.text_column}' of {Path(task.description).name}" if task.text_column else "the data"
    sample = next((t for t in task.part("train")[0] if str(t).strip()), "")
    others = ",".join(r for r in spec.rungs if r != "classical") or "majority,frozen"
    return (f"The texts in {where} have no word of 2 or more letters or digits (e.g. {str(sample)[:40]!r}), "
            "so the classical rung's TF-IDF has nothing to count. Check --text-column (is it the column with "
            f"the texts?), or leave the classical rung out: --rungs {others}.")
