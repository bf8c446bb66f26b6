"""Shared fixtures: tiny models made on the spot, small data sets written to tmp folders."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

WORDS = {
    "pos": ["great", "delicious", "love", "excellent", "tasty", "perfect", "fresh", "wonderful"],
    "neg": ["awful", "stale", "hate", "terrible", "bland", "broken", "rotten", "disappointing"],
}
FILLER = ["the", "a", "this", "product", "was", "really", "and", "it", "i", "box", "taste", "very"]


@pytest.fixture(autouse=True)
def _reference_pace(request, monkeypatch):
    """Plans made in a test take the cheap work at the reference pace of its per-item rates instead
    of timing it (about 1.2 s a plan, over a hundred plans in the suite), so that the suite's plans
    do not move with the machine's load; tests marked ``real_pace`` time it, as a run does."""
    if request.node.get_closest_marker("real_pace") is None:
        from transferlab.stages import costplan
        from transferlab.stages.pace import CheapPace

        monkeypatch.setattr(costplan, "measure_pace", lambda *a, **k: CheapPace())


def synthetic_reviews(n_per_class: int = 40, seed: int = 0) -> tuple[list[str], list[str]]:
    """Short texts whose class shows in a few telling words among filler."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for label, words in WORDS.items():
        for _ in range(n_per_class):
            tokens = list(rng.choice(FILLER, size=6)) + list(rng.choice(words, size=2))
            rng.shuffle(tokens)
            texts.append(" ".join(tokens))
            labels.append(label)
    return texts, labels


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer BERT saved as a sentence-transformers folder (CLS pooling)."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(set(FILLER + WORDS["pos"] + WORDS["neg"]))
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    # transformers 5 ignores vocab_file= (every word would be [UNK]); the vocabulary goes in as a dict
    BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}).save_pretrained(folder)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    import torch

    torch.manual_seed(1234)  # not the run's seed: the "pretrained" weights must differ from a scratch init
    BertModel(config).save_pretrained(folder)
    (folder / "modules.json").write_text(
        json.dumps(
            [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            ]
        )
    )
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    (folder / "README.md").write_text("---\nlicense: mit\ndatasets:\n- made-up-corpus\n---\n# tiny\n")
    return folder


@pytest.fixture(scope="session")
def spread_bert(tmp_path_factory) -> Path:
    """A random 2-layer BERT (mean pooling) whose texts embed apart: weights drawn wide (std 0.5),
    and a tokenizer built with ``vocab=`` (transformers 5 ignores ``vocab_file=``)."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = tmp_path_factory.mktemp("spread-bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(set(FILLER + WORDS["pos"] + WORDS["neg"]))
    BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}).save_pretrained(folder)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        initializer_range=0.5,
    )
    torch.manual_seed(7)
    BertModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> Path:
    """A random 2-layer CLIP (32 px images, 16-d projections) with a character-level BPE tokenizer."""
    import string

    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

    folder = tmp_path_factory.mktemp("tiny-clip")
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in string.ascii_lowercase + ".,!?":
        vocab.setdefault(c, len(vocab))
        vocab.setdefault(c + "</w>", len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), pad_token="<|endoftext|>").save_pretrained(
        folder
    )
    config = CLIPConfig(
        text_config=dict(
            vocab_size=len(vocab),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=48,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        ),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        ),
        projection_dim=16,
    )
    torch.manual_seed(1234)
    CLIPModel(config).save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


@pytest.fixture
def reviews_csv(tmp_path) -> Path:
    import pandas as pd

    texts, labels = synthetic_reviews()
    path = tmp_path / "reviews.csv"
    pd.DataFrame({"review": texts, "stars": labels}).to_csv(path, index=False)
    return path


def write_image_folder(root: Path, n_per_class: int = 12, size: int = 32, seed: int = 0) -> Path:
    """Two visually distinct classes: bright rectangles on dark, dark rectangles on bright.

    Each rectangle has its own position and sides, so no two images are one picture shifted (the
    audit would rightly call a square moved by a pixel or two a near-duplicate)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for label, (bg, fg) in {"dark": (20, 230), "bright": (230, 20)}.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            img = np.full((size, size, 3), bg, dtype=np.uint8)
            x, y = rng.integers(0, size // 2, size=2)
            h, w = rng.integers(size // 5, size // 2, size=2)
            img[y : y + h, x : x + w] = fg
            img = np.clip(img.astype(int) + rng.integers(-15, 15, img.shape), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / label / f"{i}.png")
    return root


@pytest.fixture
def make_image_folder():
    return write_image_folder


@pytest.fixture
def image_folder(tmp_path) -> Path:
    return write_image_folder(tmp_path / "shapes")


@pytest.fixture
def tiny_torchvision_weights(tmp_path_factory) -> Path:
    """Random mobilenet_v3_small weights saved as safetensors (an offline 'local file' backbone)."""
    import torch
    import torchvision
    from safetensors.torch import save_file

    torch.manual_seed(1234)
    model = torchvision.models.mobilenet_v3_small(weights=None)
    path = tmp_path_factory.mktemp("tv") / "mnv3.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own feature cache, so cache hits are the test's own doing."""
    monkeypatch.setenv("TRANSFERLAB_CACHE", str(tmp_path / "cache"))


SPOKEN_WORDS = ("yes", "no", "stop")
ESPEAK_VOICES = ("en", "en-us", "en-gb-scotland", "en-029")
ESPEAK_VARIANTS = ("m1", "f2", "m3")
ESPEAK_SPEEDS = (130, 170)


def write_spoken_words(root: Path, words=SPOKEN_WORDS) -> Path:
    """``root/<word>/<voice>_<variant>_<speed>.wav``: each word spoken by 4 accents x 3 voice variants x
    2 speeds (24 clips per word, 22,050 Hz mono) with Debian's espeak-ng (``make system-deps``)."""
    import shutil
    import subprocess

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (make system-deps installs it)")
    for word in words:
        (root / word).mkdir(parents=True, exist_ok=True)
        for voice in ESPEAK_VOICES:
            for variant in ESPEAK_VARIANTS:
                for speed in ESPEAK_SPEEDS:
                    out = root / word / f"{voice}_{variant}_{speed}.wav"
                    subprocess.run(
                        ["espeak-ng", "-w", str(out), "-v", f"{voice}+{variant}", "-s", str(speed), word],
                        check=True,
                        capture_output=True,
                    )
    return root


@pytest.fixture(scope="session")
def spoken_words(tmp_path_factory) -> Path:
    """A folder of real synthesised speech, one subfolder per spoken word (3 classes x 24 clips)."""
    return write_spoken_words(tmp_path_factory.mktemp("spoken") / "words")
