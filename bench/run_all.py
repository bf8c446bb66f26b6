"""Run every benchmark, each in its own process, then regenerate bench/RESULTS.md from the results.

    python bench/run_all.py                       # everything, the demos last (about 40 minutes on 2 cores)
    python bench/run_all.py --only frozen rerun   # some of them
    python bench/run_all.py --skip ranking demos
    python bench/run_all.py --quick               # smaller sizes, for a busy machine
    python bench/run_all.py --render              # only rewrite RESULTS.md from bench/results/*.json

On a machine shared with other work, ``OMP_NUM_THREADS=1`` avoids the slowdown of two torch
threads fighting for cores that other processes hold (a training step was 5 times slower).

Each benchmark writes bench/results/<name>.json (machine, date, load average before and after,
medians, ratios measured in the same run); RESULTS.md is rendered from those files alone. A
section whose JSON is missing (or the ranking section, which bench/ranking.py's owner writes by
hand) is carried over from the current RESULTS.md unchanged.

The helpers below (``save``, ``alternate``, ``child_peak``) are shared by the benchmark scripts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
ORDER = [
    "extraction",
    "extraction_st",
    "audit",
    "image_pairs",
    "frozen",
    "logreg_choice",
    "finetune",
    "scratch_small",
    "rerun",
    "memory",
    "memory_limit",
    "ranking",
    "demos",
]
# --quick: sizes for a busy or slow machine (minutes instead of the better part of an hour)
QUICK = {
    "extraction": ["--repeats", "3", "--n-text", "160", "--n-image", "500"],
    "extraction_st": ["--n", "160", "--repeats", "3"],
    "audit": ["--sizes", "10000"],
    "image_pairs": ["--per-set", "60", "--animal", "2000"],
    "frozen": ["--repeats", "2"],
    "logreg_choice": [
        "--repeats",
        "1",
        "--split-resamples",
        "1",
        "--sets",
        "reviews-tfidf-400",
        "reviews-minilm",
        "animals-mobilenet",
        "digits",
    ],
    "finetune": ["--n-train", "96", "--epochs", "2", "--repeats", "1"],
    "scratch_small": ["--seeds", "1"],
    "rerun": [
        "--n-train",
        "100",
        "--n-val",
        "60",
        "--n-test",
        "150",
        "--image-n-train",
        "150",
        "--image-n-val",
        "60",
        "--image-n-test",
        "150",
    ],
    "memory": ["--sizes", "500", "2000", "8000"],
    "memory_limit": ["--data-gb", "2", "--limit-gb", "1.5"],
    "ranking": ["--n-train", "200", "--epochs", "1"],
    "demos": ["--modality", "text"],
}
_LOAD_AT_START = os.getloadavg()


# --- helpers for the benchmark scripts ------------------------------------------------------
def machine() -> dict:
    import torch

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "ram_gib": round(mem / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def save(name: str, payload: dict) -> Path:
    """bench/results/<name>.json with the machine, the date and the load average over the run."""
    out = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "load_average": {"start": [round(x, 2) for x in _LOAD_AT_START], "end": [round(x, 2) for x in os.getloadavg()]},
        **payload,
    }
    path = RESULTS / f"{name}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    print(f"written {path}", file=sys.stderr)
    return path


def alternate(contenders: dict[str, Callable[[], Any]], repeats: int) -> tuple[dict[str, list[float]], list[dict]]:
    """Run the contenders A B C, C B A, ... ``repeats`` times: the wall time of each call, and
    what each returned per repeat. Machine drift hits every contender alike."""
    names = list(contenders)
    times: dict[str, list[float]] = {n: [] for n in names}
    outputs: list[dict] = []
    for r in range(repeats):
        got = {}
        for n in names if r % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            got[n] = contenders[n]()
            times[n].append(time.perf_counter() - start)
        outputs.append(got)
    return times, outputs


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def child_peak(cmd: list[str], env: dict | None = None, cwd: str | None = None) -> dict:
    """Run ``cmd``; its wall time, exit code and peak resident memory (this child's own ru_maxrss)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # wait4 gives this child's rusage alone (RUSAGE_CHILDREN would be the max over all children so far)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "seconds": seconds,
        "max_rss_mb": usage.ru_maxrss / 1024,
        "returncode": proc.returncode,
        "stderr_tail": stderr[-2000:] if proc.returncode else "",
    }


# --- rendering RESULTS.md ---------------------------------------------------------------------
def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _old_sections(text: str) -> dict[str, str]:
    """'## title' -> the section's text in the current RESULTS.md."""
    parts = re.split(r"(?m)^(?=## )", text)
    return {p.splitlines()[0][3:].strip(): p.rstrip() + "\n" for p in parts if p.startswith("## ")}


def header(data: dict[str, dict | None]) -> str:
    runs = [d for d in data.values() if d and "machine" in d]
    m = max(runs, key=lambda d: d["date"])["machine"] if runs else {}
    dates = sorted(d["date"][:10] for d in runs)
    runs_of = [(n, d) for n, d in data.items() if d and n != "ranking"]
    table = "\n".join(
        f"| {n} | {d['date']} | {d.get('machine', {}).get('torch_threads', '?')} | "
        + (
            f"{d['load_average']['start'][0]:.1f} → {d['load_average']['end'][0]:.1f} |"
            if "load_average" in d
            else "not recorded |"
        )
        for n, d in runs_of
    )
    return (
        f"# Benchmark results\n\n`python bench/run_all.py` (or `make bench`) runs every benchmark below and rewrites "
        f"this file from `bench/results/*.json`; `--quick` runs smaller sizes.\n\nMachine: {m.get('cpus', '?')} CPU cores "
        f"({platform.machine()}), {m.get('ram_gib', '?')} GiB, no GPU, Python {m.get('python', '?')}, torch "
        f"{m.get('torch', '?').split('+')[0]}. Dates: {dates[0] if dates else '?'} to {dates[-1] if dates else '?'}.\n\n"
        + _load_note(runs_of)
        + "Comparisons run their contenders in the same process, alternating (A B, B A, ...) when repeated, and "
        "report medians. When each benchmark ran, with how many torch threads and the one-minute load average "
        "at its start and end (2 is both cores busy):\n\n"
        f"| benchmark | run | torch threads | load average |\n|---|---|---|---|\n{table}\n"
    )


def _load_note(runs: list) -> str:
    loads = [d["load_average"]["start"][0] for _, d in runs if "load_average" in d]
    if loads and max(loads) <= 3.5:
        return (
            "The load average stayed near 2, the benchmarks' own two threads: no other heavy work shared the "
            "machine (short unrelated processes may still have run), so times are comparable across sections; "
            "ratios measured in one run remain the figures to quote. "
        )
    return (
        "The machine was shared: other work was running during some of these runs, so absolute times are noisy "
        "and only ratios measured in one run mean much. Under heavy load, benchmarks ran with "
        "`OMP_NUM_THREADS=1`: two torch threads fighting for cores that other processes hold made a training step "
        "about 5 times slower. "
    )


def audit_section(d: dict) -> str:
    rows = "\n".join(
        f"| {r['search']} | {r['items']:,} | {r['transferlab']['seconds']:.2f} s | {r['transferlab']['recall']:.3f} | "
        f"{r['brute_force']['seconds']:.2f} s{' (extrapolated)' if r['brute_force']['extrapolated'] else ''} | "
        f"{r['brute_force']['recall']:.3f} | {r['speedup']:.1f}× |"
        for r in d["results"]
    )
    return f"""## Near-duplicate search vs brute force

`python bench/audit.py` — the audit's pair search on synthetic data with planted
near-duplicates: random 384-d unit vectors (the embedding search: exact faiss index up to
20,000 items, an inverted-file index above) and random 64-bit perceptual hashes (banded
lookup). Brute force is all pairs in chunks; at 100,000 items it was timed on a subsample of
queries and extrapolated linearly. Recall is of the planted pairs. Run {d["date"]}.

| search | items | transferlab | recall | brute force | recall | speed-up |
|---|---|---|---|---|---|---|
{rows}

At 10,000 items the exact index is itself a brute-force search, hence the small ratio. The
real image check looks up 11 hashes per image (the image, its mirror and nine crops), so it
costs about 11 times the hash row above, as would brute force. Not measured yet: the text
MinHash path at 100,000 items, and the whole audit (all checks) at that size.
"""


TITLES = {
    "extraction": "Feature extraction vs a bare `torch.inference_mode()` loop",
    "extraction_st": "Feature extraction vs sentence-transformers' `encode`",
    "audit": "Near-duplicate search vs brute force",
    "image_pairs": "Image near-duplicates: precision on real look-alikes, recall on planted edits",
    "frozen": "The frozen rung vs scikit-learn's logistic regression on the same features",
    "logreg_choice": "Choosing the logistic regression's C: cost and accuracy",
    "finetune": "Fine-tuning: transferlab's loop vs a hand-written PyTorch loop and the Hugging Face `Trainer`",
    "scratch_small": "A small model from scratch: the scratch_small rung vs a hand-written one",
    "rerun": "An unchanged re-run vs the cold run, and adding a backbone",
    "memory": "Peak memory vs dataset size",
    "memory_limit": "A data set larger than the memory the run may use",
    "ranking": "Does the ranking predict the ladder?",
    "demos": "The demos",
}


def render() -> str:
    import importlib

    sys.path.insert(0, str(BENCH))
    old_path = BENCH / "RESULTS.md"
    old = _old_sections(old_path.read_text()) if old_path.exists() else {}
    data = {n: _load(n) for n in ORDER}
    out = [header(data)]
    for name in ORDER:
        body = None
        if data[name] is not None and name != "ranking":  # ranking's section is written by hand
            fn = audit_section if name == "audit" else getattr(importlib.import_module(name), "section", None)
            body = fn(data[name]) if fn else None
        body = body or old.get(TITLES[name])
        if body:
            out.append(body)
    # sections written by hand for benchmarks outside ORDER (e.g. time_limit) stay, after the
    # section they followed
    rendered = {body.splitlines()[0][3:].strip() for body in out[1:]}
    previous = None
    for title, body in old.items():
        if title not in rendered and title not in TITLES.values():
            at = next((i + 1 for i, b in enumerate(out) if previous and b.startswith(f"## {previous}")), len(out))
            out.insert(at, body)
        previous = title
    return "\n".join(s.rstrip() + "\n" for s in out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=ORDER, help="Run only these benchmarks.")
    parser.add_argument("--skip", nargs="+", choices=ORDER, default=[], help="Do not run these.")
    parser.add_argument("--quick", action="store_true", help="Smaller sizes (see QUICK), for a busy machine.")
    parser.add_argument("--render", action="store_true", help="Only regenerate RESULTS.md from the JSON results.")
    args = parser.parse_args()
    if not args.render:
        failed = []
        for name in [n for n in (args.only or ORDER) if n not in args.skip]:
            print(f"== {name} (load average {os.getloadavg()[0]:.2f})", file=sys.stderr, flush=True)
            start = time.perf_counter()
            extra = QUICK.get(name, []) if args.quick else []
            rc = subprocess.call([sys.executable, str(BENCH / f"{name}.py"), *extra], cwd=BENCH.parent)
            print(f"== {name}: exit {rc}, {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
            if rc:
                failed.append(name)
        if failed:
            print(f"failed: {', '.join(failed)} (their sections keep the previous results)", file=sys.stderr)
    (BENCH / "RESULTS.md").write_text(render())
    print(f"written {BENCH / 'RESULTS.md'}", file=sys.stderr)


if __name__ == "__main__":
    main()
