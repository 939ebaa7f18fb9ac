"""Which events a person should check: a top-1 confidence below `--review-threshold`, or a
runner-up closer than `--review-margin` to it.

Pure: the engine asks `ReviewPolicy.reason` with an event's top-k scores and, for a flagged
event, merges `review_fields` into its classification and also produces it to the review topic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from prodcat.schemas.events import ReviewReason


@dataclass(frozen=True, slots=True)
class ReviewPolicy:
    threshold: float | None = None
    """Flag events whose top-1 confidence is below this."""
    margin: float | None = None
    """Flag events whose top-1 confidence exceeds the second's by less than this."""

    def __post_init__(self) -> None:
        for name, value in (("threshold", self.threshold), ("margin", self.margin)):
            if value is not None and not 0.0 < value <= 1.0:
                raise ValueError(f"review {name} must be in (0, 1], got {value}")

    @property
    def active(self) -> bool:
        return self.threshold is not None or self.margin is not None

    def reason(self, scores: Sequence[float]) -> ReviewReason | None:
        """Why an event with these top-k scores (best first) needs review; None when it does not.

        A low confidence is named before a small margin when both hold. The margin needs the
        second score: the service asks for at least two scores whenever a margin is set.
        """
        if self.threshold is not None and scores[0] < self.threshold:
            return ReviewReason.LOW_CONFIDENCE
        if self.margin is not None:
            if len(scores) < 2:
                raise ValueError("a review margin needs the two best scores (top_k >= 2)")
            if scores[0] - scores[1] < self.margin:
                return ReviewReason.SMALL_MARGIN
        return None


def review_fields(reason: ReviewReason) -> dict[str, object]:
    """The members a flagged event's classification gets (see `schemas.events.Classification`)."""
    return {"needs_review": True, "review_reason": reason.value}
