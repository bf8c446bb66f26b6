"""Built-in corruptions of the test split, per modality, to see how each rung degrades.

Each corruption is a function ``(items, rng) -> items`` registered under its name for one
modality. They are applied to a copy of (a stratified subsample of) the test items; the
originals are never changed.
"""

from __future__ import annotations

import io
from typing import Callable

import numpy as np

from ..registry import Registry

Corruption = Callable[[list, np.random.Generator], list]
CORRUPTIONS: dict[str, Registry[Corruption]] = {
    "image": Registry("image corruption"),
    "text": Registry("text corruption"),
    "audio": Registry("audio corruption"),
}


def _as_array(item) -> np.ndarray:
    from ..backbones.images import load_image

    return np.asarray(load_image(item))  # (H, W, 3) uint8


def _pil_map(fn: Callable) -> Corruption:
    from PIL import Image

    def apply(items: list, rng: np.random.Generator) -> list:
        return [np.asarray(fn(Image.fromarray(_as_array(x)), rng).convert("RGB")) for x in items]

    return apply


@CORRUPTIONS["image"].register("gaussian_noise")
def gaussian_noise(items: list, rng: np.random.Generator) -> list:
    out = []
    for x in items:
        a = _as_array(x).astype(np.float32)
        out.append(np.clip(a + rng.normal(0, 0.08 * 255, a.shape), 0, 255).astype(np.uint8))
    return out


def _blur(im, rng):
    from PIL import ImageFilter

    return im.filter(ImageFilter.GaussianBlur(radius=max(1.0, min(im.size) / 32)))


def _brightness_contrast(im, rng):
    from PIL import ImageEnhance

    return ImageEnhance.Contrast(ImageEnhance.Brightness(im).enhance(1.4)).enhance(0.6)


def _jpeg(im, rng):
    from PIL import Image

    buf = io.BytesIO()
    im.convert("RGB").save(buf, format="JPEG", quality=10)
    return Image.open(io.BytesIO(buf.getvalue()))


def _rotation(im, rng):
    return im.rotate(20, fillcolor=(0, 0, 0))


for _name, _fn in (
    ("blur", _blur),
    ("brightness_contrast", _brightness_contrast),
    ("jpeg", _jpeg),
    ("rotation", _rotation),
):
    CORRUPTIONS["image"].register(_name)(_pil_map(_fn))


def _words(items: list, rng: np.random.Generator, fn: Callable[[list[str], np.random.Generator], list[str]]) -> list:
    return [" ".join(fn(str(t).split(), rng)) or str(t) for t in items]


@CORRUPTIONS["text"].register("typos")
def typos(items: list, rng: np.random.Generator) -> list:
    """One character swapped, dropped or doubled in 15% of the words."""

    def edit(word: str) -> str:
        if len(word) < 3 or rng.random() > 0.15:
            return word
        i = int(rng.integers(0, len(word) - 1))
        kind = int(rng.integers(0, 3))
        if kind == 0:
            return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        return word[:i] + word[i + 1 :] if kind == 1 else word[:i] + word[i] + word[i:]

    return _words(items, rng, lambda ws, r: [edit(w) for w in ws])


@CORRUPTIONS["text"].register("casing")
def casing(items: list, rng: np.random.Generator) -> list:
    return [str(t).upper() for t in items]


@CORRUPTIONS["text"].register("truncation")
def truncation(items: list, rng: np.random.Generator) -> list:
    """Only the first half of the words."""
    return _words(items, rng, lambda ws, r: ws[: max(1, len(ws) // 2)])


@CORRUPTIONS["text"].register("word_dropout")
def word_dropout(items: list, rng: np.random.Generator) -> list:
    """A fifth of the words dropped at random."""
    return _words(items, rng, lambda ws, r: [w for w in ws if r.random() > 0.2] or ws[:1])


def _clip_map(fn: Callable) -> Corruption:
    """Audio items (paths or Clips) -> in-memory Clips at their own rate, so no temporary files."""

    def apply(items: list, rng: np.random.Generator) -> list:
        from ..data.audio import Clip, read_audio

        return [Clip(np.clip(fn(c.samples, c.rate, rng), -1, 1), c.rate) for c in map(read_audio, items)]

    return apply


def _white_noise(x: np.ndarray, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise at 10 dB signal-to-noise ratio (relative to the clip's own power)."""
    power = float(np.mean(x.astype(np.float64) ** 2)) or 1e-8
    return x + rng.normal(0, np.sqrt(power / 10), x.shape).astype(np.float32)


def _gain(x: np.ndarray, rate: int, rng: np.random.Generator) -> np.ndarray:
    """20 dB quieter (a distant or badly set microphone)."""
    return x * np.float32(0.1)


def _time_shift(x: np.ndarray, rate: int, rng: np.random.Generator) -> np.ndarray:
    """0.25 to 0.75 s of silence before the sound starts."""
    return np.concatenate([np.zeros(int(rate * rng.uniform(0.25, 0.75)), np.float32), x])


def _low_pass(x: np.ndarray, rate: int, rng: np.random.Generator) -> np.ndarray:
    """A 4th-order Butterworth low-pass at 1 kHz (muffled, telephone-like)."""
    from scipy.signal import butter, sosfiltfilt

    return sosfiltfilt(butter(4, min(1000, 0.45 * rate), fs=rate, output="sos"), x).astype(np.float32)


for _name, _fn in (
    ("white_noise", _white_noise),
    ("gain", _gain),
    ("time_shift", _time_shift),
    ("low_pass", _low_pass),
):
    CORRUPTIONS["audio"].register(_name)(_clip_map(_fn))


def corrupted_sets(modality: str, items: list, seed: int) -> dict[str, list]:
    """Every registered corruption of ``items`` for this modality (none for others)."""
    registry = CORRUPTIONS.get(modality)
    if registry is None:
        return {}
    return {name: registry.get(name)(list(items), np.random.default_rng(seed)) for name in registry.list_()}
