import pytest
from pydantic import ValidationError

from prodcat.consumer.config import ConsumerSettings


def settings(**given: object) -> ConsumerSettings:
    return ConsumerSettings(**given)  # type: ignore[arg-type]


def test_shadowing_and_embeddings_are_off_by_default() -> None:
    plain = settings()
    assert (plain.shadow_fraction, plain.labels_topic, plain.emit_embeddings) == (0.0, None, False)


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_a_shadow_fraction_outside_0_to_1_is_refused(fraction: float) -> None:
    with pytest.raises(ValidationError, match="shadow_fraction"):
        settings(shadow_fraction=fraction)


def test_an_illegal_labels_topic_name_is_refused() -> None:
    with pytest.raises(ValidationError, match="legal Kafka topic"):
        settings(labels_topic="no spaces")


def test_the_labels_topic_must_be_a_topic_of_its_own() -> None:
    with pytest.raises(ValidationError, match="labels topic must differ"):
        settings(labels_topic="products.categorized")
