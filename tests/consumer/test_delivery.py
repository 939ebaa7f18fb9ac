"""Delivery alone, against strict fakes of the consumer and producer: the commit sequence.

The fakes keep one log of every call in order, so a test can say what happened before what.
A record the fake broker refuses is reported in its delivery callback, as librdkafka does.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from prodcat.consumer.delivery import CommitSource, Delivery, RecordSink, Refusal
from prodcat.consumer.offsets import PartitionOffsets, TopicPartitionKey
from prodcat.errors import DeliveryError
from tests.kafka_fakes import FakeSink, FakeSource, Log

TP: TopicPartitionKey = ("raw", 0)
OTHER: TopicPartitionKey = ("raw", 1)
# The input's offset handle and offset, and what was sent for it: "enriched", "letter" or "bare".
Ref = tuple[PartitionOffsets, int, str]


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
