"""One commit protocol for everything that consumes, produces and commits: the service and replay.

Every commit, periodic or on revoke or close, is one sequence owned here: flush (or
serve) the producer's acknowledgements -> settle the records the broker refused, through
the owner's `on_refusal` handler (it sends each one's dead letter back through `send`)
-> flush again -> commit. So a refused record's replacement is accounted for before any
offset past it is committed, and no caller touches the producer around the sequence.

At-least-once (the default): an offset is committed only once it and every earlier offset
of its partition are done, meaning the output record of each (enriched event, dead letter
or replayed record) was acknowledged by the broker; an offset given two outputs (an
enriched event and its review copy, `expect`) is done once both were. Commits go out asynchronously once the
committable offsets advance (no closer together than `commit_interval_s`), and
synchronously when partitions are revoked and at close. An asynchronous commit the
broker failed is sent again on the next round, and in any case by the synchronous one.

Exactly-once (opt-in): a transactional producer; outputs and the offsets they account for
are committed in one transaction every `commit_interval_s`, and readers that use
`isolation.level=read_committed` see each output once. A record the broker refuses inside
a transaction dooms it: the transaction is aborted, its other outputs are sent again in
the next one (`transactions.py` keeps them until their transaction commits), and the refused record's
dead letter goes with them. A member fenced by a newer incarnation of itself, or by a
rebalance it slept through, cannot commit: its transaction fails, it aborts and stops, and
its successor redoes the work.

Revoked partitions are committed before they are let go. Lost partitions (the group moved
on without this member, e.g. after a broker stall longer than the session timeout) are
forgotten and never committed: someone else owns them now.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Generic, Protocol, TypeVar

import structlog
from confluent_kafka import KafkaError, Message

from prodcat.consumer.offsets import OffsetTracker, PartitionOffsets, TopicPartitionKey
from prodcat.consumer.sink import RECORD_LEVEL_ERRORS, DeliveryCallback, Headers
from prodcat.consumer.transactions import OpenTransaction, Output, Refusal
from prodcat.errors import DeliveryError

__all__ = ["CommitSource", "Delivery", "RecordSink", "Refusal"]

log = structlog.get_logger(__name__)

R = TypeVar("R")
# The least spacing of transactions: each one is a broker round trip and a producer flush.
MIN_TRANSACTION_INTERVAL_S = 0.1


class CommitSource(Protocol):
    """What delivery needs of the consumer (`KafkaSource`)."""

    def commit(self, offsets: Mapping[TopicPartitionKey, int], *, asynchronous: bool) -> bool: ...
    def take_failed_commits(self) -> set[TopicPartitionKey]: ...
    def group_metadata(self) -> object: ...


class RecordSink(Protocol):
    """What delivery needs of the producer (`KafkaSink`)."""

    def produce(
        self,
        topic: str,
        value: bytes,
        key: bytes | None,
        headers: Headers | None,
        on_delivery: DeliveryCallback,
    ) -> int | None: ...
    def poll(self, timeout_s: float = 0.0) -> None: ...
    def flush(self, timeout_s: float) -> None: ...
    def init_transactions(self, timeout_s: float) -> None: ...
    def begin_transaction(self) -> None: ...
    def commit_transaction(
        self, offsets: Mapping[TopicPartitionKey, int], group_metadata: object, timeout_s: float
    ) -> None: ...
    def abort_transaction(self, timeout_s: float) -> None: ...


class Delivery(Generic[R]):
    def __init__(
        self,
        source: CommitSource,
        sink: RecordSink,
        *,
        on_refusal: Callable[[Refusal[R]], None],
        exactly_once: bool = False,
        commit_interval_s: float = 1.0,
        timeout_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        """`on_refusal` settles a record the broker refused: another output through `send`, or `settle`."""
        self._source = source
        self._sink = sink
        self._on_refusal = on_refusal
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
        self._transaction: OpenTransaction[R] = OpenTransaction(self._fail)
        self._last_commit = clock()
        self.acknowledged: Counter[str] = Counter()
        """Outputs the broker acknowledged (exactly-once: and committed), by the kind the caller gave them."""

    def start(self) -> None:
        if self._exactly_once:
            # Fences any older producer with the same transactional id (a zombie of this member).
            self._sink.init_transactions(self._timeout_s)

    def track(self, tp: TopicPartitionKey, offset: int) -> PartitionOffsets:
        """Registers a consumed offset, in consume order; the returned handle settles it later."""
        return self._offsets.track(tp, offset)

    def expect(self, state: PartitionOffsets, offset: int, outputs: int) -> None:
        """The offset will have `outputs` outputs (each sent, or settled in its place); before the first."""
        state.expect(offset, outputs)

    def settle(self, state: PartitionOffsets, offset: int) -> None:
        """The offset needs no (more) output (replay skipping a dead letter of another kind; a review
        copy not sent because the enriched event was refused)."""
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

        A refusal the broker reports later goes to `on_refusal`, with `ref`, before any commit.
        """
        if self._exactly_once:
            self._begin()
            code = self._sink.produce(topic, value, key, headers, self._transaction.callback(kind, ref))
            if code is None:
                self._transaction.add(Output(kind, ref, topic, value, key, headers))
                # Inside a transaction the offset and the record commit together, or neither does.
                state.mark_done(offset)
            return code
        return self._sink.produce(topic, value, key, headers, self._callback(state, offset, kind, ref))

    def _callback(self, state: PartitionOffsets, offset: int, kind: str, ref: R) -> DeliveryCallback:
        def delivered(error: KafkaError | None, message: Message) -> None:
            if error is None:
                state.mark_done(offset)
                self.acknowledged[kind] += 1
            elif error.code() in RECORD_LEVEL_ERRORS:
                self._refused.append(Refusal(ref, error.code(), error.str()))
            else:
                self._fail(message, error)

        return delivered

    def _fail(self, message: Message, error: KafkaError) -> None:
        if self._failure is None:
            self._failure = DeliveryError(
                f"delivery to {message.topic()} failed: {error.str()}",
                code=error.code(),
                retriable=error.retriable(),
            )

    def poll(self, timeout_s: float = 0.0) -> None:
        """Serves acknowledgements for up to `timeout_s` (a caller with nothing else to do waits here)."""
        self._sink.poll(timeout_s)

    def service(self) -> None:
        """Serves acknowledgements, raises a delivery failure, settles refusals, commits what advanced."""
        self._sink.poll(0)
        self._raise_failure()
        if not self._exactly_once:
            self._settle_refusals()
            # Sent again below although they did not advance: the broker never took them.
            self._offsets.commit_again(self._source.take_failed_commits())
        if self._clock() - self._last_commit >= self._interval_s:
            self._commit(asynchronous=True)

    def pending(self) -> int:
        return self._offsets.pending()

    def committed_offsets(self) -> dict[TopicPartitionKey, int]:
        return self._offsets.committed_offsets()

    def revoke(self, partitions: set[TopicPartitionKey]) -> None:
        """The commit sequence for the revoked partitions, then forgets them."""
        self._settled_and_flushed()
        self._commit(asynchronous=False, partitions=partitions)
        self._offsets.forget(partitions)

    def lose(self, partitions: set[TopicPartitionKey]) -> None:
        """Forgets lost partitions without committing them."""
        self._offsets.forget(partitions)
        if self._exactly_once and self._in_transaction:
            # The open transaction holds outputs of partitions this member no longer owns;
            # its offsets can no longer be committed, so nothing in it may be.
            self._abort()
            raise DeliveryError(
                "partitions were lost with a transaction open; aborted it, the group redoes the work",
                code=KafkaError._ASSIGNMENT_LOST,
                retriable=True,
            )

    def close(self) -> None:
        """The commit sequence for everything done; raises when outputs stayed unacknowledged."""
        self._settled_and_flushed()
        self._commit(asynchronous=False)

    def abandon(self) -> None:
        """After a failure: nothing more is committed; an open transaction is aborted."""
        if self._exactly_once and self._in_transaction:
            try:
                self._abort()
            except DeliveryError as exc:
                log.warning("transaction_abort_failed", error=str(exc))

    def _settled_and_flushed(self) -> None:
        """Flush -> settle refusals -> flush, until no refusal is left (exactly-once: see _commit)."""
        self._sink.flush(self._timeout_s)
        self._raise_failure()
        while not self._exactly_once and self._refused:
            self._settle_refusals()
            self._sink.flush(self._timeout_s)
            self._raise_failure()

    def _settle_refusals(self) -> None:
        refused, self._refused = self._refused, []
        for refusal in refused:
            self._on_refusal(refusal)

    def _commit(self, *, asynchronous: bool, partitions: set[TopicPartitionKey] | None = None) -> None:
        self._last_commit = self._clock()
        if self._exactly_once:
            if not self._in_transaction:
                return
            self._sink.flush(self._timeout_s)
            self._raise_failure()
            self._retry_doomed_transaction()
            offsets = self._offsets.to_commit()
            try:
                self._sink.commit_transaction(offsets, self._source.group_metadata(), self._timeout_s)
            except DeliveryError:
                self.abandon()
                raise
            self._in_transaction = False
            self.acknowledged.update(self._transaction.committed())
        else:
            offsets = self._offsets.to_commit(partitions, again=not asynchronous)
            if not offsets or not self._source.commit(offsets, asynchronous=asynchronous):
                return
        self._offsets.committed(offsets)
        if self._on_commit is not None:
            self._on_commit()

    def _retry_doomed_transaction(self) -> None:
        """While the broker refused records of the open transaction: abort it, send its other
        outputs again in a new one with the refused records' replacements, flush."""
        transaction = self._transaction
        while transaction.refused:
            log.warning(
                "transaction_aborted_for_refused_records",
                refused=len(transaction.refused),
                outputs=len(transaction.outputs),
            )
            outputs, refused = self._abort()
            self._begin()
            for index, output in enumerate(outputs):
                if index in refused:
                    continue
                code = self._sink.produce(
                    output.topic,
                    output.value,
                    output.key,
                    output.headers,
                    transaction.callback(output.kind, output.ref),
                )
                if code is not None:
                    raise DeliveryError(
                        f"an output accepted before was refused when sent again (code {code})", code=code
                    )
                transaction.add(output)
            for refusal in refused.values():
                self._on_refusal(refusal)
            self._sink.flush(self._timeout_s)
            self._raise_failure()

    def _begin(self) -> None:
        if not self._in_transaction:
            self._sink.begin_transaction()
            self._in_transaction = True

    def _abort(self) -> tuple[list[Output[R]], dict[int, Refusal[R]]]:
        """Aborts the open transaction; returns its outputs and refusals."""
        self._in_transaction = False
        self._sink.abort_transaction(self._timeout_s)
        return self._transaction.aborted()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure
