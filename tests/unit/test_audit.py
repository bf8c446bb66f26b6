"""The data audit: planted faults are found (recall per kind), clean data raises no alarm.

A generator builds a clean labelled set (distinct synthetic sentences; random-shape drawings),
then plants faults: exact copies and augmented near-copies of validation/test examples in train,
copies with a different label, and class imbalance. Recall is measured per fault kind.
"""

from __future__ import annotations

import io
import re
import string

import numpy as np
import pytest

from transferlab.auditing import CHECKS, AuditInputs, Finding, apply_leakage_policy, run_audit
from transferlab.data import from_arrays, make_task
from transferlab.data.splits import Task
from transferlab.errors import DataError

CLASSES = ["alpha", "beta", "gamma"]
SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ter",
    "san",
    "dor",
    "vel",
    "ix",
    "pra",
    "qu",
    "ne",
    "bo",
    "ru",
    "fen",
    "tal",
    "gri",
    "os",
    "um",
    "zel",
    "ha",
]
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
    "truncation": lambda t, rng: t[: int(0.7 * len(t))],
}


def _pil(a: np.ndarray):
    from PIL import Image

    return Image.fromarray(a)


def _crop(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = a.shape[:2]
    ch, cw = int(0.9 * h), int(0.9 * w)
    y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    return a[y : y + ch, x : x + cw]


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
    return (
        request.param,
        task,
        planted,
        conflicts,
        run_audit(AuditInputs(task)),
        run_audit(AuditInputs(clean)),
        len(clean.items),
    )


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
    assert all(
        f.count == 0
        for f in clean_report.findings
        if f.check in ("exact_duplicates", "near_duplicates", "label_conflicts")
    )


def test_imbalance_planted_and_clean():
    rng = np.random.default_rng(1)
    texts = clean_texts(240, rng)
    labels, splits = clean_splits(240, rng)
    balanced = run_audit(AuditInputs(make_task(from_arrays(texts, labels, splits=splits))), ["class_imbalance"])
    assert [f.severity for f in balanced.findings] == ["info"]
    drop = [i for i in range(240) if labels[i] == "gamma" and splits[i] == "train"][5:]  # keep 5 of ~40
    keep = [i for i in range(240) if i not in set(drop)]
    task = make_task(from_arrays([texts[i] for i in keep], [labels[i] for i in keep], splits=[splits[i] for i in keep]))
    (finding,) = run_audit(AuditInputs(task), ["class_imbalance"]).findings
    assert finding.severity == "warning" and finding.count == 1 and "'gamma' (5)" in finding.message


def test_small_test_classes_and_label_shift():
    rng = np.random.default_rng(2)
    texts = clean_texts(300, rng)
    labels = ["alpha"] * 100 + ["beta"] * 100 + ["gamma"] * 100
    splits = (["train"] * 60 + ["val"] * 20 + ["test"] * 20) * 2 + ["train"] * 60 + ["val"] * 37 + ["test"] * 3
    report = run_audit(
        AuditInputs(make_task(from_arrays(texts, labels, splits=splits))), ["class_imbalance", "label_shift"]
    )
    small = [f for f in report.findings if "too few to evaluate" in f.message]
    assert small and small[0].examples == [{"label": "gamma", "test": 3}]
    shift = next(f for f in report.findings if f.check == "label_shift")
    assert shift.severity == "warning" and shift.count == 1 and "in test (total variation" in shift.message
    assert "'gamma' is 33% of train but 7% of test" in shift.message


# ---------------------------------------------------------------- leakage policy


@pytest.fixture(scope="module")
def leaky():
    task, planted, conflicts = planted_set("text", 300, seed=3)
    return task, planted, conflicts, run_audit(AuditInputs(task))


def test_dedupe_removes_only_earlier_copies(leaky):
    task, planted, conflicts, report = leaky
    deduped, notes = apply_leakage_policy(task, report, "dedupe", confirmed=True)  # 44% of train: over the share
    copies = {c for pairs in planted.values() for _, c in pairs} | {c for _, c in conflicts}
    kept = set(deduped.origins)
    assert all(task.origins[c] not in kept for c in copies)  # every planted training copy is gone
    assert deduped.sizes()["test"] == task.sizes()["test"] and deduped.sizes()["val"] == task.sizes()["val"]
    assert len(deduped.items) == len(task.items) - len(copies)
    i = deduped.origins.index(task.origins[0])  # fields stay aligned
    assert deduped.items[i] == task.items[0] and deduped.y[i] == task.y[0] and deduped.hashes[i] == task.hashes[0]
    share = len(copies) / task.sizes()["train"]
    assert notes == [
        f"Removed {len(copies)} training examples that duplicated validation or test examples "
        f"({share:.1%} of the training split; confirmed: --confirm-dedupe)."
    ]
    again = run_audit(AuditInputs(deduped), ["exact_duplicates", "near_duplicates"])
    assert not again.errors()


def test_dedupe_drops_validation_copies_of_test_and_whole_duplicate_groups():
    base = "Vel kator mi sandor ix pra quelo bo rutal fen gri osum zelha ter kami lo."
    texts = [
        base,
        base,
        base.upper(),
        base[:60],
        "Another sentence entirely, about nothing much at all.",
        "Ter san dor vel quite unrelated to the others.",
        "Numbers: one, two, three, four.",
        "Zebras graze on the open plain.",
    ]
    labels = ["a", "a", "a", "a", "b", "a", "b", "b"]
    splits = ["train", "train", "val", "test", "train", "train", "val", "test"]
    task = make_task(from_arrays(texts, labels, splits=splits))
    task.groups = np.array(list("abcdefgh"), dtype=object)
    deduped, notes = apply_leakage_policy(task, run_audit(AuditInputs(task)), max_share=None)  # no limit
    assert deduped.items == texts[3:]  # both training copies and the validation copy go; test stays
    assert deduped.groups.tolist() == list("defgh")
    assert notes == [
        "Removed 2 training examples that duplicated validation or test examples.",
        "Removed 1 validation example that duplicated test examples.",
    ]


def test_dedupe_stops_above_the_share_and_names_sample_pairs(leaky):
    task, planted, conflicts, report = leaky
    copies = {c for pairs in planted.values() for _, c in pairs} | {c for _, c in conflicts}
    n_train = task.sizes()["train"]
    with pytest.raises(DataError) as err:
        apply_leakage_policy(task, report, "dedupe")  # the default share, 5%
    message = str(err.value)
    assert f"would remove {len(copies)} of {n_train} training examples ({len(copies) / n_train:.1%})" in message
    assert "more than the 5% of a split" in message
    assert "\n" not in message  # one line, like every user error
    samples = message.split("the least similar (removed copy ~ the example it matches): ")[1].split(". To go on")[0]
    samples = samples.split("; ")
    assert len(samples) == 3
    for line in samples:  # origins, splits, labels, similarity and method of real pairs
        drop, keep = (task.origins.index(o) for o in re.findall(r"in-memory data item \d+", line))
        assert drop in copies and f"({task.split[drop]}, label '{task.classes[task.y[drop]]}')" in line
        assert f"({task.split[keep]}, label '{task.classes[task.y[keep]]}')" in line
        assert re.search(r"similarity 0\.\d{3} by \w", line) or "exact copy" in line
    for hint in ("transferlab audit DATA", "--on-leakage warn", "--on-leakage dedupe --confirm-dedupe"):
        assert hint in message
    # a larger share, or the user's confirmation, lets the same removal through
    loose, notes = apply_leakage_policy(task, report, "dedupe", max_share=0.5)
    assert len(loose.items) == len(task.items) - len(copies)
    assert notes == [f"Removed {len(copies)} training examples that duplicated validation or test examples."]


def test_dedupe_below_the_share_is_unchanged_and_counts_validation_too():
    task = clean_task("text", 300, seed=5)
    train, val, test = (np.flatnonzero(task.split == s) for s in ("train", "val", "test"))
    items = list(task.items)
    items[train[0]] = items[test[0]]  # one training copy: under 5% of train
    t1 = make_task(from_arrays(items, [task.classes[c] for c in task.y], splits=task.split.tolist()))
    deduped, notes = apply_leakage_policy(t1, run_audit(AuditInputs(t1), ["exact_duplicates"]))
    assert len(deduped.items) == len(t1.items) - 1
    assert notes == ["Removed 1 training example that duplicated validation or test examples."]
    for k in range(4):  # four validation copies of test examples: 5.3% of the validation split
        items[val[k]] = items[test[k + 1]]
    t2 = make_task(from_arrays(items, [task.classes[c] for c in task.y], splits=task.split.tolist()))
    with pytest.raises(
        DataError,
        match=rf"would remove 1 of {len(train)} training examples \(0.7%\) and 4 of "
        rf"{len(val)} validation examples \(5.3%\)",
    ):
        apply_leakage_policy(t2, run_audit(AuditInputs(t2), ["exact_duplicates"]))


def test_dedupe_never_empties_the_validation_split():
    texts = clean_texts(30, np.random.default_rng(2))
    splits = ["train"] * 20 + ["val"] * 4 + ["test"] * 6
    texts[20:24] = texts[24:28]  # every validation text is also a test text
    task = make_task(from_arrays(texts, [CLASSES[i % 2] for i in range(30)], splits=splits))
    with pytest.raises(DataError, match="leaves no validation examples.*--on-leakage warn"):
        apply_leakage_policy(task, run_audit(AuditInputs(task), ["exact_duplicates"]), max_share=None)


def test_fail_names_count_origins_and_flag(leaky):
    task, _, _, report = leaky
    with pytest.raises(DataError) as err:
        apply_leakage_policy(task, report, "fail")
    message = str(err.value)
    assert "--on-leakage dedupe" in message and "--on-leakage warn" in message
    assert "in-memory data item" in message and "pairs of examples in different splits" in message


def test_warn_keeps_everything_and_clean_data_is_untouched(leaky):
    task, _, _, report = leaky
    same, notes = apply_leakage_policy(task, report, "warn")
    assert same is task and len(notes) == 1 and "--on-leakage warn" in notes[0]
    clean = clean_task("text", 90)
    assert apply_leakage_policy(clean, run_audit(AuditInputs(clean)), "fail") == (clean, [])
    with pytest.raises(DataError, match="dedupe, fail, warn"):
        apply_leakage_policy(task, report, "drop")


# ---------------------------------------------------------------- groups, times, skipping


def test_group_overlap():
    task = clean_task("text", 90)
    by_split = np.array([f"{s}-{i % 5}" for i, s in enumerate(task.split)], dtype=object)
    (ok,) = run_audit(AuditInputs(task, groups=by_split), ["group_overlap"]).findings
    assert ok.severity == "info" and ok.count == 0
    shared = by_split.copy()
    shared[task.indices("test")[:3]] = "train-0"  # three test examples from a training patient
    shared[task.indices("val")[:2]] = None  # no group id: ignored
    (bad,) = run_audit(AuditInputs(task, groups=shared), ["group_overlap"]).findings
    assert bad.severity == "error" and bad.count == 1 and "3 validation or test examples" in bad.message
    assert bad.examples[0]["group"] == "train-0" and bad.examples[0]["splits"]["test"] == 3


def test_time_overlap_and_drift():
    task = clean_task("text", 120)
    rank = np.array([{"train": 0, "val": 1, "test": 2}[s] for s in task.split])
    days = np.datetime64("2024-01-01") + (rank * 100 + np.arange(len(rank)) % 90).astype("timedelta64[D]")
    for times in (days, np.datetime_as_string(days).astype(object)):  # datetime64 or ISO strings
        (ok,) = run_audit(AuditInputs(task, times=times), ["time_overlap"]).findings
        assert ok.severity == "info" and ok.count == 0
    shuffled = np.random.default_rng(0).permutation(days)
    older = run_audit(AuditInputs(task, times=shuffled), ["time_overlap"]).findings
    assert older[0].severity == "warning" and "train on the past, test on the future" in older[0].message
    assert older[0].examples[0]["time"].startswith("2024-")
    drifting = np.argsort(np.argsort(task.y, kind="stable"))  # labels change with time
    found = run_audit(AuditInputs(task, times=drifting.astype(float)), ["time_overlap"]).findings
    assert any(f.message.startswith("Labels drift over time") for f in found)


def test_checks_skip_when_inputs_are_missing():
    task = clean_task("text", 60)
    report = run_audit(AuditInputs(task))
    skipped = {f.check: f.message for f in report.skipped}
    assert set(skipped) == {"group_overlap", "time_overlap"}
    assert "needs a group id per example" in skipped["group_overlap"]
    assert set(report.seconds) == set(CHECKS.list_()) - set(skipped)
    audio = Task(
        "audio",
        ["a", "b"],
        [f"clip{i}.wav" for i in range(6)],
        np.array([0, 1] * 3),
        np.array(["train", "train", "val", "val", "test", "test"]),
        [f"clip{i}.wav" for i in range(6)],
        [f"h{i}" for i in range(6)],
    )
    skipped = {f.check for f in run_audit(AuditInputs(audio)).skipped}
    assert "near_duplicates" in skipped
    with pytest.raises(DataError, match="one per example"):
        AuditInputs(task, groups=np.zeros(3))


def test_audio_near_duplicates_from_embeddings():
    rng = np.random.default_rng(0)
    n, d = 200, 64
    x = rng.standard_normal((n, d))
    split = np.array(["train", "val", "test", "train"] * (n // 4))
    copies = np.flatnonzero(split == "train")[:10]
    sources = np.flatnonzero(split == "test")[:10]
    x[copies] = x[sources] + 0.05 * rng.standard_normal((10, d))  # cosine about 0.998
    task = Task(
        "audio",
        ["a", "b"],
        [f"clip{i}.wav" for i in range(n)],
        np.arange(n) % 2,
        split,
        [f"clip{i}.wav" for i in range(n)],
        [f"h{i}" for i in range(n)],
    )
    report = run_audit(AuditInputs(task, features=x), ["near_duplicates"])
    assert pairs_of(report, "near_duplicates") == {frozenset(p) for p in zip(copies.tolist(), sources.tolist())}
    assert report.findings[0].examples[0]["method"] == "embedding cosine"


# ---------------------------------------------------------------- building blocks


def test_exact_duplicates_by_content(tmp_path):
    from PIL import Image

    img = clean_images(1, np.random.default_rng(0))[0]
    paths = []
    for i, level in enumerate([1, 9]):  # same pixels, different PNG bytes
        paths.append(str(tmp_path / f"same{i}.png"))
        Image.fromarray(img).save(paths[-1], compress_level=level)
    for i, other in enumerate(clean_images(4, np.random.default_rng(1))):
        paths.append(str(tmp_path / f"other{i}.png"))
        Image.fromarray(other).save(paths[-1])
    task = make_task(
        from_arrays(paths, ["a", "b", "a", "b", "a", "b"], splits=["train", "test", "train", "val", "test", "train"])
    )
    assert task.hashes[0] != task.hashes[1]
    (finding,) = run_audit(AuditInputs(task), ["exact_duplicates"]).findings
    assert finding.severity == "error" and finding.pairs == [(0, 1)]
    assert finding.examples[0]["a"]["origin"].endswith("item 0") and "text" not in finding.examples[0]["a"]

    texts = ["Hello   World", "hello world", "ｈｅｌｌｏ world", "Goodbye world, see you."] * 2
    task = make_task(from_arrays(texts, ["a", "b"] * 4, splits=["train"] * 4 + ["val", "test"] * 2))
    counts = {f.severity: f.count for f in run_audit(AuditInputs(task), ["exact_duplicates"]).findings}
    assert counts == {"error": 6, "warning": 3}  # every earlier-split copy, and every repeat within a split


def test_hamming_join_is_exact():
    from transferlab.auditing.matching.hamming import hamming_join

    rng = np.random.default_rng(0)
    base = rng.integers(0, 2**63, 400, dtype=np.int64).astype(np.uint64)
    flips = rng.integers(0, 64, (100, 9))
    queries = base[:100].copy()
    for i, bits in enumerate(flips):
        for b in bits[: i % 10]:
            queries[i] ^= np.uint64(1) << np.uint64(b)
    q, b, d = hamming_join(queries, base, 8)
    brute = np.bitwise_count(queries[:, None] ^ base[None, :])
    assert set(zip(q.tolist(), b.tolist())) == set(zip(*np.nonzero(brute <= 8)))
    assert (d == brute[q, b]).all()


def test_approximate_index_finds_planted_pairs():
    from transferlab.auditing.matching.vectors import cosine_pairs

    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 32))
    x[1500:1520] = x[:20] + 0.02 * rng.standard_normal((20, 32))
    a, b, s = cosine_pairs(x, 0.97, exact_limit=1000)
    assert set(zip(a.tolist(), b.tolist())) == {(i, 1500 + i) for i in range(20)} and (s >= 0.97).all()


def test_report_is_json_and_registry_is_complete(leaky):
    import json

    task, _, _, report = leaky
    out = json.loads(json.dumps(report.to_dict()))
    assert set(out) == {"findings", "skipped", "seconds"}
    assert {"check", "severity", "count", "message", "examples"} == set(out["findings"][0])
    assert all(len(e["a"]["text"]) <= 200 for f in out["findings"] for e in f["examples"] if "a" in e)
    assert out["findings"][0]["severity"] == "error"
    assert CHECKS.list_() == sorted(
        [
            "exact_duplicates",
            "near_duplicates",
            "label_conflicts",
            "class_imbalance",
            "label_shift",
            "group_overlap",
            "time_overlap",
        ]
    )
    with pytest.raises(RuntimeError, match="registered twice"):
        CHECKS.register("label_shift")(object)
    assert isinstance(report.findings[0], Finding)


# ---------------------------------------------------------------- real look-alikes


def _digit_images(n: int) -> tuple[list[np.ndarray], list[str]]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return [(x * 255 / 16).astype(np.uint8) for x in d.images[:n]], [str(t) for t in d.target[:n]]


def test_distinct_handwritten_digits_are_not_near_duplicates_but_their_edits_are():
    """Real look-alikes: 8x8 digits of one class correlate about 0.8 at the median, and hundreds of
    distinct pairs reach 0.95 (the old bar). Only planted edits may be confirmed."""
    images, labels = _digit_images(600)
    rng = np.random.default_rng(0)
    sources = rng.choice(len(images), 40, replace=False)
    edits = list(IMAGE_FAULTS.items())[1:]  # flip, crop, rescale, jpeg, brightness
    planted = []
    for k, s in enumerate(sources):
        planted.append((int(s), len(images)))
        images.append(edits[k % len(edits)][1](images[s], rng))
        labels.append(labels[s])
    splits = ["train" if i % 2 else "test" for i in range(600)] + ["train"] * len(sources)
    task = make_task(from_arrays(images, labels, splits=splits, modality="image"))
    from transferlab.auditing.matching import find_matches

    matches = find_matches(AuditInputs(task))
    found = {frozenset(p) for p in matches.near.as_list()}
    assert matches.calibration["image_correlation"] == pytest.approx(0.99)
    assert matches.calibration["same_class_median_correlation"] > 0.6
    assert recall(found, planted) >= 0.95
    false_alarms = found - {frozenset(p) for p in planted}
    assert len(false_alarms) <= 1  # 600 real digits, ~180,000 same-class pairs


def test_flat_patches_of_different_brightness_are_not_duplicates():
    """scikit-image's LFW subset holds 100 nearly flat non-face patches: a dark and a light patch with
    one edge correlate above 0.99 once brightness and contrast are normalised away. The previous
    confirmation flagged 8 such pairs; one pair remains, two patches of one edge whose brightness
    differs by 1.46x, within what a brightness edit does."""
    from skimage import data

    patches = [(im * 255).astype(np.uint8) for im in data.lfw_subset()[100:]]
    task = make_task(
        from_arrays(patches, ["patch"] * 50 + ["other"] * 50, splits=["train", "test"] * 50, modality="image")
    )
    report = run_audit(AuditInputs(task), ["near_duplicates", "label_conflicts"])
    flagged = pairs_of(report, "near_duplicates") | pairs_of(report, "label_conflicts")
    assert len(flagged) <= 1, flagged


def test_kept_grey_copies_confirm_the_same_pairs_as_decoding_again():
    """The grey copies made while hashing are the pixels a decode would give: the confirmed pairs,
    their correlations and alignments are the same with them and without them; and each crop hit
    is tried at exactly the offsets within two pixels of its grid cell."""
    from transferlab.auditing.matching import images as im

    digits, _ = _digit_images(300)
    rng = np.random.default_rng(1)
    edits = list(IMAGE_FAULTS.values())[1:]
    digits += [edits[k % len(edits)](digits[s], rng) for k, s in enumerate(rng.choice(300, 30, replace=False))]
    _, phash, grays = im.signatures(digits)
    assert grays.kept is not None and grays.kept.dtype == np.uint8
    assert np.array_equal(grays.take([5, 7]), np.stack([im._gray(digits[5]), im._gray(digits[7])]))
    kept = im.near_pairs(grays, phash, 10, 0.9)
    decoded = im.near_pairs(digits, phash, 10, 0.9)
    assert len(kept[0]) > 30
    for a, b in zip(kept, decoded):
        assert np.array_equal(a, b)
    sub = grays.subset([3, 310])
    assert np.array_equal(sub.take([1]), grays.take([310])) and sub.items[1] is digits[310]

    hits = np.arange(200)
    row, col = rng.integers(0, im.GRID, 200), rng.integers(0, im.GRID, 200)
    for span in (4, 6, 9):
        cells = np.linspace(0, span, im.GRID)
        expected = {
            (int(h), dy, dx)
            for h in hits
            for dy in range(span + 1)
            for dx in range(span + 1)
            if abs(cells[row[h]] - dy) <= 2 and abs(cells[col[h]] - dx) <= 2
        }
        grouped = [(at, dy, dx) for at, dy, dx in im._alignments(hits, row, col, span)]
        assert len({(dy, dx) for _, dy, dx in grouped}) == len(grouped)  # each offset once
        assert {(int(h), dy, dx) for at, dy, dx in grouped for h in at} == expected
    assert list(im._alignments(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64), 6)) == []
