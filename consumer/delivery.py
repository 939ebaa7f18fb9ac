"""One commit protocol for everything that consumes, produces and commits: the service and replay.

At-least-once (the default): an offset is committed only once it and every earlier offset
of its partition are done, meaning the output record of each (enriched event, dead letter
or replayed record) was acknowledged by the broker. Commits go out asynchronously as soon
as the committable offsets advance (no closer together than `commit_interval_s`), so a
crash re-emits roughly what was in flight, and synchronously when partitions are revoked
and at close, after the producer has been flushed.

Exactly-once (opt-in): a transactional producer; outputs and the offsets they account for
are committed in one transaction every `commit_interval_s`, and readers that use
`isolation.level=read_committed` see each output once. A member fenced by a newer
incarnation of itself, or by a rebalance it slept through, cannot commit: its transaction
fails, it aborts and stops, and its successor redoes the work.

Revoked partitions are drained and committed before they are let go. Lost partitions (the
group moved on without this member, e.g. after a broker stall longer than the session
timeout) are forgotten and never committed: someone else owns them now.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import structlog
from confluent_kafka import KafkaError, Message

from prodcat.consumer.offsets import OffsetTracker, PartitionOffsets, TopicPartitionKey
from prodcat.consumer.sink import RECORD_LEVEL_ERRORS, Headers, KafkaSink
from prodcat.consumer.source import KafkaSource
from prodcat.errors import DeliveryError

log = structlog.get_logger(__name__)

R = TypeVar("R")
# The least spacing of transactions: each one is a broker round trip and a producer flush.
MIN_TRANSACTION_INTERVAL_S = 0.1


@dataclass(frozen=True, slots=True)
class Refusal(Generic[R]):
    """A record the broker refused on its own account; `ref` is the caller's handle on its input."""

    ref: R
    code: int
    reason: str


class Delivery(Generic[R]):
    def __init__(
        self,
        source: KafkaSource,
        sink: KafkaSink,
        *,
        exactly_once: bool = False,
        commit_interval_s: float = 0.0,
        timeout_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self._source = source
        self._sink = sink
        self._exactly_once = exactly_once
        self._interval_s = (
            max(commit_interval_s, MIN_TRANSACTION_INTERVAL_S) if exactly_once else commit_interval_s
        )
        self._timeout_s = timeout_s
        self._clock = clock
        self._on_commit = on_commit
        self._offsets = OffsetTracker()
        self._failure: DeliveryError | None = None
        self._refused: list[Refusal[R]] = []
        self._in_transaction = False
        self._last_commit = clock()
        self.acknowledged: Counter[str] = Counter()
        """Outputs the broker acknowledged, by the kind the caller gave them."""

    @property
    def sink(self) -> KafkaSink:
        return self._sink

    def start(self) -> None:
        if self._exactly_once:
            # Fences any older producer with the same transactional id (a zombie of this member).
            self._sink.init_transactions(self._timeout_s)

    def track(self, tp: TopicPartitionKey, offset: int) -> PartitionOffsets:
        """Registers a consumed offset, in consume order; the returned handle settles it later."""
        return self._offsets.track(tp, offset)

    def settle(self, state: PartitionOffsets, offset: int) -> None:
        """The offset needs no output (replay skipping a dead letter of another kind)."""
        state.mark_done(offset)

    def send(
        self,
        state: PartitionOffsets,
        offset: int,
        kind: str,
        ref: R,
        topic: str,
        value: bytes,
        key: bytes | None,
        headers: Headers | None,
    ) -> int | None:
        """Produces the output of one consumed offset; returns a record-level refusal's code at once.

        A refusal reported later by the broker comes back from `refusals()`, with `ref`.
        """
        if self._exactly_once and not self._in_transaction:
            self._sink.begin_transaction()
            self._in_transaction = True
        code = self._sink.produce(topic, value, key, headers, self._callback(state, offset, kind, ref))
        if code is None and self._exactly_once:
            # Inside a transaction the offset and the record commit together, or neither does.
            state.mark_done(offset)
        return code

    def _callback(
        self, state: PartitionOffsets, offset: int, kind: str, ref: R
    ) -> Callable[[KafkaError | None, Message], None]:
        def delivered(error: KafkaError | None, message: Message) -> None:
            if error is None:
                if not self._exactly_once:
                    state.mark_done(offset)
                self.acknowledged[kind] += 1
            elif error.code() in RECORD_LEVEL_ERRORS and not self._exactly_once:
                self._refused.append(Refusal(ref, error.code(), error.str()))
            elif self._failure is None:
                self._failure = DeliveryError(
                    f"delivery to {message.topic()} failed: {error.str()}",
                    code=error.code(),
                    retriable=error.retriable(),
                )

        return delivered

    def refusals(self) -> list[Refusal[R]]:
        """Records the broker refused since the last call; each must get another output or settle."""
        refused, self._refused = self._refused, []
        return refused

    def service(self) -> None:
        """Serves acknowledgements, raises a delivery failure, commits what advanced."""
        self._sink.poll(0)
        self._raise_failure()
        if self._clock() - self._last_commit >= self._interval_s:
            self._commit(asynchronous=True)

    def pending(self) -> int:
        return self._offsets.pending()

    def committed_offsets(self) -> dict[TopicPartitionKey, int]:
        return self._offsets.committed_offsets()

    def revoke(self, partitions: set[TopicPartitionKey]) -> None:
        """Flushes, commits the revoked partitions synchronously, forgets them."""
        self._sink.flush(self._timeout_s)
        self._raise_failure()
        self._commit(asynchronous=False, partitions=partitions)
        self._offsets.forget(partitions)

    def lose(self, partitions: set[TopicPartitionKey]) -> None:
        """Forgets lost partitions without committing them."""
        self._offsets.forget(partitions)
        if self._exactly_once and self._in_transaction:
            # The open transaction holds outputs of partitions this member no longer owns;
            # its offsets can no longer be committed, so nothing in it may be.
            self._sink.abort_transaction(self._timeout_s)
            self._in_transaction = False
            raise DeliveryError(
                "partitions were lost with a transaction open; aborted it, the group redoes the work",
                code=KafkaError._ASSIGNMENT_LOST,
                retriable=True,
            )

    def close(self) -> None:
        """Flushes and commits everything done; raises when outputs stayed unacknowledged."""
        self._sink.flush(self._timeout_s)
        self._raise_failure()
        self._commit(asynchronous=False)

    def abandon(self) -> None:
        """After a failure: nothing more is committed; an open transaction is aborted."""
        if self._exactly_once and self._in_transaction:
            try:
                self._sink.abort_transaction(self._timeout_s)
            except DeliveryError as exc:
                log.warning("transaction_abort_failed", error=str(exc))
            self._in_transaction = False

    def _commit(self, *, asynchronous: bool, partitions: set[TopicPartitionKey] | None = None) -> None:
        self._last_commit = self._clock()
        if self._exactly_once:
            if not self._in_transaction:
                return
            offsets = self._offsets.to_commit()
            try:
                self._sink.commit_transaction(offsets, self._source.group_metadata(), self._timeout_s)
            except DeliveryError:
                self.abandon()
                raise
            self._in_transaction = False
        else:
            offsets = self._offsets.to_commit(partitions, again=not asynchronous)
            if not offsets or not self._source.commit(offsets, asynchronous=asynchronous):
                return
        self._offsets.committed(offsets)
        if self._on_commit is not None:
            self._on_commit()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure
