"""How unequal the classes are in training, and which classes are too small to evaluate."""

from __future__ import annotations

import numpy as np

from ..base import AuditInputs, Check, Finding, plural, register
from ..stats import label_counts


@register
class ClassImbalance(Check):
    name = "class_imbalance"
    description = "Classes much smaller than others in training, or too small in test to be scored reliably."
    max_ratio = 3.0  # largest to smallest training class, above which imbalance is worth a warning
    min_test = 5  # test examples a class needs for its own score to mean something

    def run(self, inputs: AuditInputs) -> list[Finding]:
        return [self._imbalance(inputs), *self._small_test_classes(inputs)]

    def _imbalance(self, inputs: AuditInputs) -> Finding:
        task = inputs.task
        counts = label_counts(task.part("train")[1], len(task.classes))
        largest, smallest = int(counts.argmax()), int(counts.argmin())
        ratio = counts[largest] / max(counts[smallest], 1)
        minority = np.flatnonzero(counts * self.max_ratio < counts[largest])
        examples = [{"label": task.classes[i], "train": int(counts[i])} for i in np.argsort(counts, kind="stable")]
        if ratio <= self.max_ratio:
            return self.finding(
                "info", 0, f"Training classes are reasonably balanced (largest to smallest {ratio:.1f}:1).", examples
            )
        names = ", ".join(f"'{task.classes[i]}' ({counts[i]})" for i in minority)
        return self.finding(
            "warning",
            len(minority),
            f"Training classes are imbalanced: '{task.classes[largest]}' has {counts[largest]} examples and "
            f"'{task.classes[smallest]}' {counts[smallest]} ({ratio:.1f}:1). Minority "
            f"{'class' if len(minority) == 1 else 'classes'}: {names}. A model can score well on accuracy by "
            "favouring the large classes; judge it by balanced accuracy or macro-F1, and consider collecting "
            "more minority examples.",
            examples,
        )

    def _small_test_classes(self, inputs: AuditInputs) -> list[Finding]:
        task = inputs.task
        counts = label_counts(task.part("test")[1], len(task.classes))
        small = np.flatnonzero(counts < self.min_test)
        if not len(small):
            return []
        names = ", ".join(f"'{task.classes[i]}' ({counts[i]})" for i in small)
        return [
            self.finding(
                "warning",
                len(small),
                f"{plural(len(small), 'class', 'classes')} {'has' if len(small) == 1 else 'have'} fewer than "
                f"{self.min_test} test examples, too few to evaluate: {names}. A single example changes such a "
                "class's score by 20 points or more. Add test examples for them, or read their scores as rough.",
                [{"label": task.classes[i], "test": int(counts[i])} for i in small],
            )
        ]
