"""Feature extraction with an on-disk cache.

The cache key is the backbone's weights, its preprocessing and the content hashes of the items
in order, so a second run over the same data does not re-extract and any changed input does.
Extraction streams batches into a memory-mapped ``.npy`` written under a temporary name and
renamed when complete: an interrupted extraction never leaves a file that looks finished.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..backbones.base import Backbone
from ..devices import device, to_device
from .store import FeatureStore  # noqa: F401  (re-exported: what rungs read features through)


def default_cache_dir() -> Path:
    return Path(os.environ.get("TRANSFERLAB_CACHE", Path.home() / ".cache" / "transferlab")) / "features"


def cache_key(backbone: Backbone, hashes: list[str]) -> str:
    h = hashlib.sha256(backbone.cache_id().encode())
    for item_hash in hashes:
        h.update(item_hash.encode())
    return h.hexdigest()[:32]


@dataclass
class Extraction:
    features: np.ndarray  # (N, D) float32, memory-mapped
    path: Path
    from_cache: bool
    seconds: float  # how long the extraction took when it ran (also for a cache hit)

    @property
    def items_per_second(self) -> float | None:
        return len(self.features) / self.seconds if self.seconds > 0 else None


def _timing_path(path: Path) -> Path:
    return path.with_suffix(".json")


def _recorded_seconds(path: Path) -> float:
    try:
        return float(json.loads(_timing_path(path).read_text())["seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0


def _checksum(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _valid(path: Path, n: int) -> np.ndarray | None:
    """The cached array, or None when the entry is truncated, corrupted or from an older layout
    (its checksum, recorded beside it when it was written, no longer matches): it is rebuilt."""
    try:
        recorded = json.loads(_timing_path(path).read_text()).get("sha256")
        if recorded is None or recorded != _checksum(path):
            return None
        arr = np.load(path, mmap_mode="r")
    except (OSError, ValueError, AttributeError):
        return None
    return arr if arr.ndim == 2 and arr.shape[0] == n else None


def _remove_orphans(path: Path) -> None:
    """Delete half-written files of this entry left by a process that was killed while writing."""
    for leftover in path.parent.glob(f"{path.stem}.*.tmp.*"):
        pid = leftover.name[len(path.stem) + 1 :].split(".", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)  # still running (another process extracting the same entry): leave it
        except ProcessLookupError:
            leftover.unlink(missing_ok=True)
        except PermissionError:
            pass


def extract(
    backbone: Backbone,
    items: list,
    hashes: list[str],
    *,
    cache_dir: str | Path | None = None,
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
) -> Extraction:
    """Embed ``items`` with the pretrained backbone, or load the cached result."""
    cache_dir = Path(cache_dir or default_cache_dir())
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", backbone.name)[-60:]
    path = cache_dir / f"{safe}-{cache_key(backbone, hashes)}.npy"
    cached = _valid(path, len(items)) if path.exists() else None
    if cached is not None:
        if progress:
            progress(len(items))
        return Extraction(cached, path, True, _recorded_seconds(path))

    cache_dir.mkdir(parents=True, exist_ok=True)
    _remove_orphans(path)
    encoder = backbone.encoder()
    dev = device()
    if dev.type != "cpu":  # embed on the GPU; the encoder goes back to the CPU afterwards
        encoder.to(dev)
    tmp = path.with_name(path.stem + f".{os.getpid()}.tmp.npy")
    out = None
    start = time.perf_counter()
    try:
        for idx, feats in embed_batches(backbone, items, batch_size, dev):
            if out is None:
                out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(items), feats.shape[1]))
            out[idx] = feats
            if progress:
                progress(len(idx))
        seconds = time.perf_counter() - start
        out.flush()
        del out
        meta = {"seconds": seconds, "items": len(items), "backbone": backbone.name, "sha256": _checksum(tmp)}
        meta_tmp = _timing_path(tmp)
        meta_tmp.write_text(json.dumps(meta))
        os.replace(meta_tmp, _timing_path(path))  # the checksum first: a lone .npy without it is not trusted
        os.replace(tmp, path)
    finally:
        if dev.type != "cpu":
            encoder.to("cpu")
        for leftover in (tmp, _timing_path(tmp)):
            if leftover.exists():
                leftover.unlink()
    return Extraction(np.load(path, mmap_mode="r"), path, False, seconds)


def embed_batches(backbone: Backbone, items: list, batch_size: int, dev: torch.device | None = None):
    """(rows, (B, D) float32 features) for each batch of ``items``, embedded by the backbone's
    encoder. Texts go in order of length (similar lengths pad less); ``rows`` place each batch's
    features back in input order. A fitted model embeds new items here too, in the same batches
    as the run's extraction, so it reproduces the run's features bit for bit."""
    encoder = backbone.encoder()
    sort_key = getattr(backbone, "sort_key", None)
    order = sorted(range(len(items)), key=lambda i: sort_key(items[i])) if sort_key else list(range(len(items)))
    for lo in range(0, len(order), batch_size):
        idx = order[lo : lo + batch_size]
        batch = backbone.preprocess([items[i] for i in idx])
        with torch.inference_mode():
            feats = encoder(**(to_device(batch, dev) if dev is not None else batch)).float().cpu().numpy()
        yield idx, feats


def embed(backbone: Backbone, items: list, batch_size: int = 32) -> np.ndarray:
    """(N, D) float32 features of ``items``, on the CPU and not cached."""
    out = None
    for idx, feats in embed_batches(backbone, items, batch_size):
        if out is None:
            out = np.empty((len(items), feats.shape[1]), dtype=np.float32)
        out[idx] = feats
    return out if out is not None else np.zeros((0, backbone.feature_dim or 0), dtype=np.float32)
