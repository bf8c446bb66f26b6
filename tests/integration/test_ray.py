"""The Ray executor on a local Ray: every rung, candidate and seed as a task, results equal to local."""

from __future__ import annotations

import json

import pytest

import transferlab
from transferlab.errors import ConfigError

ray = pytest.importorskip("ray", reason="the distributed extra is part of `make test`")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def _essentials(r) -> dict:
    return {x["name"]: {"seeds": x["seeds"], "predictions": x["predictions"], "test": x["test"]["accuracy"],
                        "macro_f1": x["test"]["macro_f1"], "ood": {k: v["accuracy"] for k, v in x.get("ood", {}).items()},
                        "chosen": json.dumps(x["chosen"], sort_keys=True), "artifact": "artifact" in x,
                        "curves": json.dumps(x["curves"], sort_keys=True)}
            for x in r["rungs"]}


def test_ray_executor_gives_the_local_results(local_ray, tiny_bert, reviews_csv, tmp_path):
    settings = dict(text_column="review", label_column="stars", backbones=[f"hf:{tiny_bert}"],
                    rungs=["majority", "classical", "frozen", "scratch"], seeds=2, train_seeds=2, epochs=1,
                    max_length=16, threads=1, ood_max_items=20, quiet=True)
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
        transferlab.run(reviews_csv, text_column="review", label_column="stars", rungs=["majority"],
                        executor="ray", ray_address="127.0.0.1:1", out=str(tmp_path / "r"), quiet=True)
