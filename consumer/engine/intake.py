"""Intake: a poll's messages become tracked, validated, tokenized records in the grouper.

Each record's offset is tracked at once (in consume order) and its value validated from
the bytes; a rejected record is dead-lettered, a valid one gets its slot in the
partition's queue and goes to the tokenizer stage. Tokenized records join the length
grouper; ids made for a model that has been swapped out since are made again for the
current one, and so is what the grouper still holds when the model is swapped.
"""

from __future__ import annotations

from collections.abc import Callable

from confluent_kafka import Message

from prodcat.consumer.batcher import LengthGrouper
from prodcat.consumer.classify.provider import ModelSource
from prodcat.consumer.delivery import Delivery
from prodcat.consumer.engine.breaker import FailureBreaker
from prodcat.consumer.engine.dead_letters import DeadLetterRouter, Ref
from prodcat.consumer.engine.records import SETTLED, Accepted, Encoded, Slot, Valid
from prodcat.consumer.engine.reorder import ReorderBuffer
from prodcat.consumer.engine.tokenize import Tokenization, TokenizerStage
from prodcat.consumer.offsets import TopicPartitionKey
from prodcat.consumer.parse import Rejection, parse_event
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
        models: ModelSource,
        limit: int,
        clock: Callable[[], float],
    ) -> None:
        self._delivery = delivery
        self._dead_letters = dead_letters
        self._tokenizer = tokenizer
        self._breaker = breaker
        self._reorder = reorder
        self._grouper = grouper
        self._models = models
        self._limit = limit
        self._clock = clock

    @property
    def tokenizing(self) -> int:
        """Records handed to the tokenizer stage and not yet in the grouper."""
        return self._tokenizer.outstanding

    def admit(self, messages: list[Message]) -> None:
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
        self._tokenizer.submit(self._models.current, [self._reorder.reserve(v) for v in valid])

    def collect(self, timeout_s: float) -> None:
        """Moves what the tokenizer stage finished into the grouper, waiting up to `timeout_s`."""
        for done in self._tokenizer.ready(timeout_s):
            self._group(done)

    def reencode(self) -> None:
        """Between batches: what the device has not been handed yet is re-tokenized for the current model."""
        self._tokenizer.submit(self._models.current, [encoded.slot for encoded in self._grouper.take_all()])

    def _group(self, done: Tokenization) -> None:
        current = self._models.current
        if done.model is not current:
            # Tokenized for a model swapped out meanwhile: a batch runs on the model its ids are for.
            self._tokenizer.submit(current, done.slots)
            return
        rejections = done.rejections
        if rejections:
            self._breaker.failed(
                len(rejections),
                others_succeeded=len(rejections) < len(done.slots),
                last_error=next(reversed(rejections.values())),
                what="to tokenize",
            )
        add = self._grouper.add
        settled: list[Slot] = []
        for position, (slot, ids) in enumerate(zip(done.slots, done.ids, strict=True)):
            if ids is None:
                self._dead_letters.send(slot.valid.record, ErrorKind.UNENCODABLE, rejections[position])
                settled.append(slot)
                continue
            add(Encoded(slot, ids), len(ids))
        if settled:
            # Dead-lettered here; their places in the partition queues must not block.
            self._reorder.finish((slot, SETTLED) for slot in settled)
