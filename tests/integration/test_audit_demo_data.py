"""The audit finds the real duplicates the demo data sets contain."""

import pytest

import transferlab
from transferlab.demo import demo_data

pytestmark = pytest.mark.integration


def _finding(results, check):
    return [f for f in results["audit"]["findings"] if f["check"] == check][0]


def test_fine_food_reviews_have_cross_split_duplicates(tmp_path):
    r = transferlab.audit(demo_data("text"), out=str(tmp_path / "a"), quiet=True)
    exact = _finding(r, "exact_duplicates")
    assert exact["severity"] == "error" and exact["count"] > 0  # the same review in train and test
    pair = exact["examples"][0]
    assert {pair["a"]["split"], pair["b"]["split"]} != {pair["a"]["split"]}


def test_animal_mnist_has_exact_and_near_duplicates(tmp_path):
    r = transferlab.audit(demo_data("image"), out=str(tmp_path / "a"), quiet=True)
    assert _finding(r, "exact_duplicates")["count"] > 0
    near = _finding(r, "near_duplicates")
    assert near["severity"] == "error" and near["count"] > 0
    assert near["examples"][0]["a"]["thumbnail"].startswith("data:image/png;base64,")
