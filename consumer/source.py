"""Kafka input: a consumer-group member that hands out messages and commits offsets.

Assignment, revocation and loss reach the owner as three separate calls: revoked
partitions may still be committed (the member owns them until the callback returns),
lost ones may not (the group has already given them to someone else).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition

from prodcat.errors import BrokerError

log = structlog.get_logger(__name__)

TopicPartitionKey = tuple[str, int]
PartitionsHandler = Callable[[set[TopicPartitionKey]], None]

# Commit refusals that mean "this member is no longer in that generation": the partitions
# are being handed over, their new owner redoes the uncommitted tail. Not worth dying for.
_STALE_MEMBER = {
    KafkaError.UNKNOWN_MEMBER_ID,
    KafkaError.ILLEGAL_GENERATION,
    KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError._ASSIGNMENT_LOST,
    KafkaError._STATE,
}


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
    def __init__(
        self,
        config: Mapping[str, object],
        topics: list[str],
        *,
        on_assign: PartitionsHandler,
        on_revoke: PartitionsHandler,
        on_lost: PartitionsHandler,
    ) -> None:
        self._config: dict[str, Any] = {
            **config,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "on_commit": self._committed,
        }
        self._failed_commits: set[TopicPartitionKey] = set()
        self._topics = topics
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self._on_lost = on_lost
        self._consumer: Consumer | None = None
        self.assigned: set[TopicPartitionKey] = set()

    def start(self) -> None:
        self._consumer = Consumer(self._config)
        self._consumer.subscribe(
            self._topics, on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._lost
        )

    def _assigned(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        keys = _keys(partitions)
        self.assigned |= keys
        log.info("partitions_assigned", partitions=sorted(keys))
        self._on_assign(keys)

    def _revoked(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        keys = _keys(partitions)
        log.info("partitions_revoked", partitions=sorted(keys))
        self.assigned -= keys
        self._on_revoke(keys)

    def _lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        keys = _keys(partitions)
        log.warning("partitions_lost", partitions=sorted(keys))
        self.assigned -= keys
        self._on_lost(keys)

    @property
    def consumer(self) -> Consumer:
        if self._consumer is None:
            raise RuntimeError("KafkaSource.start() was not called")
        return self._consumer

    def poll(self, max_records: int, timeout_s: float) -> list[Message]:
        """What has been fetched, up to `max_records`; waits up to `timeout_s` only when nothing has.

        librdkafka's batch consume waits for the whole batch or the timeout, which would
        hold the loop for the full timeout whenever fewer records are queued.
        """
        consumer = self.consumer
        messages = consumer.consume(num_messages=max_records, timeout=0)
        if not messages and timeout_s > 0:
            messages = consumer.consume(num_messages=1, timeout=timeout_s)
            if messages and max_records > 1:
                messages += consumer.consume(num_messages=max_records - 1, timeout=0)
        for message in messages:
            if message.error() is not None:
                # Rare, so the clean case pays one pass and no copy.
                return [m for m in messages if not self._is_error(m)]
        return messages

    @staticmethod
    def _is_error(message: Message) -> bool:
        error = message.error()
        if error is None:
            return False
        if error.code() == KafkaError._PARTITION_EOF:
            return True
        if error.fatal():
            raise BrokerError(f"consumer failed: {error.str()}", code=error.code())
        log.warning("consumer_error", error=error.str(), code=error.code())
        return True

    def commit(self, offsets: Mapping[TopicPartitionKey, int], *, asynchronous: bool) -> bool:
        """Commits next-offsets; False when the group no longer lets this member commit them."""
        if not offsets:
            return True
        request = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        try:
            results = (
                self.consumer.commit(offsets=request, asynchronous=True)
                if asynchronous
                else self.consumer.commit(offsets=request, asynchronous=False)
            )
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.code() in _STALE_MEMBER:
                log.warning("commit_refused_by_group", error=error.str(), partitions=len(request))
                return False
            raise BrokerError(
                f"offset commit failed: {error.str()}", code=error.code(), retriable=error.retriable()
            ) from None
        failed = [r for r in results or [] if r.error is not None]
        if failed:
            first = failed[0]
            raise BrokerError(
                f"offset commit failed for {first.topic}[{first.partition}]: {first.error}",
                code=first.error.code() if first.error is not None else None,
            )
        return True

    def _committed(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        # Asynchronous commits report here, during a poll, on the owner's thread.
        if error is not None and error.code() != KafkaError._NO_OFFSET:
            log.warning("async_commit_failed", error=error.str(), code=error.code())
            self._failed_commits |= _keys(partitions)
        elif error is None:
            self._failed_commits |= {(p.topic, p.partition) for p in partitions if p.error is not None}

    def take_failed_commits(self) -> set[TopicPartitionKey]:
        """Partitions whose asynchronous commit failed since the last call, to be committed again."""
        failed, self._failed_commits = self._failed_commits, set()
        return failed

    def high_watermarks(self, partitions: set[TopicPartitionKey]) -> dict[TopicPartitionKey, int]:
        """Last known end offsets, from fetch responses (no broker round trip)."""
        ends: dict[TopicPartitionKey, int] = {}
        for topic, partition in partitions:
            try:
                _low, high = self.consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), cached=True
                )
            except KafkaException:
                continue
            if high >= 0:
                ends[(topic, partition)] = high
        return ends

    def end_offsets(self, topic: str, timeout_s: float = 10.0) -> dict[TopicPartitionKey, int]:
        """Each partition's end offset as the broker reports it now."""
        try:
            metadata = self.consumer.list_topics(topic, timeout=timeout_s).topics[topic]
            ends = {}
            for partition in metadata.partitions:
                _low, high = self.consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=timeout_s
                )
                ends[(topic, partition)] = high
        except KafkaException as exc:
            raise BrokerError(f"cannot read the end offsets of {topic}: {exc.args[0].str()}") from None
        return ends

    def committed_positions(
        self, partitions: set[TopicPartitionKey], timeout_s: float = 10.0
    ) -> dict[TopicPartitionKey, int]:
        """The group's committed next-offset of each partition that has one."""
        try:
            committed = self.consumer.committed([TopicPartition(t, p) for t, p in partitions], timeout_s)
        except KafkaException as exc:
            raise BrokerError(f"cannot read committed offsets: {exc.args[0].str()}") from None
        return {(c.topic, c.partition): c.offset for c in committed if c.offset >= 0}

    def group_metadata(self) -> object:
        return self.consumer.consumer_group_metadata()

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None


def record_of(message: Message) -> Record:
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
                    records.append(record_of(message))
            if settle_until is None and len(records) >= expected:
                settle_until = time.monotonic() + settle_s
        return records
    finally:
        reader.close()


def read_to_end(
    config: Mapping[str, object],
    topic: str,
    *,
    idle_s: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
) -> list[Record]:
    """Every record of a topic from the beginning to the end offsets it had when asked, without
    joining a group; in each partition's order.

    Where the broker's end offsets prove wrong (a record at or past one, as the embedded
    broker gives) or cannot be reached (a compacted tail), it ends once no record has come
    for `idle_s` instead.
    """
    reader = Consumer({**config, "group.id": "prodcat-reader", "enable.auto.commit": False})
    try:
        try:
            metadata = reader.list_topics(topic, timeout=30.0).topics[topic]
            if metadata.error is not None:
                raise BrokerError(f"cannot read {topic}: {metadata.error.str()}")
            watermarks = {
                p: reader.get_watermark_offsets(TopicPartition(topic, p), timeout=30.0)
                for p in metadata.partitions
            }
        except KafkaException as exc:
            raise BrokerError(f"cannot read the end offsets of {topic}: {exc.args[0].str()}") from None
        ends = {p: high for p, (_low, high) in watermarks.items()}
        # From the low watermark: records before it were deleted (retention, compaction).
        positions = {p: low for p, (low, _high) in watermarks.items()}
        reader.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        trusted = True
        records: list[Record] = []
        quiet_since = clock()
        while clock() - quiet_since < idle_s:
            if trusted and all(positions[p] >= end for p, end in ends.items()):
                break
            messages = reader.consume(num_messages=1000, timeout=0.2)
            if messages:
                quiet_since = clock()
            for message in messages:
                if KafkaSource._is_error(message):
                    continue
                record = record_of(message)
                if record.offset >= ends.get(record.partition, 0):
                    trusted = False
                positions[record.partition] = record.offset + 1
                records.append(record)
        return records
    finally:
        reader.close()


class TopicTail:
    """The records a topic receives from now on, from each partition it has at start, without
    joining a group: nothing is committed, and a restarted tail starts at the end again.

    For a side input the engine reads beside its group's topics (the labels topic, whose
    labels the shadow judge joins to the events it compared). Polled on the Kafka thread.
    """

    def __init__(self, config: Mapping[str, object], topic: str, *, timeout_s: float = 30.0) -> None:
        self._config: dict[str, Any] = {**config, "group.id": "prodcat-tail", "enable.auto.commit": False}
        self._topic = topic
        self._timeout_s = timeout_s
        self._consumer: Consumer | None = None

    def start(self) -> None:
        consumer = Consumer(self._config)
        try:
            consumer.assign(self._ends(consumer))
        except BaseException:
            consumer.close()
            raise
        self._consumer = consumer

    def _ends(self, consumer: Consumer) -> list[TopicPartition]:
        # Asked for now rather than assigned as OFFSET_END, which the client resolves at its
        # first fetch: records produced in between would be skipped.
        topic = self._topic
        try:
            metadata = consumer.list_topics(topic, timeout=self._timeout_s).topics[topic]
            if metadata.error is not None:
                raise BrokerError(f"cannot follow {topic}: {metadata.error.str()}")
            return [
                TopicPartition(
                    topic,
                    p,
                    consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=self._timeout_s)[1],
                )
                for p in metadata.partitions
            ]
        except KafkaException as exc:
            raise BrokerError(f"cannot follow {topic}: {exc.args[0].str()}") from None

    def poll(self, max_records: int) -> list[Record]:
        """What has arrived, up to `max_records`, without waiting."""
        if self._consumer is None:
            raise RuntimeError("TopicTail.start() was not called")
        messages = self._consumer.consume(num_messages=max_records, timeout=0)
        return [record_of(m) for m in messages if not KafkaSource._is_error(m)]

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
