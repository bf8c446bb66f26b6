"""Data sources, splits and the split manifest."""

from .sources import Dataset, from_arrays, from_image_folder, from_table, load_data
from .splits import Task, content_hash, make_task, repartition, subsample, write_manifest

__all__ = [
    "Dataset",
    "Task",
    "load_data",
    "from_table",
    "from_image_folder",
    "from_arrays",
    "make_task",
    "repartition",
    "subsample",
    "write_manifest",
    "content_hash",
]
