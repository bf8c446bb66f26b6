"""The Ray executor on a local Ray: every rung, candidate and seed as a task, results equal to local."""

from __future__ import annotations

import json

import pytest

import transferlab
from transferlab.config import RunSpec
from transferlab.errors import ConfigError

ray = pytest.importorskip("ray", reason="the distributed extra is part of `make test`")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def _essentials(r) -> dict:
    return {
        x["name"]: {
            "seeds": x["seeds"],
            "predictions": x["predictions"],
            "test": x["test"]["accuracy"],
            "macro_f1": x["test"]["macro_f1"],
            "ood": {k: v["accuracy"] for k, v in x.get("ood", {}).items()},
            "chosen": json.dumps(x["chosen"], sort_keys=True),
            "artifact": "artifact" in x,
            "curves": json.dumps(x["curves"], sort_keys=True),
        }
        for x in r["rungs"]
    }


def test_ray_executor_gives_the_local_results(local_ray, tiny_bert, reviews_csv, tmp_path):
    settings = dict(
        text_column="review",
        label_column="stars",
        backbones=[f"hf:{tiny_bert}"],
        rungs=["majority", "classical", "frozen", "scratch"],
        seeds=2,
        train_seeds=2,
        epochs=1,
        max_length=16,
        threads=1,
        ood_max_items=20,
        quiet=True,
    )
    local = transferlab.run(reviews_csv, out=str(tmp_path / "local"), **settings)
    distributed = transferlab.run(reviews_csv, out=str(tmp_path / "ray"), executor="ray", **settings)
    assert _essentials(distributed) == _essentials(local)
    assert distributed["learning_curve"] == local["learning_curve"]
    assert [v["code"] for v in distributed["verdicts"]] == [v["code"] for v in local["verdicts"]]
    assert distributed["recommendation"]["rung"] == local["recommendation"]["rung"]
    scratch = [x for x in distributed["rungs"] if x["strategy"] == "scratch"][0]
    assert scratch["seeds"] == [0, 1]
    assert (tmp_path / "ray" / scratch["artifact"]["path"]).is_dir()  # the task saved the first seed's model


def test_unknown_executor_and_unreachable_cluster_are_user_errors(reviews_csv, tmp_path):
    with pytest.raises(ConfigError, match="executor"):
        transferlab.run(reviews_csv, text_column="review", label_column="stars", executor="spark", quiet=True)
    if ray.is_initialized():
        ray.shutdown()
    with pytest.raises(ConfigError, match="Ray cluster"):
        transferlab.run(
            reviews_csv,
            text_column="review",
            label_column="stars",
            rungs=["majority"],
            executor="ray",
            ray_address="127.0.0.1:1",
            out=str(tmp_path / "r"),
            quiet=True,
        )


def test_gpu_requests_are_checked_against_the_cluster_and_run(tiny_bert, reviews_csv, tmp_path):
    """--ray-gpus: refused at once when no node has that many GPUs; met by a Ray that declares one
    (this machine has no GPU, so the task trains on CPU in the GPU slot Ray reserves for it)."""
    settings = dict(
        text_column="review",
        label_column="stars",
        backbones=[f"hf:{tiny_bert}"],
        rungs=["majority", "scratch"],
        seeds=1,
        epochs=1,
        max_length=16,
        threads=1,
        corruptions=False,
        executor="ray",
        quiet=True,
    )
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        with pytest.raises(ConfigError, match="no node of the Ray cluster has 1 GPU"):
            transferlab.run(reviews_csv, out=str(tmp_path / "none"), ray_gpus=1, **settings)
    finally:
        ray.shutdown()
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        with_gpu = transferlab.run(reviews_csv, out=str(tmp_path / "gpu"), ray_gpus=0.5, **settings)
    finally:
        ray.shutdown()
    local = transferlab.run(reviews_csv, out=str(tmp_path / "local"), **{**settings, "executor": "local"})
    assert _essentials(with_gpu) == _essentials(local)


def test_gpu_check_reads_each_node():
    from transferlab.executors import _check_gpus

    nodes = [{"Alive": True, "Resources": {"CPU": 8, "GPU": 2}}, {"Alive": False, "Resources": {"GPU": 8}}]
    _check_gpus(2, nodes)
    _check_gpus(0.5, nodes)
    with pytest.raises(ConfigError, match="the most on one node: 2"):
        _check_gpus(4, nodes)
    with pytest.raises(ConfigError, match="must be a number of GPUs"):
        RunSpec(ray_gpus=-1)
