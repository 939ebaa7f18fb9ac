"""Kafka input: a consumer-group member that hands out plain records and commits offsets."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import structlog
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition

from prodcat.consumer.offsets import TopicPartitionKey
from prodcat.errors import BrokerError

log = structlog.get_logger(__name__)

RevokeHandler = Callable[[set[TopicPartitionKey]], None]


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None

    @property
    def tp(self) -> TopicPartitionKey:
        return (self.topic, self.partition)


def _keys(partitions: list[TopicPartition]) -> set[TopicPartitionKey]:
    return {(p.topic, p.partition) for p in partitions}


class KafkaSource:
    def __init__(self, config: Mapping[str, object], topics: list[str], on_revoke: RevokeHandler) -> None:
        self._config = {**config, "enable.auto.commit": False, "enable.auto.offset.store": False}
        self._topics = topics
        self._on_revoke = on_revoke
        self._consumer: Consumer | None = None
        self.assigned: set[TopicPartitionKey] = set()

    def start(self) -> None:
        self._consumer = Consumer(self._config)
        self._consumer.subscribe(
            self._topics, on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._revoked
        )

    def _assigned(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assigned |= _keys(partitions)
        log.info("partitions_assigned", partitions=sorted(_keys(partitions)))

    def _revoked(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        lost = _keys(partitions)
        log.info("partitions_revoked", partitions=sorted(lost))
        self._on_revoke(lost)
        self.assigned -= lost

    @property
    def consumer(self) -> Consumer:
        if self._consumer is None:
            raise RuntimeError("KafkaSource.start() was not called")
        return self._consumer

    def poll(self, max_records: int, timeout_s: float) -> list[Record]:
        records = []
        for message in self.consumer.consume(num_messages=max_records, timeout=timeout_s):
            error = message.error()
            if error is not None:
                self._raise_if_fatal(error)
                continue
            records.append(_record(message))
        return records

    @staticmethod
    def _raise_if_fatal(error: KafkaError) -> None:
        if error.code() == KafkaError._PARTITION_EOF:
            return
        if error.fatal() or not error.retriable():
            if error.code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC):
                raise BrokerError(f"input topic missing: {error.str()}")
            if error.fatal():
                raise BrokerError(f"consumer failed: {error.str()}")
        log.warning("consumer_error", error=error.str())

    def commit(self, offsets: Mapping[TopicPartitionKey, int]) -> None:
        if not offsets:
            return
        request = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        try:
            results = self.consumer.commit(offsets=request, asynchronous=False)
        except KafkaException as exc:
            raise BrokerError(f"offset commit failed: {exc.args[0].str()}") from None
        failed = [r for r in results or [] if r.error is not None]
        if failed:
            raise BrokerError(
                f"offset commit failed for {failed[0].topic}[{failed[0].partition}]: {failed[0].error}"
            )

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None


def _record(message: Message) -> Record:
    # A message without an error always carries its position; the stubs cannot know that.
    return Record(
        topic=message.topic(),  # type: ignore[arg-type]
        partition=message.partition(),  # type: ignore[arg-type]
        offset=message.offset(),  # type: ignore[arg-type]
        key=message.key(),
        value=message.value(),
        headers=message.headers(),  # type: ignore[arg-type]
    )


def read_topic(
    config: Mapping[str, object], topic: str, *, expected: int, timeout_s: float = 30.0, settle_s: float = 0.0
) -> list[Record]:
    """Every record of a topic from the beginning, without joining a group.

    Reads until `expected` records arrived, then `settle_s` longer to catch any surplus
    (duplicates) a caller wants to see; gives up after `timeout_s`.
    """
    reader = Consumer({**config, "group.id": "prodcat-reader", "enable.auto.commit": False})
    try:
        metadata = reader.list_topics(topic, timeout=timeout_s).topics[topic]
        if metadata.error is not None:
            raise BrokerError(f"cannot read {topic}: {metadata.error.str()}")
        reader.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in metadata.partitions])
        records: list[Record] = []
        deadline = time.monotonic() + timeout_s
        settle_until: float | None = None
        while time.monotonic() < min(deadline, settle_until or deadline):
            for message in reader.consume(num_messages=1000, timeout=0.2):
                if message.error() is None:
                    records.append(_record(message))
            if settle_until is None and len(records) >= expected:
                settle_until = time.monotonic() + settle_s
        return records
    finally:
        reader.close()
