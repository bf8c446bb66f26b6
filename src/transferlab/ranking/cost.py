"""What ranking needs beyond the features: the source model's predictions and the memory cost.

``source_probabilities`` gives LEEP and NCE the pretrained classifier's softmax over its own
classes (e.g. the 1000 ImageNet-1k classes). It applies the backbone's source head to the
features already extracted (and cached) for the ranking, which is exactly the full model's
output: the head is what sat on top of those features. No item is embedded again.

``measure_cost`` measures the peak resident memory of embedding one batch with the backbone,
above the baseline of a process that has imported the libraries: in a fresh Python process
(``python -m transferlab.ranking.cost``) the backbone is built from the name and options it was
resolved from, the kernel's peak-RSS mark is reset (Linux ``/proc/self/clear_refs``), the
weights are loaded and one batch is preprocessed and embedded; the figure is the peak RSS
minus the RSS just before loading. It covers the weights (as loaded), the preprocessed batch
and the activations, and nothing the calling process had allocated before.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

MIB = 2**20


def source_probabilities(backbone, features, batch_size: int = 1024) -> tuple[np.ndarray | None, str]:
    """(N, Z) float32 softmax of ``backbone``'s source classifier over ``features`` (N, D), the
    encoder's own output, and a note; (None, the reason) when the backbone has no such head."""
    import torch

    head = backbone.source_head()
    if head is None:
        kind = "a sentence embedder" if backbone.modality == "text" else "loaded without its classifier"
        return None, (f"{backbone.name} has no classifier over its pretraining classes ({kind}); LEEP and NCE need one")
    f = np.asarray(features, dtype=np.float32)  # (N, D), possibly a read-only memory map: batches are copied
    with torch.inference_mode():
        probs = np.concatenate(
            [
                torch.softmax(head(torch.from_numpy(np.array(f[lo : lo + batch_size]))).float(), dim=1).numpy()
                for lo in range(0, len(f), batch_size)
            ]
        )  # (N, Z)
    return probs, f"softmax over the {probs.shape[1]} classes of {backbone.name}'s pretrained classifier"


def probe_items(backbone, items: list, batch_size: int) -> list:
    """The batch to measure: for text the ``batch_size`` longest items (the batch that pads the
    most, so the figure bounds every batch of the extraction), otherwise the first ones."""
    sort_key = getattr(backbone, "sort_key", None)
    if sort_key is None:
        return list(items[:batch_size])
    longest = sorted(range(len(items)), key=lambda i: sort_key(items[i]), reverse=True)[:batch_size]
    return [items[i] for i in sorted(longest)]


def measure_cost(backbone, items: list, batch_size: int, timeout: float = 600.0) -> dict[str, Any]:
    """``peak_memory_mb`` (MiB) of embedding one batch of ``batch_size`` of ``items`` with
    ``backbone`` in a fresh process (see the module docstring), with the batch size and the
    probe's wall time; ``peak_memory_mb`` is None and ``peak_memory_note`` says why when it
    could not be measured."""
    import torch

    batch = probe_items(backbone, items, batch_size)
    out: dict[str, Any] = {"peak_memory_mb": None, "peak_memory_batch": len(batch)}
    if backbone.recipe is None:
        return {**out, "peak_memory_note": f"{backbone.name} was not built by name (transferlab.backbones.resolve)"}
    job = {"recipe": backbone.recipe, "items": batch, "threads": torch.get_num_threads()}
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "transferlab.ranking.cost"],
            input=pickle.dumps(job),
            capture_output=True,
            timeout=timeout,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    except subprocess.TimeoutExpired:
        return {**out, "peak_memory_note": f"the memory probe took over {timeout:.0f} s"}
    out["peak_memory_seconds"] = time.perf_counter() - start
    lines = proc.stdout.decode(errors="replace").strip().splitlines()
    if proc.returncode != 0 or not lines:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        return {**out, "peak_memory_note": f"the memory probe failed: {err[-1] if err else proc.returncode}"}
    return {**out, **json.loads(lines[-1])}


def batch_memory(backbone, items: list, batch_size: int) -> dict[str, Any]:
    """The cheap, in-process figure a run records for every candidate: the weights' bytes plus
    the rise of this process's resident memory while embedding the batch of ``probe_items``,
    sampled every millisecond by a thread (this process's own peak mark is left alone, so
    whole-run peak figures stay right). Memory the process already holds and reuses is not
    counted, so this is a lower bound of what a fresh process needs; ``measure_cost`` measures
    that, in a child process."""
    import threading

    import torch

    batch = probe_items(backbone, items, batch_size)
    encoder = backbone.encoder()
    weights = sum(p.numel() * p.element_size() for p in encoder.parameters()) / MIB
    out: dict[str, Any] = {"peak_memory_mb": None, "peak_memory_batch": len(batch), "weights_mb": weights}
    base = _rss_bytes("VmRSS")
    if base is None:
        return {**out, "peak_memory_note": "/proc/self/status is not readable (not Linux)"}
    peak, done = [base], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes("VmRSS") or 0)
            done.wait(0.001)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    try:
        with torch.inference_mode():
            encoder(**backbone.preprocess(batch))
    finally:
        done.set()
        watcher.join()
    rise = max(peak[0] - base, 0) / MIB
    return {
        **out,
        "peak_memory_mb": weights + rise,
        "batch_memory_mb": rise,
        "peak_memory_note": f"weights + the memory rise while embedding {len(batch)} items in this process",
    }


def _rss_bytes(field: str) -> int | None:
    """VmRSS or VmHWM of this process from /proc (Linux), in bytes."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux >= 4.0: peak RSS := current RSS
        return True
    except OSError:
        return False


def _probe(job: dict) -> dict[str, Any]:
    """Runs in the fresh process: build, reset the peak mark, load, embed one batch, read the peak."""
    import gc
    import resource

    import torch

    from ..backbones import resolve

    torch.set_num_threads(int(job["threads"]))
    name, options = job["recipe"]
    backbone = resolve(name, **options)  # tokenizer and config, no weights yet
    gc.collect()
    exact = _reset_peak()
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is in bytes on macOS, KiB on Linux
    baseline = _rss_bytes("VmRSS") if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    encoder = backbone.encoder()
    with torch.inference_mode():
        encoder(**backbone.preprocess(job["items"]))
    peak = _rss_bytes("VmHWM") if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    out = {"peak_memory_mb": max(peak - baseline, 0) / MIB, "baseline_memory_mb": baseline / MIB}
    if not exact:
        out["peak_memory_note"] = "approximate: the peak-RSS mark could not be reset (not Linux)"
    return out


if __name__ == "__main__":
    print(json.dumps(_probe(pickle.load(sys.stdin.buffer))))
