import pytest

from prodcat.consumer.review import ReviewPolicy, review_fields
from prodcat.schemas.events import Classification, ReviewReason


def test_a_policy_without_threshold_or_margin_is_off() -> None:
    assert not ReviewPolicy().active


def test_a_top_score_below_the_threshold_is_low_confidence() -> None:
    assert ReviewPolicy(threshold=0.6).reason([0.59, 0.3]) is ReviewReason.LOW_CONFIDENCE


def test_a_top_score_at_the_threshold_needs_no_review() -> None:
    assert ReviewPolicy(threshold=0.6).reason([0.6, 0.1]) is None


def test_a_runner_up_closer_than_the_margin_is_a_small_margin() -> None:
    assert ReviewPolicy(margin=0.2).reason([0.5, 0.35, 0.15]) is ReviewReason.SMALL_MARGIN


def test_a_runner_up_at_the_margin_needs_no_review() -> None:
    assert ReviewPolicy(margin=0.25).reason([0.625, 0.375]) is None


def test_low_confidence_is_named_when_the_margin_is_small_too() -> None:
    policy = ReviewPolicy(threshold=0.6, margin=0.2)
    assert policy.reason([0.45, 0.4]) is ReviewReason.LOW_CONFIDENCE


def test_a_margin_without_a_second_score_is_refused() -> None:
    with pytest.raises(ValueError, match="top_k >= 2"):
        ReviewPolicy(margin=0.1).reason([0.9])


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5])
def test_thresholds_outside_zero_to_one_are_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="threshold"):
        ReviewPolicy(threshold=bad)


def test_the_review_fields_make_a_valid_classification() -> None:
    classification = Classification.model_validate(
        {
            "label": "Books",
            "confidence": 0.4,
            "top_k": [{"label": "Books", "score": 0.4}],
            "model_name": "m",
            "model_version": "v1",
            "timings": {"queued_ms": 1.0, "inference_ms": 2.0, "batch_size": 1},
            **review_fields(ReviewReason.SMALL_MARGIN),
        }
    )
    assert (classification.needs_review, classification.review_reason) == (True, ReviewReason.SMALL_MARGIN)
