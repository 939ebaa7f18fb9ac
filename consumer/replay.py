"""Dead-letter replay: send dead-lettered events back to the topic they came from.

After the cause is fixed (a model that failed on some titles, a producer bug fixed
upstream), the original bytes, key and headers of each dead letter of the chosen kinds
go back to their source topic, for the categorizer to try again. Progress is a consumer
group per kind selection, committed only after the re-sent record is acknowledged, so
a second run continues where the first stopped and never re-sends what it already did.
A run ends once the dead-letter topic has been quiet for `idle_s`: the one end signal
that holds on every broker (Tansu's watermarks cannot be trusted).
"""

from __future__ import annotations

import base64
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog
from pydantic import ValidationError

from prodcat.consumer.config import ConsumerSettings
from prodcat.consumer.offsets import OffsetTracker, TopicPartitionKey
from prodcat.consumer.service import group_consumer_config, kafka_client_config
from prodcat.consumer.sink import KafkaSink
from prodcat.consumer.source import KafkaSource, Record
from prodcat.errors import BrokerError
from prodcat.schemas.events import DeadLetterEvent, ErrorKind

log = structlog.get_logger(__name__)

POLL_S = 0.2
JOIN_TIMEOUT_S = 60.0


@dataclass
class ReplaySummary:
    replayed: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    # Records on the dead-letter topic that are not dead letters at all.
    unreadable: int = 0


def replay_group(settings: ConsumerSettings, kinds: frozenset[ErrorKind]) -> str:
    """One group per selection, so replaying one kind leaves the others' progress alone."""
    return f"{settings.group_id}.replay.{'+'.join(sorted(k.value for k in kinds))}"


def replay_dead_letters(
    settings: ConsumerSettings,
    kinds: frozenset[ErrorKind],
    *,
    idle_s: float = 5.0,
    dry_run: bool = False,
    clock: Callable[[], float] = time.monotonic,
) -> ReplaySummary:
    """Re-sends dead letters of `kinds` to their source topics; returns what it did."""
    sink = KafkaSink(kafka_client_config(settings))
    offsets = OffsetTracker()
    summary = ReplaySummary()

    def commit(partitions: set[TopicPartitionKey] | None = None) -> None:
        if dry_run:
            return
        sink.flush(settings.shutdown_timeout_s)
        done = offsets.to_commit(partitions)
        source.commit(done)
        offsets.committed(done)

    def on_revoke(partitions: set[TopicPartitionKey]) -> None:
        commit(partitions)
        offsets.forget(partitions)

    source = KafkaSource(
        group_consumer_config(settings, group_id=replay_group(settings, kinds), auto_offset_reset="earliest"),
        [settings.dead_letter_topic],
        on_revoke=on_revoke,
    )
    source.start()
    try:
        started = quiet_since = clock()
        while clock() - quiet_since < idle_s:
            records = source.poll(500, POLL_S)
            if not source.assigned:
                # Quiet only counts once the group has handed out partitions (joining can take
                # seconds); a topic that never gets any is an error, not an empty replay.
                if clock() - started > JOIN_TIMEOUT_S:
                    raise BrokerError(
                        f"no partition of {settings.dead_letter_topic} was assigned within "
                        f"{JOIN_TIMEOUT_S:.0f}s; does the topic exist?"
                    )
                quiet_since = clock()
            if records:
                quiet_since = clock()
            for record in records:
                offsets.track(record.tp, record.offset)
                _replay_one(record, kinds, sink, offsets, summary, dry_run=dry_run)
            sink.poll(0)
        commit()
    finally:
        source.close()
        sink.close()
    log.info(
        "replay_finished",
        replayed=dict(summary.replayed),
        skipped=dict(summary.skipped),
        unreadable=summary.unreadable,
        dry_run=dry_run,
    )
    return summary


def _replay_one(
    record: Record,
    kinds: frozenset[ErrorKind],
    sink: KafkaSink,
    offsets: OffsetTracker,
    summary: ReplaySummary,
    *,
    dry_run: bool,
) -> None:
    def done() -> None:
        offsets.mark_done(record.tp, record.offset)

    try:
        letter = DeadLetterEvent.model_validate_json(record.value or b"")
    except ValidationError:
        log.warning("replay_unreadable_record", partition=record.partition, offset=record.offset)
        summary.unreadable += 1
        done()
        return
    if letter.error_kind not in kinds:
        summary.skipped[letter.error_kind.value] += 1
        done()
        return
    summary.replayed[letter.error_kind.value] += 1
    if dry_run:
        return
    key = base64.b64decode(letter.original_key_b64) if letter.original_key_b64 is not None else None
    sink.produce(
        letter.source_topic,
        base64.b64decode(letter.original_value_b64),
        key=key,
        headers=record.headers,
        on_ack=done,
    )
