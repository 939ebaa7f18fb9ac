"""Delivery alone, against strict fakes of the consumer and producer: the commit sequence.

The fakes keep one log of every call in order, so a test can say what happened before what.
A record the fake broker refuses is reported in its delivery callback, as librdkafka does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest
from confluent_kafka import KafkaError, Message

from prodcat.consumer.delivery import CommitSource, Delivery, RecordSink, Refusal
from prodcat.consumer.offsets import PartitionOffsets, TopicPartitionKey
from prodcat.consumer.sink import DeliveryCallback, Headers
from prodcat.errors import DeliveryError

TP: TopicPartitionKey = ("raw", 0)
OTHER: TopicPartitionKey = ("raw", 1)
REFUSED = KafkaError.INVALID_RECORD
# The input's offset handle and offset, and what was sent for it: "enriched", "letter" or "bare".
Ref = tuple[PartitionOffsets, int, str]


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


@dataclass
class Rig:
    log: Log
    source: FakeSource
    sink: FakeSink
    delivery: Delivery[Ref]

    def consume(self, tp: TopicPartitionKey, offset: int, value: bytes) -> None:
        """Tracks the offset and sends its output, as the engine does with a record."""
        state = self.delivery.track(tp, offset)
        code = self.delivery.send(
            state, offset, "enriched", (state, offset, "enriched"), "out", value, None, None
        )
        assert code is None


def rig(
    *,
    refuse: frozenset[bytes] = frozenset(),
    fail: frozenset[bytes] = frozenset(),
    exactly_once: bool = False,
) -> Rig:
    log = Log()
    source, sink = FakeSource(log), FakeSink(log, set(refuse), set(fail))
    typed_source: CommitSource = source
    typed_sink: RecordSink = sink
    holder: list[Delivery[Ref]] = []

    def dead_letter(refusal: Refusal[Ref]) -> None:
        # The engine's rule: a refused event gets a letter; a refused letter, a bare one.
        state, offset, sent = refusal.ref
        again = "letter" if sent == "enriched" else "bare"
        value = b"%s-%d" % (again.encode(), offset)
        holder[0].send(state, offset, "dead_letter", (state, offset, again), "dead", value, None, None)

    delivery: Delivery[Ref] = Delivery(
        typed_source, typed_sink, on_refusal=dead_letter, exactly_once=exactly_once, commit_interval_s=0.0
    )
    holder.append(delivery)
    delivery.start()
    return Rig(log, source, sink, delivery)


def test_lost_partitions_are_never_committed() -> None:
    r = rig()
    r.consume(TP, 0, b"a")
    r.consume(OTHER, 0, b"b")
    r.sink.poll()

    r.delivery.lose({TP})
    r.delivery.close()

    commits = [detail for name, detail in r.log.calls if name == "commit"]
    assert commits == [{OTHER: 1}]


def test_a_record_refused_by_the_broker_is_dead_lettered_before_revoke_commits_past_it() -> None:
    r = rig(refuse=frozenset({b"poison"}))
    r.consume(TP, 0, b"poison")
    r.consume(TP, 1, b"fine")

    r.delivery.revoke({TP})

    letter = r.log.index("produce", ("dead", b"letter-0"))
    commit = r.log.index("commit", {TP: 2})
    assert letter < commit
    # Flushed after the letter went out and before the commit: the letter was acknowledged.
    assert "flush" in r.log.names()[letter:commit]


def test_a_record_refused_by_the_broker_is_dead_lettered_before_close_commits_past_it() -> None:
    r = rig(refuse=frozenset({b"poison"}))
    r.consume(TP, 0, b"fine")
    r.consume(TP, 1, b"poison")

    r.delivery.close()

    assert r.log.index("produce", ("dead", b"letter-1")) < r.log.index("commit", {TP: 2})


def test_a_periodic_commit_settles_refusals_first() -> None:
    r = rig(refuse=frozenset({b"poison"}))
    r.consume(TP, 0, b"poison")
    r.sink.poll()

    r.delivery.service()
    r.sink.poll()
    r.delivery.service()

    assert r.log.index("produce", ("dead", b"letter-0")) < r.log.index("commit", {TP: 1})


def test_a_failed_asynchronous_commit_is_sent_again_though_nothing_advanced() -> None:
    r = rig()
    r.consume(TP, 0, b"a")
    r.sink.poll()
    r.delivery.service()
    r.source.failed = {TP}

    r.delivery.service()

    assert [detail for name, detail in r.log.calls if name == "commit"] == [{TP: 1}, {TP: 1}]


def test_exactly_once_a_refused_record_aborts_its_transaction_and_is_dead_lettered_in_the_next() -> None:
    r = rig(refuse=frozenset({b"poison"}), exactly_once=True)
    r.consume(TP, 0, b"fine")
    r.consume(TP, 1, b"poison")
    r.consume(TP, 2, b"also fine")

    r.delivery.close()

    calls = r.log.calls
    abort = r.log.index("abort", None)
    retried = calls[abort + 1 :]
    assert retried[0] == ("begin", None)
    produced = [detail for name, detail in retried if name == "produce"]
    assert produced == [("out", b"fine"), ("out", b"also fine"), ("dead", b"letter-1")]
    assert retried[-1] == ("commit_transaction", {TP: 3})
    assert r.delivery.acknowledged == {"enriched": 2, "dead_letter": 1}


def test_exactly_once_a_refused_dead_letter_is_settled_in_a_further_transaction() -> None:
    r = rig(refuse=frozenset({b"poison", b"letter-0"}), exactly_once=True)
    r.consume(TP, 0, b"poison")

    r.delivery.close()

    assert [detail for name, detail in r.log.calls if name == "produce"][-1] == ("dead", b"bare-0")
    assert r.log.names().count("abort") == 2
    assert r.log.calls[-1] == ("commit_transaction", {TP: 1})


def test_exactly_once_losing_partitions_with_a_transaction_open_aborts_it_and_stops() -> None:
    r = rig(exactly_once=True)
    r.consume(TP, 0, b"a")

    with pytest.raises(DeliveryError, match="lost with a transaction open"):
        r.delivery.lose({TP})

    assert "commit_transaction" not in r.log.names() and "abort" in r.log.names()


def test_a_broker_level_delivery_failure_stops_before_any_commit() -> None:
    r = rig(fail=frozenset({b"a"}))
    r.consume(TP, 0, b"a")

    with pytest.raises(DeliveryError, match="timed out"):
        r.delivery.close()

    assert "commit" not in r.log.names()
