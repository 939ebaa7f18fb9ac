import pytest
from pydantic import ValidationError

from prodcat.argtypes import OneLineParser
from prodcat.consumer.config import ConsumerSettings
from prodcat.flags import add_settings_flags, settings_overrides


def settings(**given: object) -> ConsumerSettings:
    return ConsumerSettings(**given)  # type: ignore[arg-type]


def test_review_routing_is_off_by_default() -> None:
    plain = settings()
    assert (plain.review_threshold, plain.review_margin, plain.review_topic) == (None, None, None)


def test_a_threshold_with_a_review_topic_is_accepted() -> None:
    assert settings(review_threshold=0.6, review_topic="products.review").review_threshold == 0.6


def test_a_threshold_without_a_review_topic_is_refused() -> None:
    with pytest.raises(ValidationError, match="need a --review-topic"):
        settings(review_threshold=0.6)


def test_a_review_topic_without_a_threshold_or_margin_is_refused() -> None:
    with pytest.raises(ValidationError, match="needs --review-threshold or --review-margin"):
        settings(review_topic="products.review")


def test_a_margin_with_only_the_top_score_kept_is_refused() -> None:
    with pytest.raises(ValidationError, match="needs --top-k 2 or more"):
        settings(review_margin=0.1, review_topic="products.review", top_k=1)


def test_the_review_topic_must_be_a_topic_of_its_own() -> None:
    with pytest.raises(ValidationError, match="review topic must differ"):
        settings(review_threshold=0.6, review_topic="products.categorized")


def test_an_illegal_review_topic_name_is_refused() -> None:
    with pytest.raises(ValidationError, match="not a legal Kafka topic name"):
        settings(review_threshold=0.6, review_topic="no spaces")


def test_the_review_flags_reach_the_settings() -> None:
    parser = OneLineParser()
    add_settings_flags(parser, ConsumerSettings)
    args = parser.parse_args(["--review-margin", "0.15", "--review-topic", "products.review"])
    parsed = settings(**settings_overrides(args, ConsumerSettings))
    assert (parsed.review_margin, parsed.review_topic) == (0.15, "products.review")
