"""Intake: a poll's messages become tracked, validated, tokenized records in the grouper.

Each record's offset is tracked at once (in consume order), its value validated from the
bytes; a rejected record is dead-lettered, a valid one tokenized for the current model,
given its slot in the partition's queue and added to the length grouper. A model swap
re-tokenizes what the grouper still holds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from confluent_kafka import Message

from prodcat.consumer.batcher import LengthGrouper
from prodcat.consumer.delivery import Delivery
from prodcat.consumer.engine.breaker import FailureBreaker
from prodcat.consumer.engine.dead_letters import DeadLetterRouter, Ref
from prodcat.consumer.engine.records import SETTLED, Accepted, Encoded, Slot, Valid
from prodcat.consumer.engine.reorder import ReorderBuffer
from prodcat.consumer.engine.tokenize import TokenizerStage
from prodcat.consumer.offsets import TopicPartitionKey
from prodcat.consumer.parse import Rejection, parse_event
from prodcat.model.runtime import ServingModel
from prodcat.schemas.events import ErrorKind


class Intake:
    def __init__(
        self,
        *,
        delivery: Delivery[Ref],
        dead_letters: DeadLetterRouter,
        tokenizer: TokenizerStage,
        breaker: FailureBreaker,
        reorder: ReorderBuffer,
        grouper: LengthGrouper[Encoded],
        limit: int,
        clock: Callable[[], float],
    ) -> None:
        self._delivery = delivery
        self._dead_letters = dead_letters
        self._tokenizer = tokenizer
        self._breaker = breaker
        self._reorder = reorder
        self._grouper = grouper
        self._limit = limit
        self._clock = clock

    def admit(self, messages: list[Message], model: ServingModel) -> None:
        now = self._clock()
        track, limit = self._delivery.track, self._limit
        valid: list[Valid] = []
        for message in messages:
            # A message without an error always carries its position; the stubs cannot know that.
            tp: TopicPartitionKey = (message.topic(), message.partition())  # type: ignore[assignment]
            offset: int = message.offset()  # type: ignore[assignment]
            record = Accepted(
                topic=tp[0],
                partition=tp[1],
                offset=offset,
                key=message.key(),
                value=message.value(),
                headers=message.headers(),  # type: ignore[arg-type]
                timestamp_ms=message.timestamp()[1],
                accepted_at=now,
                state=track(tp, offset),
            )
            parsed = parse_event(record.value, limit)
            if isinstance(parsed, Rejection):
                self._dead_letters.send(record, parsed.kind, parsed.message)
                continue
            extra = parsed.model_extra
            valid.append(Valid(record, parsed.title, extra is not None and "classification" in extra))
        self._group([self._reorder.reserve(v) for v in valid], model)

    def reencode(self, model: ServingModel) -> None:
        """Between batches: what the device has not been handed yet is re-tokenized for `model`."""
        self._group([encoded.slot for encoded in self._grouper.take_all()], model)

    def _group(self, slots: Sequence[Slot], model: ServingModel) -> None:
        encoded = self._tokenizer.encode(model, [slot.valid.title for slot in slots])
        failures = [ids for ids in encoded if isinstance(ids, Exception)]
        if failures:
            self._breaker.failed(
                len(failures),
                others_succeeded=len(failures) < len(slots),
                last_error=failures[-1],
                what="to tokenize",
            )
        settled: list[Slot] = []
        add = self._grouper.add
        for slot, ids in zip(slots, encoded, strict=True):
            if isinstance(ids, Exception):
                self._dead_letters.send(
                    slot.valid.record, ErrorKind.UNENCODABLE, f"{type(ids).__name__}: {ids}"
                )
                settled.append(slot)
                continue
            add(Encoded(slot, ids), len(ids))
        if settled:
            # Dead-lettered here; their places in the partition queues must not block.
            self._reorder.finish((slot, SETTLED) for slot in settled)
