from __future__ import annotations

from dataclasses import astuple

import pytest

from prodcat.trainer.metrics import ClassScore, accuracy, confusion_matrix, macro_f1, per_class

# Worked by hand:
#   a: predicted at 0, 1 (both right), missed at 2     -> P 2/2, R 2/3, F1 4/5
#   b: predicted at 2 (wrong), 3 (right), missed at 4  -> P 1/2, R 1/2, F1 1/2
#   c: predicted at 4 (wrong), 5 (right)               -> P 1/2, R 1/1, F1 2/3
Y_TRUE = ["a", "a", "a", "b", "b", "c"]
Y_PRED = ["a", "a", "b", "b", "c", "c"]


def test_accuracy_is_the_share_of_exact_matches() -> None:
    assert accuracy(Y_TRUE, Y_PRED) == pytest.approx(4 / 6)


def test_per_class_matches_hand_computed_scores() -> None:
    scores = per_class(Y_TRUE, Y_PRED, ["a", "b", "c"])
    # (precision, recall, f1, support) per class
    assert {label: astuple(score) for label, score in scores.items()} == {
        "a": pytest.approx((1.0, 2 / 3, 4 / 5, 3)),
        "b": pytest.approx((0.5, 0.5, 1 / 2, 2)),
        "c": pytest.approx((0.5, 1.0, 2 / 3, 1)),
    }


def test_macro_f1_is_the_unweighted_mean_of_class_f1() -> None:
    assert macro_f1(Y_TRUE, Y_PRED, ["a", "b", "c"]) == pytest.approx((4 / 5 + 1 / 2 + 2 / 3) / 3)


def test_label_neither_present_nor_predicted_scores_zero() -> None:
    assert per_class(Y_TRUE, Y_PRED, ["d"])["d"] == ClassScore(0.0, 0.0, 0.0, 0)


def test_macro_f1_averages_over_absent_labels_too() -> None:
    assert macro_f1(Y_TRUE, Y_PRED, ["a", "b", "c", "d"]) == pytest.approx((4 / 5 + 1 / 2 + 2 / 3 + 0) / 4)


def test_label_predicted_but_never_present_has_zero_precision() -> None:
    scores = per_class(["a", "a"], ["a", "z"], ["a", "z"])
    assert scores["z"] == ClassScore(precision=0.0, recall=0.0, f1=0.0, support=0)


def test_confusion_matrix_has_true_labels_as_rows_and_predictions_as_columns() -> None:
    assert confusion_matrix(Y_TRUE, Y_PRED, ["a", "b", "c"]) == [
        [2, 1, 0],
        [0, 1, 1],
        [0, 0, 1],
    ]


def test_confusion_matrix_ignores_pairs_outside_the_labels() -> None:
    assert confusion_matrix(["a", "x", "a"], ["a", "a", "y"], ["a"]) == [[1]]


def test_sequences_of_different_lengths_are_rejected() -> None:
    with pytest.raises(ValueError, match="y_true has 2 items but y_pred has 1"):
        accuracy(["a", "b"], ["a"])
