"""Consumer lag per partition, from the group's committed offsets and the brokers' watermarks."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaException, TopicPartition

from prodcat.consumer.offsets import TopicPartitionKey
from prodcat.errors import BrokerError

Watermarks = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Offsets:
    committed: dict[TopicPartitionKey, int | None]
    """None where the group has committed nothing on that partition yet."""
    watermarks: dict[TopicPartitionKey, Watermarks]
    """(low, high) of each partition."""


@dataclass(frozen=True, slots=True)
class LagReading:
    lags: dict[TopicPartitionKey, int]
    reliable: bool
    """False once a high watermark is below the offset committed on its partition: a broker
    whose watermarks contradict its own offsets cannot be trusted for any partition's lag."""


def read_offsets(consumer: Consumer, partitions: Iterable[TopicPartitionKey], *, timeout_s: float) -> Offsets:
    """Asks the brokers: a round trip per partition, so every few seconds, not every poll."""
    request = [TopicPartition(topic, partition) for topic, partition in sorted(partitions)]
    if not request:
        return Offsets({}, {})
    try:
        committed = consumer.committed(request, timeout=timeout_s)
        watermarks = {
            (tp.topic, tp.partition): consumer.get_watermark_offsets(tp, timeout=timeout_s) for tp in request
        }
    except KafkaException as exc:
        raise BrokerError(f"cannot read consumer lag: {exc.args[0].str()}") from None
    return Offsets(
        committed={(tp.topic, tp.partition): tp.offset if tp.offset >= 0 else None for tp in committed},
        watermarks=watermarks,
    )


def lag_from_offsets(offsets: Offsets) -> LagReading:
    """Records between each committed offset and its partition's high watermark.

    A partition with nothing committed counts from its low watermark, where a group
    reading from the earliest offset starts.
    """
    lags: dict[TopicPartitionKey, int] = {}
    reliable = True
    for key, (low, high) in offsets.watermarks.items():
        committed = offsets.committed.get(key)
        start = low if committed is None else committed
        if high < start:
            reliable = False
        lags[key] = max(high - start, 0)
    return LagReading(lags, reliable)
