"""The non-transfer control: hand-made features + logistic regression, no pretrained model.

* text: TF-IDF of words and word pairs (sublinear term frequency);
* images: HOG on a 64x64 grey image, plus the 16x16 grey pixels;
* audio: mean and standard deviation over time of 20 MFCCs and their deltas.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..config import RunSpec
from ..data.splits import Task
from ..errors import ArtifactError, DataError
from .base import RUNGS, Context, Rung, RungOutput
from .fitted import FEATURES, Features, Saved
from .linear import LogregFitted, fit_logreg, neighbours

# what image_features computes, saved with an exported model so a changed recipe is detected
IMAGE_FEATURES = {
    "grey": "PIL L",
    "hog": {"size": 64, "resize": "bilinear", "orientations": 9, "pixels_per_cell": 8, "cells_per_block": 2},
    "pixels": {"size": 16, "resize": "bilinear"},
    "scale": "pixel / 255",
}


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
        mfcc = librosa.feature.mfcc(
            y=load_clip(item, rate, seconds), sr=rate, n_mfcc=20, n_fft=512, win_length=400, hop_length=160, n_mels=40
        )  # (20, frames)
        delta = librosa.feature.delta(mfcc)
        rows.append(np.concatenate([mfcc.mean(1), mfcc.std(1), delta.mean(1), delta.std(1)]))
    return np.stack(rows).astype(np.float32)


MEMO_BYTES = 512 * 2**20  # feature rows kept across the rung's seeds (3,000 images at 2,020-d: 24 MiB)


class RowMemo:
    """Hand-made feature rows by (recipe, item content hash), kept for the process: every seed of
    the rung (and each re-split) reads the same items, and recomputing HOG for each seed was about
    two thirds of the image rung's time (3.6 ms an image). The oldest rows go past ``MEMO_BYTES``."""

    def __init__(self, limit: int = MEMO_BYTES):
        self.rows: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self.bytes, self.limit = 0, limit

    def __call__(self, compute, recipe: str, items: list, hashes: list[str]) -> np.ndarray:
        keys = [(recipe, h) for h in hashes]
        todo = [i for i, k in enumerate(keys) if k not in self.rows]
        fresh = dict(zip(todo, compute([items[i] for i in todo]))) if todo else {}
        out = np.stack([fresh[i] if i in fresh else self.rows[k] for i, k in enumerate(keys)])
        for i, row in fresh.items():
            self.rows[keys[i]] = row
            self.bytes += row.nbytes
        for k in keys:  # the rows just read are the newest
            self.rows.move_to_end(k)
        while self.bytes > self.limit and self.rows:
            self.bytes -= self.rows.popitem(last=False)[1].nbytes
        return out


ROWS = RowMemo()


@RUNGS.register("classical")
class Classical(Rung):
    strategy = "classical"
    settings = ("clip_seconds", "extract_batch_size")
    role = "control"
    in_default_ladder = True
    simplicity = 10
    description = (
        "TF-IDF (text), HOG + pixels (images) or MFCC statistics (audio) with logistic regression; "
        "C chosen on held-out training rows (folds, or a split above 300)."
    )

    def check_data(self, task: Task, spec: RunSpec) -> None:
        if task.modality == "text" and not _has_terms(task.part("train")[0]):
            raise DataError(_no_terms_message(task, spec))

    def run(self, ctx: Context) -> RungOutput:
        (train_items, y_train), (val_items, y_val) = ctx.train(), ctx.val()
        test_items = ctx.test_items()
        start = time.perf_counter()
        if ctx.task.modality == "text":
            vec, X_train = _fit_tfidf(train_items, ctx.task, ctx.spec)  # vocabulary from training texts only
            features, scale, what = TfidfFeatures(vec), False, "TF-IDF words + bigrams"
            if vec.min_df == 1:
                what += " (every term: no term is in two training texts)"
        else:
            if ctx.task.modality == "audio":
                features, scale, what = AudioFeatures(ctx.spec.clip_seconds), True, "MFCC + delta mean/std"
            else:
                features, scale, what = ImageFeatures(), True, "HOG + 16x16 pixels"
            X_train = self._rows(ctx, features, "train", train_items)
        X_val = self._rows(ctx, features, "val", val_items)
        model, c, how = fit_logreg(X_train, y_train, X_val, y_val, metric=ctx.spec.metric, seed=ctx.seed, scale=scale)
        fitted = LogregFitted.from_pipeline(self.strategy, features, model, len(ctx.task.classes), C=c)
        fit = time.perf_counter() - start
        val_pred = fitted.proba_of(X_val).argmax(1)
        start = time.perf_counter()
        X_test = self._rows(ctx, features, "test", test_items)
        proba = fitted.proba_of(X_test)
        predict = time.perf_counter() - start
        n_params = int(np.prod(model[-1].coef_.shape) + model[-1].intercept_.size)
        return RungOutput(
            val_pred,
            proba.argmax(1),
            fit,
            predict,
            n_params,
            n_params,
            test_proba=proba,
            model=fitted,
            refit_predict=self._refitter(ctx, X_train, X_val, X_test, scale, c),
            chosen={"features": what, "C": c, **how},
        )

    @staticmethod
    def _rows(ctx: Context, features: Features, split: str, items: list):
        """A split's features: TF-IDF from the vocabulary just learnt; image or audio features with
        each item computed once for all seeds (``ROWS``)."""
        if isinstance(features, TfidfFeatures):
            return features(items)
        recipe = f"{features.name}:{getattr(features, 'seconds', '')}"
        return ROWS(features, recipe, items, ctx.task.part_hashes(split))

    @staticmethod
    def _refitter(ctx: Context, X_train, X_val, X_test, scale: bool, c: float):
        """Refit on a subset of training rows; for text the vocabulary is relearned from that subset."""
        (train_items, y_train), (val_items, y_val) = ctx.train(), ctx.val()
        test_items = ctx.test_items()

        def refit(idx: np.ndarray) -> np.ndarray:
            if ctx.task.modality == "text":
                vec, Xtr = _fit_tfidf(
                    [train_items[i] for i in idx], ctx.task, ctx.spec, min_df=1 if len(idx) < 200 else 2
                )
                Xva, Xte = vec.transform(val_items), vec.transform(test_items)
            else:
                Xtr, Xva, Xte = X_train[idx], X_val, X_test
            model, _, _ = fit_logreg(
                Xtr, y_train[idx], Xva, y_val, metric=ctx.spec.metric, seed=ctx.seed, scale=scale, grid=neighbours(c)
            )
            return model.predict(Xte)

        return refit


@FEATURES.register("tfidf")
class TfidfFeatures(Features):
    """TF-IDF of the vocabulary learnt from the training texts; saved as its settings, vocabulary and idf.
    Settings that are code (a custom tokenizer or preprocessor) cannot be stored safely (no pickles)."""

    name = "tfidf"

    def __init__(self, vec):
        self.vec = vec
        params = self._settings()
        code = [k for k, v in params.items() if callable(v)]
        if code:
            self.reason = (
                f"the TF-IDF settings {', '.join(code)} are Python functions, which are not stored (no pickles)."
            )

    def _settings(self) -> dict:
        return {k: v for k, v in self.vec.get_params().items() if k not in ("vocabulary", "dtype")}

    def __call__(self, items: list):
        return self.vec.transform(items)

    def parts(self) -> tuple[dict, dict]:
        if self.reason:
            return {}, {}
        params = {**self._settings(), "ngram_range": list(self.vec.ngram_range)}
        vocabulary = sorted(self.vec.vocabulary_, key=self.vec.vocabulary_.get)
        return {"tfidf.idf": self.vec.idf_}, {"tfidf.json": params, "vocabulary.json": vocabulary}

    @classmethod
    def from_saved(cls, saved: Saved) -> "TfidfFeatures":
        from sklearn.feature_extraction.text import TfidfVectorizer

        settings = saved.json("tfidf.json", "the TF-IDF settings")
        settings["ngram_range"] = tuple(settings["ngram_range"])
        vec = TfidfVectorizer(**settings, vocabulary=saved.json("vocabulary.json", "the TF-IDF vocabulary"))
        vec.idf_ = saved.tensors["tfidf.idf"].double().numpy()
        return cls(vec)


@FEATURES.register("image_features")
class ImageFeatures(Features):
    """HOG + small pixels (``image_features``); saved as the recipe, checked against this version's on load."""

    name = "image_features"

    def __call__(self, items: list) -> np.ndarray:
        return image_features(items)

    def parts(self) -> tuple[dict, dict]:
        return {}, {"image_features.json": IMAGE_FEATURES}

    @classmethod
    def from_saved(cls, saved: Saved) -> "ImageFeatures":
        recipe = saved.json("image_features.json", "the image-feature settings")
        if recipe != IMAGE_FEATURES:
            raise ArtifactError(
                f"{saved.folder / 'image_features.json'} describes image features ({recipe}) that this "
                f"version of transferlab does not compute ({IMAGE_FEATURES}). Use the version "
                f"that saved it ({saved.info.get('transferlab', 'an older one')})."
            )
        return cls()


class AudioFeatures(Features):
    """MFCC statistics (``audio_features``) of clips of ``seconds``."""

    name = "audio"
    reason = "classical audio models have no export format yet (text and image do)."

    def __init__(self, seconds: float):
        self.seconds = seconds

    def __call__(self, items: list) -> np.ndarray:
        return audio_features(items, seconds=self.seconds)


def tfidf_vectoriser(min_df: int = 2):
    """The classical rung's TF-IDF settings (words and bigrams, sublinear counts), unfitted; the
    run plan times its text fit with them (``stages.pace``)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=min_df, max_features=100_000)


def _has_terms(texts: list[str]) -> bool:
    """Whether any text has a term: the vectoriser's tokens are runs of 2+ letters or digits."""
    analyse = tfidf_vectoriser().build_analyzer()
    return any(analyse(text) for text in texts)


def _fit_tfidf(texts: list[str], task: Task, spec: RunSpec, min_df: int = 2):
    """The vectoriser fitted on ``texts`` and their (N, terms) matrix.

    ``min_df=2`` keeps the terms two texts share; when no term is shared (texts that are ids,
    numbers or codes, each its own), every term is kept instead of none.
    """
    vec = tfidf_vectoriser(min_df)
    try:
        return vec, vec.fit_transform(texts)
    except ValueError:  # sklearn: "After pruning, no terms remain" or "empty vocabulary"
        if not _has_terms(texts):
            raise DataError(_no_terms_message(task, spec)) from None
        if min_df == 1:
            raise
    vec = tfidf_vectoriser(1)
    return vec, vec.fit_transform(texts)


def _no_terms_message(task: Task, spec: RunSpec) -> str:
    where = f"column '{task.text_column}' of {Path(task.description).name}" if task.text_column else "the data"
    sample = next((t for t in task.part("train")[0] if str(t).strip()), "")
    others = ",".join(r for r in spec.rungs if r != "classical") or "majority,frozen"
    return (
        f"The texts in {where} have no word of 2 or more letters or digits (e.g. {str(sample)[:40]!r}), "
        "so the classical rung's TF-IDF has nothing to count. Check --text-column (is it the column with "
        f"the texts?), or leave the classical rung out: --rungs {others}."
    )
