"""The data checks. Importing this package registers each of them in ``CHECKS``."""

from . import (  # noqa: F401
    class_imbalance,
    exact_duplicates,
    group_overlap,
    label_conflicts,
    label_shift,
    near_duplicates,
    time_overlap,
)
