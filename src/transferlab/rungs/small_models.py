"""The ``scratch_small`` rung's models and their input pipelines, shared by the rung and by export.

Each modality has a *preparation* (``ImagePrep``, ``TextPrep``, ``AudioPrep``): learnt from the
training split only, it turns every item into tensors once (``encode``), cuts training and
evaluation batches out of them by row (``batch``), and round-trips through JSON (``to_json`` /
``prep_from_json``) so an exported model prepares new items exactly as the run did.

* images: ``SmallCNN`` on pixels at (about) the data's own size, 1 channel when every training
  image is grey; random crop with padding (and optionally horizontal flips) while training;
* text: ``BagOfNgrams``, fastText-style: the mean of learnt embeddings of the words and word pairs
  in a vocabulary built from the training texts, then a linear layer;
* audio: ``SmallCNN`` on log-mel spectrograms; random time shifts while training.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

IMAGE_MIN_SIDE, IMAGE_MAX_SIDE = 16, 64
TEXT_DIM = 64
AUDIO_RATE, AUDIO_MELS, AUDIO_HOP = 16_000, 64, 160


# --- models ---------------------------------------------------------------------------------


class SmallCNN(nn.Module):
    """(B, C, H, W) -> 3 x [conv 3x3 -> BatchNorm -> ReLU -> max-pool 2] with width, 2 width, 4 width
    channels -> global average pool -> dropout -> linear -> (B, classes)."""

    def __init__(self, in_channels: int, width: int, n_classes: int, dropout: float = 0.2):
        super().__init__()
        layers, c = [], in_channels
        for k in range(3):
            layers += [
                nn.Conv2d(c, width * 2**k, 3, padding=1, bias=False),
                nn.BatchNorm2d(width * 2**k),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2, ceil_mode=True),
            ]
            c = width * 2**k
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(c, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


class BagOfNgrams(nn.Module):
    """fastText-style: (ids, offsets, weights) of each text's n-grams -> weighted mean of their
    embeddings (B, dim) -> dropout -> linear -> (B, classes). A text with no known n-gram gets
    the zero vector, i.e. the bias alone."""

    def __init__(self, n_vocab: int, dim: int, n_classes: int, dropout: float = 0.2):
        super().__init__()
        self.embed = nn.EmbeddingBag(max(n_vocab, 1), dim, mode="sum")
        nn.init.uniform_(self.embed.weight, -1 / dim, 1 / dim)  # fastText's initialisation
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, n_classes))

    def forward(self, ids: torch.Tensor, offsets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(ids, offsets, per_sample_weights=weights))


def build_model(arch: dict, n_classes: int) -> nn.Module:
    """The architecture ``arch`` (as saved in model.json) with fresh weights."""
    if arch["model"] == "SmallCNN":
        return SmallCNN(arch["in_channels"], arch["width"], n_classes, arch["dropout"])
    if arch["model"] == "BagOfNgrams":
        return BagOfNgrams(arch["n_vocab"], arch["dim"], n_classes, arch["dropout"])
    raise ValueError(f"unknown small model {arch['model']!r}")


def cnn_width(n_train: int) -> int:
    """First-block channels: fewer for a few hundred examples, where a wide network only memorises."""
    return 16 if n_train < 1000 else 32 if n_train < 20_000 else 64


# --- augmentation ---------------------------------------------------------------------------


def random_crop(x: torch.Tensor, pad_h: int, pad_w: int, gen: torch.Generator) -> torch.Tensor:
    """(B, C, H, W) -> same shape: zero-padded (0 = the training mean after standardising), then
    each example cropped back at its own random offset."""
    if not pad_h and not pad_w:
        return x
    _, _, h, w = x.shape
    padded = nn.functional.pad(x, (pad_w, pad_w, pad_h, pad_h))
    dy = torch.randint(0, 2 * pad_h + 1, (len(x),), generator=gen).tolist()
    dx = torch.randint(0, 2 * pad_w + 1, (len(x),), generator=gen).tolist()
    return torch.stack([padded[i, :, y : y + h, xx : xx + w] for i, (y, xx) in enumerate(zip(dy, dx))])


def random_flip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    flip = torch.rand(len(x), generator=gen) < 0.5
    out = x.clone()
    out[flip] = out[flip].flip(-1)
    return out


# --- preparations -----------------------------------------------------------------------------


@dataclass
class ImagePrep:
    side: int
    channels: int  # 1: every training image was grey
    mean: list[float]
    std: list[float]
    pad: int
    flip: bool
    kind: str = "image"

    @classmethod
    def learn(cls, items: list, flip: bool) -> tuple["ImagePrep", torch.Tensor]:
        """Side (median of the training images' longer sides, within 16..64 px), channels and
        per-channel mean/std from the training items; returns the prep and the encoded items."""
        from ..backbones.images import load_image

        sides, grey = [], True
        for x in items:  # a first pass that keeps no image: photos at full size would not fit in memory
            im = load_image(x)
            sides.append(max(im.size))
            grey = grey and _is_grey(im)
        side = int(np.clip(np.median(sides), IMAGE_MIN_SIDE, IMAGE_MAX_SIDE))
        prep = cls(side, 1 if grey else 3, [0.0], [1.0], max(1, side // 8), flip)
        X = prep.encode(items)
        total = torch.zeros(prep.channels, dtype=torch.float64)
        squares = torch.zeros(prep.channels, dtype=torch.float64)
        for lo in range(0, len(X), 1024):  # in chunks: a float copy of every image would be 4x their size
            chunk = X[lo : lo + 1024].double().div_(255)
            total += chunk.sum(dim=(0, 2, 3))
            squares += chunk.square().sum(dim=(0, 2, 3))
        count = X.shape[0] * side * side
        mean = total / count
        prep.mean = mean.tolist()
        prep.std = (squares / count - mean.square()).clamp_min(1e-6).sqrt().tolist()
        return prep, X

    def encode(self, items: list) -> torch.Tensor:
        """(N, C, side, side) uint8."""
        from PIL import Image

        from ..backbones.images import load_image

        out = torch.empty((len(items), self.channels, self.side, self.side), dtype=torch.uint8)
        for i, x in enumerate(items):
            im = load_image(x).convert("L" if self.channels == 1 else "RGB")
            im = im.resize((self.side, self.side), Image.BILINEAR)
            arr = np.array(im, dtype=np.uint8)  # a writable copy for torch
            out[i] = torch.from_numpy(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1).copy())
        return out

    def batch(self, X: torch.Tensor, rows, train: bool, gen: torch.Generator | None = None) -> dict:
        mean = torch.tensor(self.mean).view(1, -1, 1, 1)
        std = torch.tensor(self.std).view(1, -1, 1, 1)
        x = (X[rows].float() / 255 - mean) / std
        if train:
            x = random_crop(x, self.pad, self.pad, gen)
            x = random_flip(x, gen) if self.flip else x
        return {"x": x}


def _is_grey(im) -> bool:
    arr = np.asarray(im)
    return arr.ndim == 2 or (np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2]))


@dataclass
class TextPrep:
    """Words (scikit-learn's default tokens, lowercased) and word pairs seen in at least
    ``min_df`` training texts, the 100,000 most frequent at most."""

    vocabulary: list[str]
    min_df: int
    ngram_range: tuple[int, int] = (1, 2)
    kind: str = "text"
    _vec: object = field(default=None, repr=False, compare=False)

    @classmethod
    def learn(cls, texts: list[str]) -> tuple["TextPrep", object]:
        from sklearn.feature_extraction.text import CountVectorizer

        min_df = 1 if len(texts) < 200 else 2
        vec = CountVectorizer(ngram_range=(1, 2), min_df=min_df, max_features=100_000)
        try:
            vec.fit(texts)
            vocabulary = sorted(vec.vocabulary_, key=vec.vocabulary_.get)
        except ValueError:  # no word of two letters or more in any training text
            vocabulary = []
        prep = cls(vocabulary, min_df)
        return prep, prep.encode(texts)

    def _vectorizer(self):
        if self._vec is None:
            from sklearn.feature_extraction.text import CountVectorizer

            self._vec = CountVectorizer(ngram_range=tuple(self.ngram_range), vocabulary=self.vocabulary or ["\0"])
        return self._vec

    def encode(self, texts: list[str]):
        """CSR (N, V) of each text's n-gram shares (counts / the text's known n-grams)."""
        from sklearn.preprocessing import normalize

        counts = self._vectorizer().transform([str(t) for t in texts]).astype(np.float32)
        return normalize(counts, norm="l1", copy=False)

    def batch(self, X, rows, train: bool, gen: torch.Generator | None = None) -> dict:
        sub = X[list(rows)]
        return {
            "ids": torch.from_numpy(sub.indices.astype(np.int64)),
            "offsets": torch.from_numpy(sub.indptr[:-1].astype(np.int64)),
            "weights": torch.from_numpy(sub.data.astype(np.float32)),
        }

    def to_json(self) -> dict:
        return {
            "kind": self.kind,
            "min_df": self.min_df,
            "ngram_range": list(self.ngram_range),
            "tokens": "scikit-learn CountVectorizer defaults: lowercase, words of 2+ letters",
        }


@dataclass
class AudioPrep:
    """Log-mel spectrograms (16 kHz, 64 mel bands, 25 ms windows every 10 ms, dB) of clips cropped or
    padded to ``seconds``, standardised by the training mean and standard deviation."""

    seconds: float
    mean: float = 0.0
    std: float = 1.0
    shift: int = 0  # frames a training example may move in time
    kind: str = "audio"

    @classmethod
    def learn(cls, items: list, seconds: float) -> tuple["AudioPrep", torch.Tensor]:
        prep = cls(seconds)
        X = prep.encode(items)
        prep.mean, prep.std = float(X.mean()), float(X.std().clamp_min(1e-3))
        prep.shift = max(1, X.shape[-1] // 16)
        return prep, X

    def encode(self, items: list) -> torch.Tensor:
        """(N, 1, 64, frames) float32 dB."""
        import librosa

        from ..data.audio import load_clip

        specs = [
            librosa.power_to_db(
                librosa.feature.melspectrogram(
                    y=load_clip(x, AUDIO_RATE, self.seconds),
                    sr=AUDIO_RATE,
                    n_fft=512,
                    win_length=400,
                    hop_length=AUDIO_HOP,
                    n_mels=AUDIO_MELS,
                ),
                ref=1.0,
                amin=1e-10,
                top_db=None,
            )
            for x in items
        ]
        return torch.from_numpy(np.stack(specs).astype(np.float32)[:, None])

    def batch(self, X: torch.Tensor, rows, train: bool, gen: torch.Generator | None = None) -> dict:
        x = (X[rows] - self.mean) / self.std
        return {"x": random_crop(x, 0, self.shift, gen) if train else x}


def prep_to_json(prep) -> dict:
    if isinstance(prep, TextPrep):
        return prep.to_json()
    out = asdict(prep)
    return out


def prep_from_json(data: dict, vocabulary: list[str] | None = None):
    kind = data.get("kind")
    if kind == "image":
        return ImagePrep(**{k: data[k] for k in ("side", "channels", "mean", "std", "pad", "flip")})
    if kind == "text":
        return TextPrep(list(vocabulary or []), int(data["min_df"]), tuple(data["ngram_range"]))
    if kind == "audio":
        return AudioPrep(**{k: data[k] for k in ("seconds", "mean", "std", "shift")})
    raise ValueError(f"unknown preparation kind {kind!r}")
