from prodcat.consumer.metrics import Metrics
from prodcat.schemas.events import ReviewReason


def test_events_flagged_for_review_are_counted_per_label_and_reason() -> None:
    metrics = Metrics()
    metrics.flagged_for_review("Books", ReviewReason.LOW_CONFIDENCE, 2)
    metrics.flagged_for_review("Books", ReviewReason.SMALL_MARGIN)
    metrics.flagged_for_review("Shoes", ReviewReason.SMALL_MARGIN)
    sample = metrics.registry.get_sample_value(
        "prodcat_events_flagged_for_review_total", {"label": "Books", "reason": "low_confidence"}
    )
    assert (sample, metrics.flagged_for_review_by_label) == (2, {"Books": 3, "Shoes": 1})
