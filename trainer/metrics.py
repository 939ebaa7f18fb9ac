"""Classification metrics in plain Python, matching scikit-learn with zero_division=0."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TypeVar

Label = TypeVar("Label", bound=Hashable)


@dataclass(frozen=True)
class ClassScore:
    precision: float
    recall: float
    f1: float
    support: int


def accuracy(y_true: Sequence[Label], y_pred: Sequence[Label]) -> float:
    _check_lengths(y_true, y_pred)
    return sum(t == p for t, p in zip(y_true, y_pred, strict=True)) / len(y_true)


def per_class(
    y_true: Sequence[Label], y_pred: Sequence[Label], labels: Sequence[Label]
) -> dict[Label, ClassScore]:
    """Precision, recall and F1 of each label; a ratio with a zero denominator counts as 0."""
    _check_lengths(y_true, y_pred)
    scores = {}
    for label in labels:
        tp = sum(t == label and p == label for t, p in zip(y_true, y_pred, strict=True))
        predicted = sum(p == label for p in y_pred)
        support = sum(t == label for t in y_true)
        # 2tp / (2tp + fp + fn): the harmonic mean of precision and recall, defined as 0
        # for a label that is neither present nor predicted, as scikit-learn does.
        f1_denominator = predicted + support
        scores[label] = ClassScore(
            precision=tp / predicted if predicted else 0.0,
            recall=tp / support if support else 0.0,
            f1=2 * tp / f1_denominator if f1_denominator else 0.0,
            support=support,
        )
    return scores


def macro_f1(y_true: Sequence[Label], y_pred: Sequence[Label], labels: Sequence[Label]) -> float:
    """Unweighted mean F1 over `labels`, including labels absent from both sequences."""
    if not labels:
        raise ValueError("macro_f1 needs at least one label")
    scores = per_class(y_true, y_pred, labels)
    return sum(score.f1 for score in scores.values()) / len(labels)


def confusion_matrix(
    y_true: Sequence[Label], y_pred: Sequence[Label], labels: Sequence[Label]
) -> list[list[int]]:
    """Rows are true labels, columns predicted ones, both in `labels` order; others are ignored."""
    _check_lengths(y_true, y_pred)
    position = {label: index for index, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for t, p in zip(y_true, y_pred, strict=True):
        if t in position and p in position:
            matrix[position[t]][position[p]] += 1
    return matrix


def _check_lengths(y_true: Sequence[Label], y_pred: Sequence[Label]) -> None:
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} items but y_pred has {len(y_pred)}")
    if not y_true:
        raise ValueError("no examples to score")


def expected_calibration_error(
    confidences: Sequence[float], correct: Sequence[bool], bins: int = 15
) -> float:
    """Top-label ECE: over equal-width confidence bins, the gap between mean confidence and
    accuracy, weighted by the share of predictions in the bin."""
    if len(confidences) != len(correct):
        raise ValueError(f"{len(confidences)} confidences but {len(correct)} outcomes")
    if not confidences:
        return 0.0
    totals = [[0, 0.0, 0] for _ in range(bins)]
    for confidence, hit in zip(confidences, correct, strict=True):
        # Bins are (k/bins, (k+1)/bins]; a confidence of exactly 0 joins the first.
        index = min(bins - 1, max(0, math.ceil(confidence * bins) - 1))
        totals[index][0] += 1
        totals[index][1] += confidence
        totals[index][2] += int(hit)
    n = len(confidences)
    return sum(count / n * abs(conf / count - hits / count) for count, conf, hits in totals if count)
