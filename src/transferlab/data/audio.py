"""Audio: a folder of sound files, one subfolder per class, and how a clip becomes a fixed-length waveform.

Items are file paths (read lazily, like images) or in-memory :class:`Clip` objects (corrupted
copies of the test split). Every waveform a model sees is mono float32, resampled to the
model's rate with a polyphase filter, then centre-cropped or zero-padded (at the end) to a fixed
number of seconds. Training may crop (or place a short clip) at a random offset instead; that
only happens in training batches, after the split.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np

from ..errors import DataError, require
from .sources import MAX_LISTED, SPLIT_ALIASES, Dataset, media_files, skip_file, subfolders

# what libsndfile (through soundfile) decodes; mp3 needs libsndfile >= 1.1
AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".mp3"}


@dataclass(frozen=True, eq=False)
class Clip:
    """A waveform in memory: ``samples`` (T,) float32 mono in [-1, 1] at ``rate`` Hz."""

    samples: np.ndarray
    rate: int

    def __post_init__(self) -> None:
        samples = np.asarray(self.samples, dtype=np.float32)
        if samples.ndim == 2:  # (T, channels) -> mono
            samples = samples.mean(axis=1)
        if samples.ndim != 1 or not int(self.rate) > 0:
            raise DataError(
                f"A clip needs a 1-D (or time x channels) waveform and a positive rate; got shape "
                f"{samples.shape} at {self.rate} Hz."
            )
        object.__setattr__(self, "samples", samples)
        object.__setattr__(self, "rate", int(self.rate))

    def __repr__(self) -> str:
        return f"Clip({len(self.samples) / self.rate:.2f} s at {self.rate} Hz)"


def is_audio(item) -> bool:
    return isinstance(item, Clip) or (
        isinstance(item, (str, Path)) and Path(str(item)).suffix.lower() in AUDIO_EXTENSIONS
    )


def read_audio(item) -> Clip:
    """A path or a Clip -> a mono Clip at the file's own rate."""
    if isinstance(item, Clip):
        return item
    sf = require("soundfile", "audio")
    try:
        samples, rate = sf.read(str(item), dtype="float32", always_2d=True)  # (T, channels)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise DataError(
            f"{item} is not a readable audio file ({exc}). Remove it or replace it with a valid "
            f"{'/'.join(sorted(e[1:] for e in AUDIO_EXTENSIONS))} file."
        ) from None
    if len(samples) == 0:
        raise DataError(f"{item} holds no audio samples. Remove it or replace it with a valid recording.")
    return Clip(samples, rate)


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Polyphase resampling (scipy's anti-aliased ``resample_poly``) from ``rate`` to ``target`` Hz."""
    if rate == target:
        return samples
    from scipy.signal import resample_poly

    g = gcd(rate, target)
    return resample_poly(samples, target // g, rate // g).astype(np.float32)


def fit_length(samples: np.ndarray, n: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """Exactly ``n`` samples: centre crop or zero-pad at the end; with ``rng`` (training only) the
    crop, or the place of a short clip inside the window, is drawn at random."""
    extra = len(samples) - n
    if extra >= 0:
        start = int(rng.integers(0, extra + 1)) if rng is not None else extra // 2
        return samples[start : start + n]
    start = int(rng.integers(0, -extra + 1)) if rng is not None else 0
    out = np.zeros(n, dtype=np.float32)
    out[start : start + len(samples)] = samples
    return out


def load_waveform(item, rate: int) -> np.ndarray:
    """The whole recording, mono, at ``rate`` Hz."""
    clip = read_audio(item)
    return resample(clip.samples, clip.rate, rate)


def load_clip(item, rate: int, seconds: float, rng: np.random.Generator | None = None) -> np.ndarray:
    """(round(rate * seconds),) float32: mono, resampled, cropped or padded."""
    return fit_length(load_waveform(item, rate), int(round(rate * seconds)), rng)


def content_bytes(clip: Clip) -> bytes:
    """What identifies an in-memory clip for the feature cache and the manifest."""
    return f"{clip.rate}|".encode() + clip.samples.tobytes()


# --- folders of sound files -----------------------------------------------------------------
# The same policy as image folders (data/sources.py): hidden and non-audio files, files outside
# class folders and empty class folders are passed over and listed; links may not leave the
# folder; every file that cannot be read is refused, all named in one error.


def unreadable(f: Path) -> str | None:
    """Why ``f`` cannot be used as a recording (its header is read), or None."""
    sf = require("soundfile", "audio")
    if not f.is_file():
        return "not a regular file"
    if f.stat().st_size == 0:
        return "an empty file (0 bytes)"
    try:
        info = sf.info(str(f))
    except Exception as exc:  # libsndfile reports malformed files in several ways
        return f"not a readable audio file ({' '.join(str(exc).split()) or type(exc).__name__})"
    return "a file with no audio samples" if info.frames == 0 else None


def _refuse_unreadable(files: list[Path]) -> None:
    bad = [(f, reason) for f in files if (reason := unreadable(f))]
    if not bad:
        return
    listed = "; ".join(f"{f} is {reason}" for f, reason in bad[:MAX_LISTED])
    more = f"; and {len(bad) - MAX_LISTED} more" if len(bad) > MAX_LISTED else ""
    raise DataError(
        f"{len(bad)} audio file{'s' if len(bad) > 1 else ''} cannot be read: {listed}{more}. Remove or "
        "replace them: transferlab does not drop examples it cannot read."
    )


def from_audio_folder(root: str | Path) -> Dataset:
    """``root/<class>/*.wav``, or ``root/{train,val,test}/<class>/*.wav`` to give the split."""
    root = Path(root)
    root_real = Path(os.path.realpath(root))
    skipped: list[dict] = []
    subdirs = subfolders(root, root_real, skipped)
    if not subdirs:
        raise DataError(
            f"{root} has no subfolders. Expected one subfolder per class (e.g. {root}/yes/1.wav), "
            "optionally below train/, val/ and test/."
        )
    split_dirs = [d for d in subdirs if d.name.lower() in SPLIT_ALIASES]
    if split_dirs and len(split_dirs) != len(subdirs):
        other = [d.name for d in subdirs if d not in split_dirs]
        raise DataError(
            f"{root} mixes split folders ({', '.join(d.name for d in split_dirs)}) with other folders "
            f"({', '.join(other)}). Put every class folder under train/, val/ or test/, or use no "
            "split folders."
        )
    parts = [(SPLIT_ALIASES[d.name.lower()], d) for d in split_dirs] if split_dirs else [(None, root)]
    items, labels, splits = [], [], []
    for split, base in parts:
        for class_dir in subdirs if base is root else subfolders(base, root_real, skipped):
            files = media_files(class_dir, root_real, skipped, AUDIO_EXTENSIONS, "audio")
            if not files:
                skipped.append(skip_file(class_dir, "empty_class", "a class folder with no audio files"))
            items += [str(f) for f in files]
            labels += [class_dir.name] * len(files)
            splits += [split] * len(files)
    if not items:
        raise DataError(
            f"No audio files found under {root} (looked for {', '.join(sorted(AUDIO_EXTENSIONS))} "
            "inside one subfolder per class)."
        )
    _refuse_unreadable([Path(f) for f in items])
    ignored = sum(s["kind"] == "ignored" for s in skipped)
    empty = [Path(s["origin"]).name for s in skipped if s["kind"] == "empty_class"]
    notes = (
        [
            f"Passed over {ignored} files or folders that are not recordings (hidden, not audio, or outside a "
            "class folder); the audit lists them."
        ]
        if ignored
        else []
    )
    notes += [f"Class folders without audio files, so not classes here: {', '.join(empty)}."] if empty else []
    return Dataset(
        "audio",
        items,
        labels,
        list(items),
        splits if split_dirs else None,
        description=str(root),
        notes=notes,
        skipped=skipped,
    )
