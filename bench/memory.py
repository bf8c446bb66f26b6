"""Peak memory vs dataset size: feature extraction + the frozen rung at growing N.

Synthetic 32x32 PNG images on disk (10 classes, each a colour plus noise), so the items are
paths, as with a real image folder. For each N, a fresh subprocess runs ``transferlab.run`` with
MobileNetV2 at 32 px (1280-d features), the ``frozen`` rung only, one seed, no audit,
corruptions or learning curve, and a fresh feature cache. The peak resident memory of that
process (``os.wait4``'s ``ru_maxrss``) is compared with its memory before the run (after
imports and listing the files) and with the size of the feature file it wrote.

    python bench/memory.py [--sizes 1000 4000 16000 64000]
Writes bench/results/memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from run_all import child_peak, save

SIDE = 32


def make_images(folder: Path, n: int) -> tuple[list[str], list[int]]:
    from PIL import Image

    rng = np.random.default_rng(0)
    colours = rng.integers(40, 216, (10, 3))
    labels = rng.integers(0, 10, n)
    paths = []
    for i, y in enumerate(labels):
        path = folder / f"{i:06d}.png"
        if not path.exists():
            pixels = colours[y] + rng.normal(0, 40, (SIDE, SIDE, 3))
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path)
        paths.append(str(path))
    return paths, labels.tolist()


def worker(folder: Path, n: int, out: Path) -> None:
    import torch  # noqa: F401  (imported before the baseline: the run's share is then the run's own)
    import torchvision  # noqa: F401

    import transferlab
    from transferlab.data import from_arrays

    paths, labels = make_images(folder, n)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cache = out.parent / f"cache-{n}"
    start = time.perf_counter()
    r = transferlab.run(
        from_arrays(paths, labels),
        backbones=["mobilenet_v2"],
        image_size=SIDE,
        rungs="frozen",
        seeds=1,
        audit=False,
        corruptions=False,
        learning_curve=False,
        save_models=False,
        cache_dir=str(cache),
        out=str(out.parent / f"run-{n}"),
        quiet=True,
    )
    seconds = time.perf_counter() - start
    feature_bytes = sum(f.stat().st_size for f in cache.glob("*.npy"))
    out.write_text(
        json.dumps(
            {
                "n": n,
                "rss_before_run_mb": before,
                "run_seconds": seconds,
                "feature_file_mb": feature_bytes / 2**20,
                "test_accuracy": r.rung("frozen:mobilenet_v2")["test"]["accuracy"]["mean"],
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000, 16000, 64000])
    parser.add_argument("--worker", nargs=3, metavar=("FOLDER", "N", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(Path(args.worker[0]), int(args.worker[1]), Path(args.worker[2]))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        make_images(folder, max(args.sizes))  # written once; each size uses the first N files
        for n in args.sizes:
            out = Path(tmp) / f"result-{n}.json"
            peak = child_peak(
                [sys.executable, __file__, "--worker", str(folder), str(n), str(out)],
                env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
            )
            if peak["returncode"]:
                raise SystemExit(f"N={n} failed:\n{peak['stderr_tail']}")
            row = {**json.loads(out.read_text()), "peak_rss_mb": peak["max_rss_mb"], "process_seconds": peak["seconds"]}
            row["run_rss_mb"] = row["peak_rss_mb"] - row["rss_before_run_mb"]
            rows.append(row)
            print(row, flush=True)
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20
    growth = [(b["run_rss_mb"] - a["run_rss_mb"]) / (b["n"] - a["n"]) for a, b in zip(rows, rows[1:])]
    save(
        "memory",
        {"image_side": SIDE, "backbone": "mobilenet_v2", "ram_mb": mem, "rows": rows, "mb_per_item_marginal": growth},
    )
    print(section({"rows": rows, "mb_per_item_marginal": growth, "ram_mb": mem, "date": "now"}))


def section(d: dict) -> str:
    """This benchmark's part of bench/RESULTS.md."""
    rows = "\n".join(
        f"| {r['n']:,} | {r['peak_rss_mb']:,.0f} MB | {r['rss_before_run_mb']:,.0f} MB | {r['run_rss_mb']:,.0f} MB | "
        f"{r['feature_file_mb']:,.0f} MB | {r['run_rss_mb'] / r['feature_file_mb']:.1f}× | "
        f"{r['run_seconds']:.0f} s | {r['test_accuracy']:.3f} |"
        for r in d["rows"]
    )
    last = d["rows"][-1]
    per_item = d["mb_per_item_marginal"][-1] if d["mb_per_item_marginal"] else float("nan")
    feat_per_item = last["feature_file_mb"] / last["n"]
    return f"""## Peak memory vs dataset size

`python bench/memory.py` — synthetic 32×32 PNG images on disk (10 classes), a fresh process
per size running `transferlab.run` with MobileNetV2 at 32 px (1280-d features), the `frozen`
rung only (one seed; no audit, corruptions or learning curve). Peak resident memory of that
process, its memory before the run (Python, torch, torchvision, the list of files), the
run's own share (peak − before), and the size of the feature file it wrote. Run {d["date"]}.

| images | peak RSS | before the run | the run's share | feature file | share / feature file | run time | test accuracy |
|---|---|---|---|---|---|---|---|
{rows}

From {d["rows"][0]["n"]:,} to {last["n"]:,} images the peak moved by {last["peak_rss_mb"] - d["rows"][0]["peak_rss_mb"]:+,.0f} MB; between the two
largest sizes each extra image cost **{1024 * per_item:.1f} KB** of peak memory, for {1024 * feat_per_item:.1f} KB of features on disk
({per_item / feat_per_item:.1f}×). The images themselves are never held: extraction reads them batch by batch
and streams the features into the memory-mapped `.npy`, so at small sizes the peak is the
runtime and the model (torch, MobileNetV2, a batch in flight). What grows is the frozen rung:
scikit-learn's logistic regression fits on the training features in memory, with standardised
copies and the copies its cross-validation folds take. So the images may exceed memory (next
section) but the features of the training split must fit, a few times over: at
{1024 * per_item:.0f} KB an image, 24 GB of RAM holds the frozen rung for about {24 * 2**20 / (1024 * per_item) / 1e6:.1f} million images.
{chr(10).join("- " + n for n in d.get("notes", []))}
"""


if __name__ == "__main__":
    main()
