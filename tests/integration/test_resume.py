"""Kill a real run with SIGKILL at several points, resume it, and get what an uninterrupted run gets.

Each run is a separate process on the tiny random BERT (so every rung, the feature cache, the
audit and the saved models are the real code paths). The kill points are found by watching the
run directory and the feature cache, so nothing in the package knows it is being tested.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

RUN = """
import sys, transferlab
transferlab.run(sys.argv[1], text_column="review", label_column="stars", backbones=["hf:" + sys.argv[2]],
                rungs=["majority", "classical", "frozen", "finetune"], out=sys.argv[3], epochs=2, head_epochs=3,
                # small batches: extraction lasts long enough to be killed in the middle of it
                max_length=16, seeds=2, ood_max_items=20, threads=1, extract_batch_size=2, quiet=True)
"""
RESUME = """
import sys, transferlab
transferlab.resume(sys.argv[1], quiet=True)
"""


def _start(code: str, *args: str, cache: Path) -> subprocess.Popen:
    env = {**os.environ, "TRANSFERLAB_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen) -> None:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]


def _essentials(run_dir: Path) -> dict:
    """What must not change between an interrupted-and-resumed run and an uninterrupted one."""
    r = json.loads((run_dir / "results.json").read_text())
    rungs = {
        x["name"]: {
            "predictions": x["predictions"],
            "seeds": x["seeds"],
            "test": {m: x["test"][m] for m in ("accuracy", "macro_f1", "per_class", "confusion_matrix")},
            "val": x["val"]["accuracy"],
            "ood": {k: v["accuracy"] for k, v in x.get("ood", {}).items()},
            "chosen": x["chosen"],
            "artifact": bool(x.get("artifact")),
        }
        for x in r["rungs"]
    }
    return {
        "task": r["task"],
        "findings": [(f["check"], f["count"]) for f in r["audit"]["findings"]],
        "ranking": [(c["backbone"], c["scores"]) for c in r["ranking"]],
        "rungs": rungs,
        "verdicts": [(v["code"], v["rungs"]) for v in r["verdicts"]],
        "recommendation": r["recommendation"]["rung"],
        "learning_curve": json.dumps(r["learning_curve"], sort_keys=True),
    }


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 300) -> bool:
    """SIGKILL the process as soon as ``ready()``; False if it finished first."""
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            return False
        if ready():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.01)
    proc.kill()
    raise AssertionError("the kill point never came")


@pytest.fixture(scope="module")
def reference(tiny_bert, tmp_path_factory):
    root = tmp_path_factory.mktemp("reference")
    import pandas as pd
    from conftest import synthetic_reviews

    texts, labels = synthetic_reviews(40)
    data = root / "reviews.csv"
    pd.DataFrame({"review": texts, "stars": labels}).to_csv(data, index=False)
    started = time.time()
    _finish(_start(RUN, data, tiny_bert, root / "run", cache=root / "cache"))
    return {"data": data, "essentials": _essentials(root / "run"), "seconds": time.time() - started}


def _has(path: Path, pattern: str = "*") -> bool:
    return path.exists() and any(path.glob(pattern))


KILL_POINTS = {
    # right after the run directory is created: during data loading, embedding for the audit
    "start": lambda run, cache: (run / "run.json").exists(),
    # while the feature cache is being written (a half-written .tmp.npy)
    "extracting": lambda run, cache: _has(cache / "features", "*.tmp.npy"),
    "after audit": lambda run, cache: (run / "stages" / "audit.json").exists(),
    "after ranking": lambda run, cache: (run / "stages" / "ranking.json").exists(),
    "after a rung": lambda run, cache: (run / "stages" / "rungs" / "classical.json").exists(),
    # during the finetune rung: the frozen rung is done, finetune is training
    "training": lambda run, cache: _has(run / "stages" / "rungs", "frozen*.json"),
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_killed_run_resumes_to_the_same_results(point, reference, tiny_bert, tmp_path):
    run_dir, cache = tmp_path / "run", tmp_path / "cache"
    proc = _start(RUN, reference["data"], tiny_bert, run_dir, cache=cache)
    killed = _kill_when(proc, lambda: KILL_POINTS[point](run_dir, cache))
    assert killed, f"the run finished before the kill point '{point}'"
    assert not (run_dir / "results.json").exists()  # a killed run never looks finished

    _finish(_start(RESUME, run_dir, cache=cache))
    assert _essentials(run_dir) == reference["essentials"]
    assert not list(run_dir.rglob("*.tmp")) and not list(run_dir.glob("models/.*.partial"))
    assert not list((cache / "features").glob("*.tmp.npy"))


def test_resume_refuses_a_finished_run_and_a_foreign_folder(reference, tmp_path):
    import transferlab
    from transferlab.errors import ConfigError

    with pytest.raises(ConfigError, match="not a transferlab run directory"):
        transferlab.resume(tmp_path)
    done = tmp_path / "done"
    done.mkdir()
    (done / "results.json").write_text("{}")
    with pytest.raises(ConfigError, match="finished run"):
        transferlab.resume(done)


def test_a_new_run_will_not_overwrite_an_unfinished_one(reference, tiny_bert, tmp_path):
    import transferlab
    from transferlab.errors import ConfigError

    run_dir = tmp_path / "run"
    (run_dir / "stages").mkdir(parents=True)
    with pytest.raises(ConfigError, match="--resume"):
        transferlab.run(
            str(reference["data"]),
            text_column="review",
            label_column="stars",
            rungs=["majority"],
            out=str(run_dir),
            quiet=True,
        )
