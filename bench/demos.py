"""Wall time and peak memory of each demo, cold feature cache.

``transferlab demo`` and ``transferlab demo --modality image``, each in a subprocess with a fresh
``TRANSFERLAB_CACHE`` and run directory: wall time and the child's own peak resident memory
(``os.wait4``'s ``ru_maxrss``). These take about 5-6 minutes each on an idle 2-core machine.

    python bench/demos.py [--modality text image]
Writes bench/results/demos.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from run_all import child_peak, save


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modality", nargs="+", default=["text", "image"])
    args = parser.parse_args()
    cli = Path(sys.executable).with_name("transferlab")
    rows = []
    for modality in args.modality:
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "TRANSFERLAB_CACHE": str(Path(tmp) / "cache")}
            load = os.getloadavg()[0]
            peak = child_peak(
                [str(cli), "demo", "--modality", modality, "--out", str(Path(tmp) / "run"), "--quiet"], env=env
            )
            if peak["returncode"]:
                raise SystemExit(f"{modality} demo failed:\n{peak['stderr_tail']}")
            results = json.loads((Path(tmp) / "run" / "results.json").read_text())
        rows.append(
            {
                "modality": modality,
                "seconds": peak["seconds"],
                "max_rss_mb": peak["max_rss_mb"],
                "load_before": load,
                "load_after": os.getloadavg()[0],
                **summary(results),
            }
        )
        print(rows[-1], flush=True)
    save("demos", {"results": rows})


def summary(results: dict) -> dict:
    """What the README's demo tables quote: per rung, test accuracy (mean, interval, sd over seeds),
    macro-F1, calibration error and fit time; the verdicts, the recommendation, the audit's counts."""

    def metric(r, name):
        m = r["test"].get(name) or {}
        return {k: m.get(k) for k in ("mean", "ci", "sd", "seeds")}

    audit = results.get("audit") or {}
    return {
        "rungs": {
            r["name"]: {
                "test_accuracy": r["test"]["accuracy"]["mean"],
                "accuracy": metric(r, "accuracy"),
                "macro_f1": metric(r, "macro_f1"),
                "ece": r["test"].get("ece"),
                "val_accuracy": r["val"]["accuracy"]["mean"],
                "seeds": r["seeds"],
                "fit_seconds": r["cost"]["fit_seconds"],
            }
            for r in results["rungs"]
        },
        "verdicts": [
            {k: v.get(k) for k in ("code", "severity", "rungs", "message")} for v in results.get("verdicts", [])
        ],
        "recommendation": results.get("recommendation"),
        "audit_findings": [
            {k: f.get(k) for k in ("check", "severity", "count", "message")} for f in audit.get("findings", [])
        ]
        if isinstance(audit, dict)
        else [],
        "splits": results.get("task", {}).get("splits"),
    }


def section(d: dict) -> str:
    """This benchmark's part of bench/RESULTS.md."""

    def rungs(r):
        names = list(r.get("rungs", {}))
        return f"{len(names)} rung runs ({', '.join(names)})" if names else "the ladder"

    what = {
        "text": lambda r: (
            f"audit with MiniLM embeddings, ranking, {rungs(r)}, corruptions of 200 test reviews, learning curves"
        ),
        "image": lambda r: (
            f"the same with MobileNetV2 and EfficientNet-Lite0 at 96 px: {rungs(r)}; corruptions of 300 test images"
        ),
    }
    rows = "\n".join(
        f"| {r['modality']} (`make demo{'' if r['modality'] == 'text' else '-image'}`) | "
        f"{int(r['seconds'] // 60)} min {r['seconds'] % 60:.0f} s | {r['max_rss_mb'] / 1024:.1f} GB | "
        f"{r['load_before']:.1f} → {r['load_after']:.1f} | {what[r['modality']](r)} |"
        for r in d["results"]
    )
    return f"""## The demos

`python bench/demos.py` — `transferlab demo` and `transferlab demo --modality image`, each in a
subprocess with a cold feature cache (a fresh `TRANSFERLAB_CACHE`): wall time and the process's
peak resident memory. Wall time depends on what else runs on the machine: the one-minute load
average before and after each demo is given (about 2 is the demo's own two threads on these 2
cores; well above that, other work was competing and the time is longer than on an idle
machine). Run {d["date"]}.

| demo | wall time | peak memory (max RSS) | load average | what runs |
|---|---|---|---|---|
{rows}
"""


if __name__ == "__main__":
    main()
