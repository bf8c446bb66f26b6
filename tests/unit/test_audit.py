"""The data audit: planted faults are found (recall per kind), clean data raises no alarm.

A generator builds a clean labelled set (distinct synthetic sentences; random-shape drawings),
then plants faults: exact copies and augmented near-copies of validation/test examples in train,
copies with a different label, and class imbalance. Recall is measured per fault kind.
"""

from __future__ import annotations

import io
import string

import numpy as np
import pytest

from transferlab.audit import CHECKS, AuditInputs, Finding, apply_leakage_policy, run_audit
from transferlab.data import from_arrays, make_task
from transferlab.data.splits import Task
from transferlab.errors import DataError

CLASSES = ["alpha", "beta", "gamma"]
SYLLABLES = ["ka", "lo", "mi", "ter", "san", "dor", "vel", "ix", "pra", "qu", "ne", "bo", "ru", "fen", "tal",
             "gri", "os", "um", "zel", "ha"]
PER_KIND = 20
MIN_RECALL = 0.9


# ---------------------------------------------------------------- clean data

def clean_texts(n: int, rng: np.random.Generator) -> list[str]:
    """Distinct sentences of 10-22 pseudo-words, capitalised, with commas and a full stop."""
    vocab = sorted({"".join(rng.choice(SYLLABLES, size=rng.integers(1, 4))) for _ in range(900)})
    out: set[str] = set()
    while len(out) < n:
        words = [w + ("," if rng.random() < 0.1 else "") for w in rng.choice(vocab, size=rng.integers(10, 23))]
        out.add(" ".join(words).capitalize() + ".")
    return sorted(out, key=lambda _: rng.random())


def clean_images(n: int, rng: np.random.Generator, size: int = 64) -> list[np.ndarray]:
    """Random drawings: 5-10 ellipses, rectangles and triangles over a colour gradient, plus pixel noise.

    The gradient and noise stand in for the texture of photographs: flat drawings of three shapes
    are so simple that unrelated ones share most of their 8x8 perceptual hash.
    """
    from PIL import Image, ImageDraw

    yy, xx = np.mgrid[0:size, 0:size] / size
    out = []
    for _ in range(n):
        angle = rng.uniform(0, 2 * np.pi)
        t = np.cos(angle) * xx + np.sin(angle) * yy
        t = ((t - t.min()) / np.ptp(t))[..., None]
        start, end = rng.integers(0, 256, (2, 1, 1, 3))
        img = Image.fromarray((start * (1 - t) + end * t).astype(np.uint8))
        draw = ImageDraw.Draw(img)
        for _ in range(rng.integers(5, 11)):
            x0, y0 = rng.integers(-8, size - 8, 2)
            x1, y1 = x0 + rng.integers(8, size // 2), y0 + rng.integers(8, size // 2)
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            shape = rng.integers(3)
            if shape == 0:
                draw.ellipse((x0, y0, x1, y1), fill=colour)
            elif shape == 1:
                draw.rectangle((x0, y0, x1, y1), fill=colour)
            else:
                draw.polygon([(x0, y1), (x1, y1), ((x0 + x1) // 2, y0)], fill=colour)
        noisy = np.asarray(img).astype(int) + rng.integers(-12, 13, (size, size, 3))
        out.append(np.clip(noisy, 0, 255).astype(np.uint8))
    return out


def clean_splits(n: int, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """Labels in turn; half train, a quarter each val and test, in random order."""
    labels = [CLASSES[i % 3] for i in range(n)]
    splits = np.array(["train"] * (n - 2 * (n // 4)) + ["val"] * (n // 4) + ["test"] * (n // 4))
    return labels, rng.permutation(splits).tolist()


# ---------------------------------------------------------------- faults

def _char_edits(text: str, rng: np.random.Generator, k: int = 3) -> str:
    chars = list(text)
    for _ in range(k):
        i = int(rng.integers(len(chars)))
        letter = str(rng.choice(list(string.ascii_lowercase)))
        op = rng.integers(3)
        if op == 0:
            chars[i] = letter
        elif op == 1:
            chars.insert(i, letter)
        else:
            del chars[i]
    return "".join(chars)


TEXT_FAULTS = {
    "exact": lambda t, rng: t,
    "char edits": _char_edits,
    "casing": lambda t, rng: t.upper(),
    "punctuation": lambda t, rng: t.translate(str.maketrans("", "", string.punctuation)),
    "truncation": lambda t, rng: t[:int(0.7 * len(t))],
}


def _pil(a: np.ndarray):
    from PIL import Image

    return Image.fromarray(a)


def _crop(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = a.shape[:2]
    ch, cw = int(0.9 * h), int(0.9 * w)
    y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    return a[y:y + ch, x:x + cw]


def _jpeg(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    _pil(a).save(buf, format="JPEG", quality=75)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def _brightness(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from PIL import ImageEnhance

    return np.asarray(ImageEnhance.Brightness(_pil(a)).enhance(1.2))


IMAGE_FAULTS = {
    "exact": lambda a, rng: a.copy(),
    "flip": lambda a, rng: np.ascontiguousarray(a[:, ::-1]),
    "crop 90%": _crop,
    "rescale": lambda a, rng: np.asarray(_pil(a).resize((int(a.shape[1] * 1.5), int(a.shape[0] * 1.5)))),
    "jpeg": _jpeg,
    "brightness +20%": _brightness,
}


def planted_set(modality: str, n_clean: int, seed: int = 0):
    """Clean data plus, for each fault kind, PER_KIND training copies of distinct val/test examples,
    and PER_KIND copies with another label. Returns (task, {kind: [(source, copy)]}, conflicts)."""
    rng = np.random.default_rng(seed)
    items = clean_texts(n_clean, rng) if modality == "text" else clean_images(n_clean, rng)
    labels, splits = clean_splits(n_clean, rng)
    faults = TEXT_FAULTS if modality == "text" else IMAGE_FAULTS
    held_out = rng.permutation([i for i in range(n_clean) if splits[i] != "train"])
    sources = iter(held_out.tolist())
    planted: dict[str, list[tuple[int, int]]] = {}
    for kind, augment in faults.items():
        for _ in range(PER_KIND):
            src = next(sources)
            planted.setdefault(kind, []).append((src, len(items)))
            items.append(augment(items[src], rng))
            labels.append(labels[src])
            splits.append("train")
    conflicts = []
    kinds = list(faults)
    for k in range(PER_KIND):
        src = next(sources)
        augment = faults[kinds[k % len(kinds)]]
        conflicts.append((src, len(items)))
        items.append(augment(items[src], rng))
        labels.append(CLASSES[(CLASSES.index(labels[src]) + 1) % 3])
        splits.append("train")
    task = make_task(from_arrays(items, labels, splits=splits, modality=modality))
    return task, planted, conflicts


def clean_task(modality: str, n: int, seed: int = 0) -> Task:
    rng = np.random.default_rng(seed)
    items = clean_texts(n, rng) if modality == "text" else clean_images(n, rng)
    labels, splits = clean_splits(n, rng)
    return make_task(from_arrays(items, labels, splits=splits, modality=modality))


def pairs_of(report, *checks: str, severity: str = "error") -> set[frozenset]:
    return {frozenset(p) for f in report.findings if f.check in checks and f.severity == severity for p in f.pairs}


def recall(found: set[frozenset], planted: list[tuple[int, int]]) -> float:
    return float(np.mean([frozenset(p) in found for p in planted]))


# ---------------------------------------------------------------- recall and false alarms

@pytest.fixture(scope="module", params=["text", "image"])
def audited(request):
    n = 300
    task, planted, conflicts = planted_set(request.param, n)
    clean = clean_task(request.param, n)
    return (request.param, task, planted, conflicts, run_audit(AuditInputs(task)),
            run_audit(AuditInputs(clean)), len(clean.items))


def test_recall_per_fault_kind(audited):
    modality, task, planted, conflicts, report, _, _ = audited
    leaks = pairs_of(report, "exact_duplicates", "near_duplicates")
    recalls = {kind: recall(leaks, pairs) for kind, pairs in planted.items()}
    recalls["label conflict"] = recall(pairs_of(report, "label_conflicts"), conflicts)
    print(f"\n{modality} recall per fault kind:", {k: round(v, 2) for k, v in recalls.items()})
    assert all(v >= MIN_RECALL for v in recalls.values()), recalls
    planted_all = {frozenset(p) for pairs in planted.values() for p in pairs} | {frozenset(p) for p in conflicts}
    assert leaks <= planted_all, f"pairs reported that were not planted: {leaks - planted_all}"


def test_no_false_alarms_on_clean_data(audited):
    modality, _, _, _, _, clean_report, n = audited
    alarms = [f for f in clean_report.findings if f.severity == "error"]
    pairs = pairs_of(clean_report, "exact_duplicates", "near_duplicates", "label_conflicts")
    print(f"\n{modality} false alarms on {n} clean examples: {len(pairs)} pairs")
    assert not alarms and not pairs
    assert all(f.count == 0 for f in clean_report.findings if f.check in ("exact_duplicates", "near_duplicates",
                                                                           "label_conflicts"))
