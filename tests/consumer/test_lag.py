from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, TopicPartition

from prodcat.broker import free_port
from prodcat.consumer.lag import Offsets, lag_from_offsets, read_offsets
from prodcat.consumer.topics import ensure_topics
from prodcat.errors import BrokerError

TIMEOUT_S = 15.0


def test_lag_is_the_high_watermark_minus_the_committed_offset() -> None:
    reading = lag_from_offsets(Offsets(committed={("raw", 0): 40}, watermarks={("raw", 0): (0, 100)}))
    assert reading.lags == {("raw", 0): 60}


def test_a_partition_with_nothing_committed_counts_from_its_low_watermark() -> None:
    reading = lag_from_offsets(Offsets(committed={("raw", 0): None}, watermarks={("raw", 0): (30, 100)}))
    assert reading.lags == {("raw", 0): 70}


def test_watermarks_consistent_with_the_committed_offsets_are_reliable() -> None:
    offsets = Offsets(
        committed={("raw", 0): 100, ("raw", 1): 5}, watermarks={("raw", 0): (0, 100), ("raw", 1): (0, 9)}
    )
    assert lag_from_offsets(offsets).reliable


def test_a_high_watermark_below_the_committed_offset_makes_the_reading_unreliable() -> None:
    # What the embedded broker answers: (0, 1) whatever the partition holds.
    offsets = Offsets(
        committed={("raw", 0): 250, ("raw", 1): 0}, watermarks={("raw", 0): (0, 1), ("raw", 1): (0, 1)}
    )
    reading = lag_from_offsets(offsets)
    assert not reading.reliable
    assert reading.lags[("raw", 0)] == 0


@pytest.fixture
def group_member(kafka_bootstrap: str) -> Iterator[tuple[Consumer, str]]:
    topic = f"lag-{uuid.uuid4().hex[:8]}.products.raw"
    ensure_topics({"bootstrap.servers": kafka_bootstrap}, {topic: 2})
    consumer = Consumer(
        {"bootstrap.servers": kafka_bootstrap, "group.id": topic, "enable.auto.commit": False}
    )
    try:
        yield consumer, topic
    finally:
        consumer.close()


def test_reading_offsets_returns_what_the_group_committed(group_member: tuple[Consumer, str]) -> None:
    consumer, topic = group_member
    consumer.commit(offsets=[TopicPartition(topic, 0, 2)], asynchronous=False)
    offsets = read_offsets(consumer, [(topic, 0), (topic, 1)], timeout_s=TIMEOUT_S)
    assert offsets.committed == {(topic, 0): 2, (topic, 1): None}
    assert offsets.watermarks.keys() == {(topic, 0), (topic, 1)}


def test_reading_offsets_without_a_broker_is_a_broker_error() -> None:
    consumer = Consumer({"bootstrap.servers": f"127.0.0.1:{free_port()}", "group.id": "nowhere"})
    try:
        with pytest.raises(BrokerError, match=r"^cannot read consumer lag: "):
            read_offsets(consumer, [("raw", 0)], timeout_s=0.5)
    finally:
        consumer.close()
