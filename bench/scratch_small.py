"""The scratch_small rung vs a hand-written small model of the same kind, on the demos' data and splits.

* images: Animal-MNIST, the image demo's split and caps (800 train, 200 validation, 1,000 test);
  the hand-written model is the textbook small CNN (conv 32 -> pool -> conv 64 -> pool -> dense
  128 -> linear) on the 28x28 grey pixels scaled to [0, 1], no augmentation;
* text: fine-food reviews, the text demo's split and caps (400 / 150 / 500); the hand-written
  model is a fastText-style bag of word and word-pair embeddings (its own tokeniser and
  vocabulary, n-grams in at least 2 training reviews, 64-d, mean, linear).

Both hand-written models train with a plain PyTorch loop written below (Adam, shuffled batches of
64, cross-entropy) for a fixed 30 epochs, keeping the epoch best on validation accuracy: what a
practitioner would write. transferlab's side is the rung's own ``run`` (data encoding included
in its time). Each side runs with the same seeds, alternating; test accuracy is the mean over
seeds with its 95% bootstrap interval (test resampling and seeds), the difference is paired on
the same test examples, and the fit time is the median wall time (one-off imports done before).

    python bench/scratch_small.py [--seeds 3] [--modality image text]
Writes bench/results/scratch_small.json.
"""

from __future__ import annotations

import argparse
import copy
import re
import time
from collections import Counter

import numpy as np
import torch
from run_all import median, save
from torch import nn

HAND_EPOCHS, HAND_BATCH = 30, 64


# --- the hand-written side ------------------------------------------------------------------


class TextbookCNN(nn.Module):
    def __init__(self, n_classes: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Dropout(0.25),
            nn.Linear(64 * 7 * 7, 128),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(128, n_classes),
        )

    def forward(self, x):
        return self.net(x)


class FastText(nn.Module):
    def __init__(self, n_vocab: int, n_classes: int, dim: int = 64):
        super().__init__()
        self.embed = nn.EmbeddingBag(n_vocab, dim, mode="mean")
        self.out = nn.Linear(dim, n_classes)

    def forward(self, ids, offsets):
        return self.out(self.embed(ids, offsets))


def ngrams(text: str) -> list[str]:
    words = re.findall(r"\w+", text.lower())
    return words + [f"{a} {b}" for a, b in zip(words, words[1:])]


def image_tensors(items) -> torch.Tensor:
    from transferlab.backbones.images import load_image

    return torch.from_numpy(np.stack([np.array(load_image(x).convert("L")) for x in items])).float()[:, None] / 255


def text_batches(texts, vocab: dict):
    """Each text's known n-gram ids (a text with none gets the padding id 0)."""
    return [torch.tensor([vocab[g] for g in ngrams(t) if g in vocab] or [0]) for t in texts]


def hand_fit(modality: str, task, seed: int, lr: float):
    """A plain loop: fixed epochs, Adam, best validation epoch kept. Returns test predictions."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    (tr, y_tr), (va, y_va), te = task.part("train"), task.part("val"), task.part("test")[0]
    k = len(task.classes)
    if modality == "image":
        X = {"train": image_tensors(tr), "val": image_tensors(va), "test": image_tensors(te)}
        model = TextbookCNN(k)

        def forward(split, rows):
            return model(X[split][rows])
    else:
        counts = Counter(g for t in tr for g in set(ngrams(t)))
        vocab = {g: i + 1 for i, g in enumerate(sorted(g for g, c in counts.items() if c >= 2))}
        X = {"train": text_batches(tr, vocab), "val": text_batches(va, vocab), "test": text_batches(te, vocab)}
        model = FastText(len(vocab) + 1, k)

        def forward(split, rows):
            seqs = [X[split][i] for i in rows]
            offsets = torch.tensor([0] + [len(s) for s in seqs[:-1]]).cumsum(0)
            return model(torch.cat(seqs), offsets)

    def predict(split):
        model.eval()
        with torch.no_grad():
            n = len(X[split])
            return (
                torch.cat([forward(split, np.arange(lo, min(lo + 256, n))) for lo in range(0, n, 256)])
                .argmax(1)
                .numpy()
            )

    opt = torch.optim.Adam(model.parameters(), lr=lr)
    best, best_state = -1.0, None
    for _ in range(HAND_EPOCHS):
        model.train()
        perm = rng.permutation(len(y_tr))
        for lo in range(0, len(perm), HAND_BATCH):
            rows = perm[lo : lo + HAND_BATCH]
            loss = nn.functional.cross_entropy(forward("train", rows), torch.as_tensor(y_tr[rows]))
            opt.zero_grad()
            loss.backward()
            opt.step()
        acc = float((predict("val") == y_va).mean())
        if acc > best:
            best, best_state = acc, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return predict("test")


# --- the comparison -------------------------------------------------------------------------


def compare(modality: str, seeds: int) -> dict:
    from transferlab.demo import demo_data, demo_spec
    from transferlab.evaluation import evaluate
    from transferlab.evaluation.compare import paired_bootstrap
    from transferlab.rungs import RUNGS, Context
    from transferlab.runner import prepare_task

    spec = demo_spec(modality, audit=False)
    task = prepare_task(demo_data(modality), spec)
    y_test = task.part("test")[1]
    lr = 1e-2 if modality == "text" else 1e-3
    sides = {
        "transferlab scratch_small": lambda s: RUNGS.get("scratch_small")().run(Context(task, spec, s)),
        "hand-written": lambda s: hand_fit(modality, task, s, lr),
    }
    preds: dict[str, list] = {n: [] for n in sides}
    times: dict[str, list] = {n: [] for n in sides}
    notes = []
    for s in range(seeds):
        for n in list(sides) if s % 2 == 0 else list(sides)[::-1]:
            start = time.perf_counter()
            out = sides[n](s)
            times[n].append(time.perf_counter() - start)
            if n.startswith("transferlab"):
                notes.append(out.notes[1])
                out = out.test_pred
            preds[n].append(out)
            print(
                f"{modality} {n} seed {s}: test accuracy {np.mean(out == y_test):.3f}, {times[n][-1]:.1f} s", flush=True
            )
    rows = {}
    for n in sides:
        acc = evaluate(y_test, np.stack(preds[n]), task.classes, with_details=False)["accuracy"]
        rows[n] = {
            "test_accuracy": acc["mean"],
            "ci": acc["ci"],
            "seeds": [float(np.mean(p == y_test)) for p in preds[n]],
            "fit_seconds": times[n],
            "median_fit_seconds": median(times[n]),
        }
    diff = paired_bootstrap(
        y_test,
        np.stack(preds["transferlab scratch_small"]),
        np.stack(preds["hand-written"]),
        "accuracy",
        n_classes=len(task.classes),
    )
    return {
        "modality": modality,
        "splits": task.sizes(),
        "seeds": seeds,
        "majority_share": float(np.bincount(y_test).max() / len(y_test)),
        "contenders": rows,
        "transferlab_minus_hand": diff,
        "rung_notes": notes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--modality", nargs="+", default=["image", "text"], choices=["image", "text"])
    args = parser.parse_args()
    # one-off imports out of the timings: torch's first optimizer imports torch._dynamo (5-10 s), which
    # would land on whichever side runs first
    import sklearn.feature_extraction.text  # noqa: F401
    import sklearn.preprocessing  # noqa: F401

    torch.optim.AdamW([torch.zeros(1, requires_grad=True)])
    results = [compare(m, args.seeds) for m in args.modality]
    save("scratch_small", {"results": results, "torch_threads": torch.get_num_threads()})
    print(section({"results": results, "date": "now"}))


def section(d: dict) -> str:
    """This benchmark's part of bench/RESULTS.md."""
    names = {"image": "Animal-MNIST (image demo split)", "text": "fine-food reviews (text demo split)"}
    lines = []
    for r in d["results"]:
        diff = r["transferlab_minus_hand"]
        for n, v in r["contenders"].items():
            delta = (
                "—"
                if n.startswith("transferlab")
                else (
                    f"{diff['delta']:+.3f} [{diff['ci'][0]:+.3f}, {diff['ci'][1]:+.3f}]"
                    + (" significant" if diff["significant"] else " within noise")
                )
            )
            lines.append(
                f"| {names[r['modality']]} | {r['splits']['train']} / {r['splits']['val']} / "
                f"{r['splits']['test']} | {n} | {v['test_accuracy']:.3f} [{v['ci'][0]:.3f}, {v['ci'][1]:.3f}] | "
                f"{v['median_fit_seconds']:.1f} s | {delta} |"
            )
    first = d["results"][0]
    return f"""## A small model from scratch: the scratch_small rung vs a hand-written one

`python bench/scratch_small.py` — the `scratch_small` rung (its own `run`, encoding included)
against a hand-written model of the same kind on the same split: the textbook small CNN on the
28×28 grey pixels (conv 32 → pool → conv 64 → pool → dense 128 → linear, no augmentation) for
Animal-MNIST, a fastText-style bag of word and word-pair embeddings for the reviews, each
trained by a plain PyTorch loop (Adam, batches of 64, 30 epochs, best validation epoch kept).
{first["seeds"]} seeds per side, alternating; accuracy is the mean over seeds with its 95% bootstrap
interval (test resampling and seeds); the difference is the rung's minus the hand-written
model's, paired on the same test examples. Fit time is the median wall time; the rung trains
until validation stops improving (up to 60 epochs, patience 15, random crops and flips), the
hand-written models a fixed 30 epochs. Run {d["date"]}, one torch thread, on a shared machine.

| data | train / val / test | model | test accuracy | fit time | difference (rung − hand-written) |
|---|---|---|---|---|---|
{chr(10).join(lines)}
"""


if __name__ == "__main__":
    main()
