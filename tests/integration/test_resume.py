"""Kill a real run with SIGKILL at several points, resume it, and get what an uninterrupted run gets.

Each run is a separate process on the tiny random BERT (so every rung, the feature cache, the
audit and the saved models are the real code paths). The kill points are found by watching the
run directory and the feature cache, so nothing in the package knows it is being tested. The
processes are forked from a server that has already imported what every run imports (torch,
transformers' BERT, scikit-learn, transferlab): about 6 s a process that the test does not measure.
"""

from __future__ import annotations

import functools
import json
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


# what every run imports, loaded once in the fork server (a process forked from it skips ~6 s of imports)
PRELOAD = [
    "torch",
    "sklearn.linear_model",
    "transformers.models.bert.modeling_bert",
    "transferlab",
    "transferlab.runner",
]


@pytest.fixture(scope="module")
def processes():
    """The fork server's context, started with one thread per process (as ``threads=1`` runs)."""
    import multiprocessing
    from multiprocessing import forkserver

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OMP_NUM_THREADS", "1")
        forkserver.ensure_running()
    return context


def _start(processes, code: str, *args: str, cache: Path):
    """``code`` run in a new process, with ``sys.argv[1:]`` = ``args``, its cache in ``cache`` and its
    standard error in ``cache``/stderr-<pid>.log."""
    cache.mkdir(parents=True, exist_ok=True)
    setup = (
        "import os, sys\n"
        f"os.environ['TRANSFERLAB_CACHE'] = {str(cache)!r}\n"
        f"sys.argv = {['-c', *map(str, args)]!r}\n"
        f"sys.stderr = open(os.path.join({str(cache)!r}, f'stderr-{{os.getpid()}}.log'), 'w', buffering=1)\n"
    )
    proc = processes.Process(target=exec, args=(setup + code, {"__name__": "__main__"}), daemon=True)
    proc.start()
    proc.log = cache / f"stderr-{proc.pid}.log"
    return proc


def _finish(proc) -> None:
    proc.join(timeout=600)
    assert proc.exitcode == 0, proc.log.read_text()[-3000:] if proc.log.exists() else f"exit code {proc.exitcode}"


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


def _kill_when(proc, ready, timeout: float = 300) -> bool:
    """SIGKILL the process as soon as ``ready()``; False if it finished first."""
    end = time.time() + timeout
    while time.time() < end:
        if not proc.is_alive():
            return False
        if ready():
            proc.kill()  # SIGKILL
            proc.join()
            return True
        time.sleep(0.01)
    proc.kill()
    raise AssertionError("the kill point never came")


@pytest.fixture(scope="module")
def reference(processes, tiny_bert, tmp_path_factory):
    root = tmp_path_factory.mktemp("reference")
    import pandas as pd
    from conftest import synthetic_reviews

    texts, labels = synthetic_reviews(40)
    data = root / "reviews.csv"
    pd.DataFrame({"review": texts, "stars": labels}).to_csv(data, index=False)
    started = time.time()
    _finish(_start(processes, RUN, data, tiny_bert, root / "run", cache=root / "cache"))
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


def test_a_run_killed_at_every_point_in_turn_resumes_to_the_same_results(processes, reference, tiny_bert, tmp_path):
    """Killed at the first point, resumed, the resume killed at the next point, and so on.

    Each resume starts from exactly the state the kill before it left, so every kill point's state
    is resumed from once (and a resumed run is itself resumed), for the price of about one run.
    """
    run_dir, cache = tmp_path / "run", tmp_path / "cache"
    proc = _start(processes, RUN, reference["data"], tiny_bert, run_dir, cache=cache)
    points = list(KILL_POINTS.items())
    for k, (point, ready) in enumerate(points):
        killed = _kill_when(proc, functools.partial(ready, run_dir, cache))
        assert killed, f"the run finished before the kill point '{point}'"
        assert not (run_dir / "results.json").exists(), point  # a killed run never looks finished
        if k + 1 < len(points):
            following, already = points[k + 1][0], points[k + 1][1](run_dir, cache)
            assert not already, f"the kill at '{point}' came after '{following}': that state is not resumed from"
        proc = _start(processes, RESUME, run_dir, cache=cache)
    _finish(proc)
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
