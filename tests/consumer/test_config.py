"""Service settings: every value a misconfiguration can produce is refused by name, before any work."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from prodcat.consumer.config import ConsumerSettings

FLOAT_FIELDS = [
    name for name, field in ConsumerSettings.model_fields.items() if field.annotation in (float, float | None)
]


def error_fields(**values: Any) -> set[str]:
    with pytest.raises(ValidationError) as caught:
        ConsumerSettings(**values)
    return {".".join(str(p) for p in error["loc"]) for error in caught.value.errors()}


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), "inf", "nan"])
@pytest.mark.parametrize("field", FLOAT_FIELDS)
def test_a_non_finite_number_is_refused(field: str, value: object) -> None:
    assert error_fields(**{field: value}) == {field}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_batch_size", 4097),
        ("max_batch_tokens", 1_048_577),
        ("max_wait_ms", 60_001.0),
        ("top_k", 1001),
        ("window_size", 65_537),
        ("commit_interval_ms", 60_001.0),
        ("processes", 65),
        ("topic_partitions", 10_001),
        ("topic_replication", 33),
        ("session_timeout_ms", 3_600_001),
        ("heartbeat_interval_ms", 3_600_001),
        ("shutdown_timeout_s", 3601.0),
        ("metrics_port", 65_536),
        ("reload_interval_s", 86_401.0),
        ("min_golden_agreement", 1.01),
        ("max_failed_in_a_row", 1_000_001),
        ("health_stall_s", 86_401.0),
    ],
)
def test_a_number_above_its_upper_bound_is_refused(field: str, value: float) -> None:
    assert field in error_fields(**{field: value})


@pytest.mark.parametrize("topic_field", ["input_topic", "output_topic", "dead_letter_topic"])
@pytest.mark.parametrize("name", ["", "with space", "slash/ed", "ümlaut", ".", "..", "x" * 250])
def test_an_illegal_topic_name_is_refused(topic_field: str, name: str) -> None:
    assert error_fields(**{topic_field: name}) == {topic_field}


def test_a_topic_name_of_every_legal_character_and_the_longest_length_is_accepted() -> None:
    name = ("Az09._-" * 36)[:249]
    assert ConsumerSettings(output_topic=name).output_topic == name


@pytest.mark.parametrize("heartbeat_ms", [6000, 7000])
def test_a_heartbeat_not_shorter_than_the_session_timeout_is_refused(heartbeat_ms: int) -> None:
    with pytest.raises(ValidationError, match=r"heartbeat_interval_ms .* must be shorter than"):
        ConsumerSettings(session_timeout_ms=6000, heartbeat_interval_ms=heartbeat_ms)


def test_a_non_finite_number_from_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRODCAT_SHUTDOWN_TIMEOUT_S", "inf")
    assert error_fields() == {"shutdown_timeout_s"}
