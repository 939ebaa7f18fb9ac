"""Strict fakes of the consumer and the producer, typed against delivery's protocols.

Both keep one log of every call in order, so a test can say what happened before what. A
record the fake broker refuses is reported in its delivery callback, as librdkafka does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, Message

from prodcat.consumer.offsets import TopicPartitionKey
from prodcat.consumer.sink import DeliveryCallback, Headers

REFUSED = KafkaError.INVALID_RECORD


@dataclass
class Log:
    calls: list[tuple[str, object]] = field(default_factory=list)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def index(self, name: str, detail: object) -> int:
        return self.calls.index((name, detail))


class FakeSource:
    def __init__(self, log: Log) -> None:
        self._log = log
        self.failed: set[TopicPartitionKey] = set()

    def commit(self, offsets: Mapping[TopicPartitionKey, int], *, asynchronous: bool) -> bool:
        self._log.calls.append(("commit", dict(offsets)))
        return True

    def take_failed_commits(self) -> set[TopicPartitionKey]:
        failed, self.failed = self.failed, set()
        return failed

    def group_metadata(self) -> object:
        return "group-metadata"


class FakeSink:
    """Acknowledges on poll and flush; refuses the values in `refuse` (the broker's verdict on a
    record) and fails those in `fail` (a broker-level failure, e.g. a delivery timeout)."""

    def __init__(self, log: Log, refuse: set[bytes], fail: set[bytes]) -> None:
        self._log = log
        self._refuse = refuse
        self._fail = fail
        self._queued: list[tuple[bytes, str, DeliveryCallback]] = []

    def produce(
        self,
        topic: str,
        value: bytes,
        key: bytes | None,
        headers: Headers | None,
        on_delivery: DeliveryCallback,
    ) -> int | None:
        self._log.calls.append(("produce", (topic, value)))
        self._queued.append((value, topic, on_delivery))
        return None

    def poll(self, timeout_s: float = 0.0) -> None:
        queued, self._queued = self._queued, []
        for value, topic, callback in queued:
            error = None
            if value in self._refuse:
                error = KafkaError(REFUSED, "refused by the broker")
            elif value in self._fail:
                error = KafkaError(KafkaError._MSG_TIMED_OUT, "timed out")
            callback(error, Message(topic=topic, partition=0, offset=0))

    def flush(self, timeout_s: float) -> None:
        self._log.calls.append(("flush", None))
        self.poll()

    def init_transactions(self, timeout_s: float) -> None:
        self._log.calls.append(("init", None))

    def begin_transaction(self) -> None:
        self._log.calls.append(("begin", None))

    def commit_transaction(
        self, offsets: Mapping[TopicPartitionKey, int], group_metadata: object, timeout_s: float
    ) -> None:
        self._log.calls.append(("commit_transaction", dict(offsets)))

    def abort_transaction(self, timeout_s: float) -> None:
        # The aborted transaction's records that were still queued are purged, unreported here.
        self._queued.clear()
        self._log.calls.append(("abort", None))
