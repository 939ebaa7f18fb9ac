"""Dead-letter replay: send dead-lettered events back to the topic they came from.

After the cause is fixed (a model that failed on some titles, a producer bug fixed
upstream), the original bytes, key and headers of each dead letter of the chosen kinds
go back to their source topic, for the categorizer to try again. Progress is a consumer
group per kind selection, committed through the same delivery object as the service's:
an offset is committed once its re-sent record is acknowledged, as the run goes, and the
next poll waits until every record sent so far is acknowledged, so a crash mid-run
re-sends at most two polls' worth (the one in flight, and the one before it if its commit
was still on the way) and a second run continues where the first stopped. A letter that
carries only the start of a value too large for it cannot be replayed; it is counted and
skipped.

A run ends once every partition has reached the end offset the dead-letter topic had when
the run started. Where the broker's watermarks prove wrong (a record at or past the
reported end, as the embedded broker gives), it ends once the topic has been quiet for
`idle_s` instead.
"""

from __future__ import annotations

import base64
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog
from confluent_kafka import Message
from pydantic import ValidationError

from prodcat.consumer.client_config import group_consumer_config, kafka_client_config
from prodcat.consumer.config import ConsumerSettings
from prodcat.consumer.delivery import Delivery, Refusal
from prodcat.consumer.offsets import PartitionOffsets, TopicPartitionKey
from prodcat.consumer.sink import Headers, KafkaSink
from prodcat.consumer.source import KafkaSource
from prodcat.errors import BrokerError
from prodcat.schemas.events import DeadLetterEvent, ErrorKind

log = structlog.get_logger(__name__)

# What delivery hands back with a refusal: the re-sent letter's offset, to settle it.
Ref = tuple[PartitionOffsets, int]
POLL_S = 0.2
POLL_RECORDS = 500
JOIN_TIMEOUT_S = 60.0


@dataclass
class ReplaySummary:
    replayed: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    # Records on the dead-letter topic that are not dead letters at all.
    unreadable: int = 0
    # Letters whose original value was truncated to fit, or refused by the source topic.
    unreplayable: int = 0


def replay_group(settings: ConsumerSettings, kinds: frozenset[ErrorKind]) -> str:
    """One group per selection, so replaying one kind leaves the others' progress alone."""
    return f"{settings.group_id}.replay.{'+'.join(sorted(k.value for k in kinds))}"


class _Progress:
    """Where each partition stands against the end offsets captured at start."""

    def __init__(self, ends: dict[TopicPartitionKey, int]) -> None:
        self.ends = ends
        self.positions: dict[TopicPartitionKey, int] = {}
        self.trusted = True

    def seen(self, tp: TopicPartitionKey, offset: int) -> None:
        self.positions[tp] = offset + 1
        if offset >= self.ends.get(tp, 0):
            self.trusted = False

    def at_end(self, assigned: set[TopicPartitionKey]) -> bool:
        return (
            self.trusted
            and bool(assigned)
            and all(self.positions.get(tp, 0) >= self.ends.get(tp, 0) for tp in assigned)
        )


def replay_dead_letters(
    settings: ConsumerSettings,
    kinds: frozenset[ErrorKind],
    *,
    idle_s: float = 5.0,
    dry_run: bool = False,
    clock: Callable[[], float] = time.monotonic,
) -> ReplaySummary:
    """Re-sends dead letters of `kinds` to their source topics; returns what it did."""
    summary = ReplaySummary()
    delivery: Delivery[Ref]

    def on_assign(partitions: set[TopicPartitionKey]) -> None:
        progress.positions.update(source.committed_positions(partitions))

    def on_revoke(partitions: set[TopicPartitionKey]) -> None:
        if not dry_run:
            delivery.revoke(partitions)

    source = KafkaSource(
        group_consumer_config(settings, group_id=replay_group(settings, kinds), auto_offset_reset="earliest"),
        [settings.dead_letter_topic],
        on_assign=on_assign,
        on_revoke=on_revoke,
        on_lost=lambda partitions: delivery.lose(partitions),
    )

    def refused(refusal: Refusal[Ref]) -> None:
        summary.unreplayable += 1
        log.warning("replay_refused", reason=refusal.reason)
        delivery.settle(*refusal.ref)

    sink = KafkaSink(kafka_client_config(settings))
    delivery = Delivery(
        source,
        sink,
        on_refusal=refused,
        # Every poll's progress, at once: polls are already spaced by waiting for their
        # acknowledgements, and a killed run then re-sends at most two polls.
        commit_interval_s=0.0,
        timeout_s=settings.shutdown_timeout_s,
    )
    source.start()
    progress = _Progress(source.end_offsets(settings.dead_letter_topic))
    failing = False
    try:
        started = quiet_since = clock()
        while clock() - quiet_since < idle_s and not progress.at_end(source.assigned):
            if delivery.pending() and not dry_run:
                # Without this wait, polls outrun acknowledgements and a crash re-sends them all.
                delivery.poll(POLL_S)
                delivery.service()
                quiet_since = clock()
                continue
            messages = source.poll(POLL_RECORDS, POLL_S)
            if not source.assigned:
                # Quiet only counts once the group has handed out partitions (joining can take
                # seconds); a topic that never gets any is an error, not an empty replay.
                if clock() - started > JOIN_TIMEOUT_S:
                    raise BrokerError(
                        f"no partition of {settings.dead_letter_topic} was assigned within "
                        f"{JOIN_TIMEOUT_S:.0f}s; does the topic exist?"
                    )
                quiet_since = clock()
            if messages:
                quiet_since = clock()
            for message in messages:
                tp = (message.topic(), message.partition())
                offset: int = message.offset()  # type: ignore[assignment]
                progress.seen(tp, offset)  # type: ignore[arg-type]
                state = delivery.track(tp, offset)  # type: ignore[arg-type]
                _replay_one(message, state, offset, kinds, delivery, summary, dry_run=dry_run)
            if dry_run:
                delivery.poll(0)
                continue
            delivery.service()
        ended_by = "end offsets" if progress.at_end(source.assigned) else "quiet"
        if not dry_run:
            delivery.close()
    except BaseException:
        failing = True
        raise
    finally:
        source.close()
        sink.close(discard=failing)
    log.info(
        "replay_finished",
        replayed=dict(summary.replayed),
        skipped=dict(summary.skipped),
        unreadable=summary.unreadable,
        unreplayable=summary.unreplayable,
        dry_run=dry_run,
        ended_by=ended_by,
    )
    return summary


def _replay_one(
    message: Message,
    state: PartitionOffsets,
    offset: int,
    kinds: frozenset[ErrorKind],
    delivery: Delivery[Ref],
    summary: ReplaySummary,
    *,
    dry_run: bool,
) -> None:
    try:
        letter = DeadLetterEvent.model_validate_json(message.value() or b"")
    except ValidationError:
        log.warning("replay_unreadable_record", partition=message.partition(), offset=offset)
        summary.unreadable += 1
        delivery.settle(state, offset)
        return
    kind = letter.error_kind.value
    if letter.error_kind not in kinds:
        summary.skipped[kind] += 1
        delivery.settle(state, offset)
        return
    if letter.original_value_truncated:
        log.warning("replay_truncated_letter", partition=message.partition(), offset=offset)
        summary.unreplayable += 1
        delivery.settle(state, offset)
        return
    summary.replayed[kind] += 1
    if dry_run:
        return
    key = base64.b64decode(letter.original_key_b64) if letter.original_key_b64 is not None else None
    value = base64.b64decode(letter.original_value_b64)
    headers: Headers | None = message.headers()  # type: ignore[assignment]
    if (
        delivery.send(state, offset, kind, (state, offset), letter.source_topic, value, key, headers)
        is not None
    ):
        summary.replayed[kind] -= 1
        summary.unreplayable += 1
        delivery.settle(state, offset)
