"""Pure helpers that turn labelled records into training inputs."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence

from prodcat.trainer.records import LabeledTitle


def split(
    records: Sequence[LabeledTitle], *, validation_fraction: float = 0.15, seed: int = 0
) -> tuple[list[LabeledTitle], list[LabeledTitle]]:
    """(train, validation), stratified by category; both keep the input order.

    Every category with at least two records lands in both parts, so the validation
    metrics cover every class the model was trained on.
    """
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    by_category: dict[str, list[int]] = defaultdict(list)
    for index, record in enumerate(records):
        by_category[record.category].append(index)
    rng = random.Random(seed)
    held_out: set[int] = set()
    # Sorted so the draw does not depend on which category happens to come first.
    for category in sorted(by_category):
        indices = by_category[category]
        if len(indices) < 2:
            continue
        count = min(max(round(len(indices) * validation_fraction), 1), len(indices) - 1)
        held_out.update(rng.sample(indices, count))
    train = [r for i, r in enumerate(records) if i not in held_out]
    validation = [r for i, r in enumerate(records) if i in held_out]
    return train, validation


def label_index(labels: Sequence[str]) -> dict[str, int]:
    """Label -> class id, in the order the classifier head's outputs use."""
    if len(set(labels)) != len(labels):
        raise ValueError(f"labels must be unique, got {list(labels)}")
    return {label: index for index, label in enumerate(labels)}
