"""Data-parallel training across processes (the path multi-GPU training takes), on CPUs over gloo.

``torchrun --standalone --nproc_per_node 2`` starts two processes; ``accelerate launch
--multi_gpu`` starts them the same way on GPUs. Checked here: the processes end with the same
weights, those weights equal a single process's up to rounding, gradual unfreezing and an empty
shard are handled, and a whole run under the launch writes one run directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import transferlab
from transferlab import devices
from transferlab.errors import ConfigError

TORCHRUN = Path(sys.executable).with_name("torchrun")

FIT_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np, torch
    from torch import nn
    from transferlab.devices import processes
    from transferlab.training.loop import LoopConfig, ParamGroup, fit, set_trainable

    out = sys.argv[1]

    def train(norm):
        torch.manual_seed(0)
        rng = np.random.default_rng(0)
        X = torch.from_numpy(rng.normal(size=(49, 6)).astype(np.float32))  # 49 = 3 x 16 + 1: the last batch has one row
        y = (X[:, 0] + X[:, 1] > 0).long().numpy()
        Xv = torch.from_numpy(rng.normal(size=(20, 6)).astype(np.float32)); yv = (Xv[:, 0] + Xv[:, 1] > 0).long().numpy()
        norm_layer = nn.BatchNorm1d(16) if norm == "batch" else nn.LayerNorm(16)

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.body = nn.Sequential(nn.Linear(6, 16), norm_layer, nn.ReLU())
                self.head = nn.Linear(16, 2)
            def forward(self, x):
                return self.head(self.body(x))

        model = Net()
        groups = [ParamGroup("body", list(model.body.parameters()), 1e-2), ParamGroup("head", list(model.head.parameters()), 5e-2)]
        def on_epoch(epoch):  # head alone first, then everything: the trainable set changes mid-run
            set_trainable(groups, {1} if epoch == 1 else {0, 1})
            return "head" if epoch == 1 else "all"
        data = {"train": X, "val": Xv}
        def batch(idx, train):
            return {"x": (X if train else Xv)[list(idx)]}
        result = fit(model, batch, (list(range(49)), y), (list(range(20)), yv), groups,
                     LoopConfig(epochs=4, batch_size=16, patience=10, seed=3), on_epoch=on_epoch)
        p = processes()
        state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
        np.savez(f"{out}/weights-{norm}-{p.index}-of-{p.count}.npz", **state)
        with open(f"{out}/curves-{norm}-{p.index}-of-{p.count}.json", "w") as f:
            json.dump(result.curves, f)

    for norm in sys.argv[2:]:  # one launch trains each kind of normalisation in turn
        train(norm)
""")


def _launch(args: list, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in devices.LAUNCH_VARIABLES}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


NORMS = ["layer", "batch"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """The fit of each normalisation, in two processes and in one (one launch each, for both)."""
    out = tmp_path_factory.mktemp("trained")
    script = out / "fit_script.py"
    script.write_text(FIT_SCRIPT)
    two = _launch([str(TORCHRUN), "--standalone", "--nproc_per_node", "2", str(script), str(out), *NORMS], out)
    assert two.returncode == 0, two.stderr[-3000:]
    one = _launch([sys.executable, str(script), str(out), *NORMS], out)
    assert one.returncode == 0, one.stderr[-3000:]
    return out


@pytest.mark.parametrize("norm", NORMS)
def test_two_processes_train_the_same_weights_as_one(trained, norm):
    w = {name: dict(np.load(trained / f"weights-{norm}-{name}.npz")) for name in ("0-of-2", "1-of-2", "0-of-1")}
    c = {name: json.loads((trained / f"curves-{norm}-{name}.json").read_text()) for name in w}
    for key in w["0-of-2"]:  # every process holds the same weights and buffers (BatchNorm statistics averaged)
        assert np.array_equal(w["0-of-2"][key], w["1-of-2"][key]), key
    assert c["0-of-2"] == c["1-of-2"]
    assert c["0-of-2"]["phase"] == ["head", "all", "all", "all"]
    if norm == "layer":  # no batch statistics: two processes compute one process's steps, up to rounding
        for key in w["0-of-1"]:
            np.testing.assert_allclose(w["0-of-2"][key], w["0-of-1"][key], atol=1e-5, err_msg=key)
        np.testing.assert_allclose(c["0-of-2"]["train_loss"], c["0-of-1"]["train_loss"], atol=1e-5)
        assert c["0-of-2"]["val_metric"] == c["0-of-1"]["val_metric"]
        assert not np.allclose(w["0-of-1"]["body.0.weight"], _initial_body_weight())  # unfrozen, it trained


def _initial_body_weight() -> np.ndarray:
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Linear(6, 16).weight.detach().numpy()


def test_a_run_under_a_two_process_launch_writes_one_run_directory(tiny_bert, reviews_csv, tmp_path):
    out = tmp_path / "run"
    before = set(Path("/tmp").glob("transferlab-process*"))
    launched = _launch(
        [
            str(TORCHRUN),
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "transferlab",
            "run",
            str(reviews_csv),
            "--text-column",
            "review",
            "--label-column",
            "stars",
            "--backbone",
            f"hf:{tiny_bert}",
            "--rungs",
            "majority,frozen,full",
            "--epochs",
            "2",
            "--max-length",
            "16",
            "--seeds",
            "1",
            "--no-corruptions",
            "--out",
            str(out),
            "--quiet",
        ],
        tmp_path,
    )
    assert launched.returncode == 0, launched.stderr[-3000:]
    assert launched.stdout.count("Report:") == 1  # the first process reports; the other is silent
    results = json.loads((out / "results.json").read_text())
    assert results["environment"]["processes"] == 2
    full = next(r for r in results["rungs"] if r["strategy"] == "full")
    assert full["curves"]["epoch"] == [1, 2] and (out / full["artifact"]["path"]).is_dir()
    assert set(Path("/tmp").glob("transferlab-process*")) == before  # the other process's folder is gone


def test_resume_and_ray_are_refused_under_a_launch(monkeypatch, reviews_csv, tmp_path):
    import torch

    monkeypatch.setattr(devices, "processes", lambda: devices.Processes(1, 2, torch.device("cpu")))
    with pytest.raises(ConfigError, match="executor ray and a multi-process launch"):
        transferlab.run(
            reviews_csv,
            text_column="review",
            label_column="stars",
            rungs=["majority"],
            executor="ray",
            out=str(tmp_path / "r"),
            quiet=True,
        )
    with pytest.raises(ConfigError, match="--resume runs in a single process"):
        transferlab.resume(_unfinished_run(reviews_csv, tmp_path))


def _unfinished_run(reviews_csv: Path, tmp_path: Path) -> Path:
    """The run directory of a run that stopped after writing its settings."""
    run = tmp_path / "stopped"
    (run / "stages").mkdir(parents=True)
    (run / "run.json").write_text(
        json.dumps(
            {
                "schema": "transferlab.state/1",
                "data": str(reviews_csv),
                "mode": "run",
                "spec": {"text_column": "review", "label_column": "stars", "rungs": ["majority"]},
            }
        )
    )
    return run


def test_a_second_process_writes_nothing_where_the_first_writes(monkeypatch, reviews_csv, tmp_path):
    import torch

    monkeypatch.setattr(devices, "processes", lambda: devices.Processes(1, 2, torch.device("cpu")))
    results = transferlab.run(
        reviews_csv, text_column="review", label_column="stars", rungs=["majority"], out=str(tmp_path / "r"), quiet=True
    )
    assert results["rungs"][0]["name"] == "majority"
    assert not (tmp_path / "r").exists()
