"""Audio: a folder of sound files, one subfolder per class, and how a clip becomes a fixed-length waveform.

Items are file paths (read lazily, like images) or in-memory :class:`Clip` objects (corrupted
copies of the test split). Every waveform a model sees is mono float32, resampled to the
model's rate with a polyphase filter, then centre-cropped or zero-padded (at the end) to a fixed
number of seconds. Training may crop (or place a short clip) at a random offset instead; that
only happens in training batches, after the split.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np

from ..errors import DataError, require
from .sources import _SPLIT_ALIASES, Dataset

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
            raise DataError(f"A clip needs a 1-D (or time x channels) waveform and a positive rate; got shape "
                            f"{samples.shape} at {self.rate} Hz.")
        object.__setattr__(self, "samples", samples)
        object.__setattr__(self, "rate", int(self.rate))

    def __repr__(self) -> str:
        return f"Clip({len(self.samples) / self.rate:.2f} s at {self.rate} Hz)"


def is_audio(item) -> bool:
    return isinstance(item, Clip) or (isinstance(item, (str, Path)) and Path(str(item)).suffix.lower() in AUDIO_EXTENSIONS)


def read_audio(item) -> Clip:
    """A path or a Clip -> a mono Clip at the file's own rate."""
    if isinstance(item, Clip):
        return item
    sf = require("soundfile", "audio")
    try:
        samples, rate = sf.read(str(item), dtype="float32", always_2d=True)  # (T, channels)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise DataError(f"{item} is not a readable audio file ({exc}). Remove it or replace it with a valid "
                        f"{'/'.join(sorted(e[1:] for e in AUDIO_EXTENSIONS))} file.") from None
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
        return samples[start:start + n]
    start = int(rng.integers(0, -extra + 1)) if rng is not None else 0
    out = np.zeros(n, dtype=np.float32)
    out[start:start + len(samples)] = samples
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

def audio_files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.rglob("*")
                  if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS and not f.name.startswith("."))


def check_audio(f: Path) -> None:
    """Read the header only: an empty, truncated or mislabelled file fails here, naming the file."""
    sf = require("soundfile", "audio")
    if f.stat().st_size == 0:
        raise DataError(f"{f} is an empty file (0 bytes). Remove it or replace it with a valid recording.")
    try:
        info = sf.info(str(f))
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise DataError(f"{f} is not a readable audio file ({exc}). Remove it or replace it with a valid "
                        "recording.") from None
    if info.frames == 0:
        raise DataError(f"{f} holds no audio samples. Remove it or replace it with a valid recording.")


def from_audio_folder(root: str | Path) -> Dataset:
    """``root/<class>/*.wav``, or ``root/{train,val,test}/<class>/*.wav`` to give the split."""
    root = Path(root)
    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not subdirs:
        raise DataError(f"{root} has no subfolders. Expected one subfolder per class (e.g. {root}/yes/1.wav), "
                        "optionally below train/, val/ and test/.")
    split_dirs = [d for d in subdirs if d.name.lower() in _SPLIT_ALIASES]
    if split_dirs and len(split_dirs) != len(subdirs):
        other = [d.name for d in subdirs if d not in split_dirs]
        raise DataError(f"{root} mixes split folders ({', '.join(d.name for d in split_dirs)}) with other folders "
                        f"({', '.join(other)}). Put every class folder under train/, val/ or test/, or use no "
                        "split folders.")
    parts = [(_SPLIT_ALIASES[d.name.lower()], d) for d in split_dirs] if split_dirs else [(None, root)]
    items, labels, splits = [], [], []
    for split, base in parts:
        for class_dir in sorted(d for d in base.iterdir() if d.is_dir() and not d.name.startswith(".")):
            for f in audio_files(class_dir):
                check_audio(f)
                items.append(str(f))
                labels.append(class_dir.name)
                splits.append(split)
    if not items:
        raise DataError(f"No audio files found under {root} (looked for {', '.join(sorted(AUDIO_EXTENSIONS))} "
                        "inside one subfolder per class).")
    return Dataset("audio", items, labels, list(items), splits if split_dirs else None, description=str(root))
