"""The dead-letter router: every record whose output cannot be built or delivered gets a letter.

A letter the producer refuses (its key or headers made it too large) goes again without
them; a bare letter refused too is a broker-level failure. Records the broker refuses
later come back from delivery (`settle`), before it commits anything past them.
"""

from __future__ import annotations

from typing import Literal

import structlog
from confluent_kafka import KafkaError

from prodcat.consumer.delivery import Delivery, Refusal
from prodcat.consumer.engine.records import Accepted
from prodcat.consumer.outputs import dead_letter
from prodcat.errors import DeliveryError
from prodcat.schemas.events import ErrorKind

log = structlog.get_logger(__name__)

ENRICHED = "enriched"
# An enriched event's copy on the review topic: a second output of its offset, not a record's outcome.
REVIEW = "review"
Sent = Literal["enriched", "review", "letter", "bare"]
# What delivery hands back with a refusal: the input record and what was sent for it.
Ref = tuple[Accepted, Sent]


class DeadLetterRouter:
    def __init__(self, delivery: Delivery[Ref], *, topic: str, group: str, limit: int) -> None:
        self._delivery = delivery
        self._topic = topic
        self._group = group
        self._limit = limit

    def send(self, record: Accepted, kind: ErrorKind, message: str, *, bare: bool = False) -> None:
        log.warning(
            "dead_lettered",
            kind=kind.value,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            reason=message[:200],
        )
        letter = dead_letter(
            kind=kind,
            message=message,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=None if bare else record.key,
            value=record.value,
            headers=None if bare else record.headers,
            group=self._group,
            limit=0 if bare else self._limit,
        )
        code = self._delivery.send(
            record.state,
            record.offset,
            kind.value,
            (record, "bare" if bare else "letter"),
            self._topic,
            letter,
            None if bare else record.key,
            None if bare else record.headers,
        )
        if code is not None:
            self._letter_refused(record, kind, message, code, bare=bare)

    def output_refused(self, record: Accepted, code: int, reason: str) -> None:
        """The enriched event was refused: the record is dead-lettered with the reason."""
        kind = (
            ErrorKind.OUTPUT_TOO_LARGE if code == KafkaError.MSG_SIZE_TOO_LARGE else ErrorKind.UNDELIVERABLE
        )
        self.send(record, kind, f"{reason}: {KafkaError(code).str()}")

    def settle(self, refusal: Refusal[Ref]) -> None:
        """Delivery's refusal handler: another output for a record the broker refused."""
        record, sent = refusal.ref
        if sent == ENRICHED:
            self.output_refused(record, refusal.code, "the broker refused the enriched event")
        elif sent == REVIEW:
            # The enriched event stands; the dead letter keeps the lost review copy visible.
            self.output_refused(record, refusal.code, "the broker refused the review copy")
        else:
            self._letter_refused(
                record, ErrorKind.UNDELIVERABLE, refusal.reason, refusal.code, bare=sent == "bare"
            )

    def _letter_refused(
        self, record: Accepted, kind: ErrorKind, message: str, code: int, *, bare: bool
    ) -> None:
        if bare:
            raise DeliveryError(
                f"even a bare dead letter for {record.topic}[{record.partition}]@{record.offset} "
                f"was refused: {KafkaError(code).str()}",
                code=code,
            )
        # Only the key or headers can have made it too large: send the letter without them.
        self.send(record, kind, message, bare=True)
