"""Intake alone: what becomes of tokenized titles, with the tokenizer stage scripted by the test."""

from __future__ import annotations

from collections.abc import Sequence

from prodcat.consumer.batcher import BatchLimits, LengthGrouper
from prodcat.consumer.classify.provider import ModelSource
from prodcat.consumer.delivery import Delivery, Refusal
from prodcat.consumer.engine.breaker import FailureBreaker
from prodcat.consumer.engine.dead_letters import DeadLetterRouter, Ref
from prodcat.consumer.engine.intake import Intake
from prodcat.consumer.engine.records import Accepted, Encoded, Slot, Valid
from prodcat.consumer.engine.reorder import ReorderBuffer
from prodcat.consumer.engine.tokenize import Tokenization, TokenizerStage
from prodcat.consumer.offsets import PartitionOffsets
from prodcat.model.runtime import ServingModel
from tests.faults import StandInModel
from tests.kafka_fakes import FakeSink, FakeSource, Log


class Models:
    """A model source whose current model the test sets."""

    def __init__(self, current: ServingModel) -> None:
        self.current = current
        self.candidate: ServingModel | None = None

    def poll(self) -> ServingModel | None:
        return None

    def close(self) -> None:
        return None


class ScriptedTokenizer:
    """Notes what is submitted; hands back what the test says has finished."""

    def __init__(self) -> None:
        self.submitted: list[tuple[ServingModel, list[Slot]]] = []
        self.finished: list[Tokenization] = []

    @property
    def outstanding(self) -> int:
        return sum(len(slots) for _, slots in self.submitted)

    def submit(self, model: ServingModel, slots: Sequence[Slot]) -> None:
        self.submitted.append((model, list(slots)))

    def ready(self, timeout_s: float) -> list[Tokenization]:
        done, self.finished = self.finished, []
        return done

    def close(self, timeout_s: float) -> bool:
        return True


def intake_for(models: ModelSource, tokenizer: TokenizerStage, grouper: LengthGrouper[Encoded]) -> Intake:
    log = Log()
    refused: list[Refusal[Ref]] = []
    delivery: Delivery[Ref] = Delivery(
        FakeSource(log), FakeSink(log, set(), set()), on_refusal=refused.append
    )
    return Intake(
        delivery=delivery,
        dead_letters=DeadLetterRouter(delivery, topic="dead", group="g", limit=1_000_000),
        tokenizer=tokenizer,
        breaker=FailureBreaker(16),
        reorder=ReorderBuffer(lambda ready: None),
        grouper=grouper,
        models=models,
        limit=1_000_000,
        clock=lambda: 0.0,
    )


def slot_for(title: str) -> Slot:
    record = Accepted("raw", 0, 0, None, b"{}", None, 0, 0.0, PartitionOffsets())
    return Slot(Valid(record, title, replaces_field=False))


def test_titles_tokenized_for_a_model_swapped_out_meanwhile_are_tokenized_again_for_the_current_one() -> None:
    old, new = StandInModel(version="old"), StandInModel(version="new")
    models, tokenizer = Models(old), ScriptedTokenizer()
    grouper: LengthGrouper[Encoded] = LengthGrouper(BatchLimits(), lambda: 0.0)
    intake = intake_for(models, tokenizer, grouper)
    slot = slot_for("Silk Scarf")
    tokenizer.finished.append(Tokenization([slot], old, [[1, 2]], {}))
    models.current = new

    intake.collect(0.0)

    assert len(grouper) == 0
    assert tokenizer.submitted == [(new, [slot])]


def test_titles_tokenized_for_the_current_model_join_the_grouper() -> None:
    model = StandInModel()
    tokenizer = ScriptedTokenizer()
    grouper: LengthGrouper[Encoded] = LengthGrouper(BatchLimits(), lambda: 0.0)
    intake = intake_for(Models(model), tokenizer, grouper)
    slot = slot_for("Silk Scarf")
    tokenizer.finished.append(Tokenization([slot], model, [[1, 2]], {}))

    intake.collect(0.0)

    batch = grouper.next_batch(idle=True)
    assert batch is not None and [encoded.slot for encoded in batch.items] == [slot]
    assert tokenizer.submitted == []
