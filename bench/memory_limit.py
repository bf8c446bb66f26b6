"""A data set larger than the memory the run may use: an image folder bigger than a cgroup limit.

Writes JPEG images (384x384, 10 classes, a colour plus noise; about 190 KB each) in class
folders until the folder exceeds --data-gb, creates a memory cgroup (v1 or v2) limited to
--limit-gb (this machine has no swap), and runs two programs in it, each in a fresh process:

* ``transferlab run FOLDER --backbone mobilenet_v2 --image-size 64 --rungs majority,frozen
  --seeds 1 --no-corruptions`` with a cold feature cache, the audit on (exact hashes, perceptual
  hashes, embedding near-duplicates): images are read batch by batch and their features streamed
  to a memory-mapped file;
* the alternative many scripts use: decode every image into one array (``np.stack``), then fit
  a classifier; it prints how many images it has decoded as it goes.

For each: the exit status (killed by the kernel's out-of-memory killer or not), the wall time, the
process's peak resident memory, and the cgroup's peak usage (which counts the page cache, reclaimed
under the limit). Needs root (it writes under /sys/fs/cgroup).

    python bench/memory_limit.py [--data-gb 3 --limit-gb 2]
Writes bench/results/memory_limit.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from run_all import save

SIDE = 384
NAME = "transferlab-bench-memory"


def make_images(folder: Path, target_bytes: int) -> tuple[int, int]:
    """Write images until the folder holds ``target_bytes``; (count, bytes)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    colours = rng.integers(40, 216, (10, 3))
    total, n = 0, 0
    while total < target_bytes:
        y = n % 10
        path = folder / f"class_{y}" / f"{n:06d}.jpg"
        path.parent.mkdir(exist_ok=True)
        pixels = colours[y] + rng.normal(0, 60, (SIDE, SIDE, 3))
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=90)
        total += path.stat().st_size
        n += 1
    return n, total


class Cgroup:
    """A memory cgroup (v2 if mounted, else v1) that processes join from ``preexec_fn``."""

    def __init__(self, limit: int):
        v2 = Path("/sys/fs/cgroup/cgroup.controllers")
        if v2.exists():
            self.path, self.v2 = Path("/sys/fs/cgroup") / NAME, True
        elif Path("/sys/fs/cgroup/memory").is_dir():
            self.path, self.v2 = Path("/sys/fs/cgroup/memory") / NAME, False
        else:
            raise SystemExit("No memory cgroup hierarchy under /sys/fs/cgroup: cannot limit memory here.")
        try:
            self.path.mkdir(exist_ok=True)
            if self.v2:
                (self.path / "memory.max").write_text(str(limit))
                (self.path / "memory.swap.max").write_text("0")
            else:
                (self.path / "memory.limit_in_bytes").write_text(str(limit))
        except PermissionError:
            raise SystemExit("Creating a memory cgroup needs root: run this benchmark as root.") from None
        self.limit = limit

    def reset_peak(self) -> None:
        if not self.v2:
            (self.path / "memory.max_usage_in_bytes").write_text("0")

    def join(self) -> None:  # runs in the child before exec
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def peak(self) -> int | None:
        name = "memory.peak" if self.v2 else "memory.max_usage_in_bytes"
        f = self.path / name
        return int(f.read_text()) if f.exists() else None

    def oom_kills(self) -> int:
        f = self.path / ("memory.events" if self.v2 else "memory.oom_control")
        for line in f.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def remove(self) -> None:
        try:
            self.path.rmdir()
        except OSError:
            pass


def run_in(cg: Cgroup, cmd: list[str], env: dict) -> dict:
    cg.reset_peak()
    kills = cg.oom_kills()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=cg.join)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    stdout = proc.stdout.read().decode(errors="replace")
    stderr = proc.stderr.read().decode(errors="replace")
    code = os.waitstatus_to_exitcode(status)
    return {
        "seconds": seconds,
        "returncode": code,
        "killed": code == -signal.SIGKILL,
        "oom_kills": cg.oom_kills() - kills,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "cgroup_peak_mb": (cg.peak() or 0) / 2**20,
        "stdout_tail": stdout[-600:],
        "stderr_tail": stderr[-1500:] if code else "",
    }


NAIVE = """
import sys
from pathlib import Path
import numpy as np
from PIL import Image
paths = sorted(Path(sys.argv[1]).rglob("*.jpg"))
arrays = []
for i, p in enumerate(paths):
    arrays.append(np.asarray(Image.open(p).convert("RGB")))
    if i % 500 == 0:
        print("decoded", i, flush=True)
X = np.stack(arrays).reshape(len(paths), -1).astype(np.float32) / 255
print("stacked", X.shape, flush=True)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-gb", type=float, default=3.0)
    parser.add_argument("--limit-gb", type=float, default=2.0)
    args = parser.parse_args()
    limit = int(args.limit_gb * 2**30)
    cg = Cgroup(limit)
    cli = str(Path(sys.executable).with_name("transferlab"))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "images"
            folder.mkdir()
            start = time.perf_counter()
            n, size = make_images(folder, int(args.data_gb * 2**30))
            print(f"{n} images, {size / 2**30:.2f} GiB, written in {time.perf_counter() - start:.0f} s", flush=True)
            env = {**os.environ, "TRANSFERLAB_CACHE": str(Path(tmp) / "cache"), "TOKENIZERS_PARALLELISM": "false"}
            ours = run_in(
                cg,
                [
                    cli,
                    "run",
                    str(folder),
                    "--backbone",
                    "mobilenet_v2",
                    "--image-size",
                    "64",
                    "--rungs",
                    "majority,frozen",
                    "--seeds",
                    "1",
                    "--no-corruptions",
                    "--out",
                    str(Path(tmp) / "run"),
                    "--quiet",
                ],
                env,
            )
            print("transferlab", {k: v for k, v in ours.items() if k != "stdout_tail"}, flush=True)
            if ours["returncode"] == 0:
                results = json.loads((Path(tmp) / "run" / "results.json").read_text())
                frozen = next(r for r in results["rungs"] if r["strategy"] == "frozen")
                ours["test_accuracy"] = frozen["test"]["accuracy"]["mean"]
                ours["splits"] = results["task"]["splits"]
                ours["feature_file_mb"] = sum(f.stat().st_size for f in (Path(tmp) / "cache").rglob("*.npy")) / 2**20
            script = Path(tmp) / "naive.py"
            script.write_text(NAIVE)
            naive = run_in(cg, [sys.executable, str(script), str(folder)], env)
            decoded = [int(line.split()[1]) for line in naive["stdout_tail"].splitlines() if line.startswith("decoded")]
            naive["decoded_before_end"] = decoded[-1] if decoded else 0
            print("load everything", {k: v for k, v in naive.items() if k != "stdout_tail"}, flush=True)
    finally:
        cg.remove()
    payload = {
        "images": n,
        "data_bytes": size,
        "image_side": SIDE,
        "limit_bytes": limit,
        "cgroup": "v2" if cg.v2 else "v1",
        "transferlab": ours,
        "load_everything": naive,
    }
    save("memory_limit", payload)
    print(section({**payload, "date": "now"}))


def section(d: dict) -> str:
    """This benchmark's part of bench/RESULTS.md."""
    gib = 2**30
    ours, naive = d["transferlab"], d["load_everything"]

    def outcome(r):
        if r["returncode"] == 0:
            return "finished"
        return "killed by the out-of-memory killer" if r["killed"] or r["oom_kills"] else f"failed ({r['returncode']})"

    acc = f"; frozen test accuracy {ours['test_accuracy']:.3f}" if "test_accuracy" in ours else ""
    feats = f", {ours['feature_file_mb']:.0f} MB of features" if "feature_file_mb" in ours else ""
    return f"""## A data set larger than the memory the run may use

`sudo python bench/memory_limit.py` — {d["images"]:,} JPEG images of {d["image_side"]}×{d["image_side"]} px in 10 class
folders, **{d["data_bytes"] / gib:.2f} GiB** on disk, and a memory cgroup ({d["cgroup"]}) limited to
**{d["limit_bytes"] / gib:.2f} GiB** with no swap, so the data cannot be held in the memory the process may
use. In that cgroup, each in a fresh process: `transferlab run` (MobileNetV2 at 64 px, the
audit on, majority and frozen, one seed, a cold feature cache), and a script that decodes every
image into one array, as many training scripts do. Run {d["date"]}.

| program | outcome | wall time | peak resident memory | cgroup peak (page cache included) |
|---|---|---|---|---|
| transferlab run | {outcome(ours)} | {ours["seconds"]:.0f} s | {ours["peak_rss_mb"]:,.0f} MB | {ours["cgroup_peak_mb"]:,.0f} MB |
| decode everything into an array | {outcome(naive)} after {naive["decoded_before_end"]:,} images | {naive["seconds"]:.0f} s | {naive["peak_rss_mb"]:,.0f} MB | {naive["cgroup_peak_mb"]:,.0f} MB |

transferlab reads the images batch by batch and streams their features to a memory-mapped file{feats}{acc}.
The decoded images alone would take {d["images"] * d["image_side"] ** 2 * 3 / gib:.1f} GiB. What must fit in memory is
the features (N × D × 4 bytes: 1,280-d MobileNetV2 features are 5 KB an image), which the audit's
nearest-neighbour index and the frozen rung's logistic regression hold in memory.
"""


if __name__ == "__main__":
    main()
