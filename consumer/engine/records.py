"""What a consumed record is on its way through the engine: immutable values, and one slot.

`Accepted` is fixed at poll, `Valid` once validation found a title; the reorder buffer
owns the only mutable part, the `Slot` that waits for the record's outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from prodcat.consumer.offsets import PartitionOffsets, TopicPartitionKey
from prodcat.consumer.sink import Headers

if TYPE_CHECKING:
    from prodcat.consumer.classify.device import Completion


@dataclass(frozen=True, slots=True)
class Accepted:
    """A consumed record as polled: where it came from, its bytes, and its offset's handle."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers | None
    timestamp_ms: int
    accepted_at: float
    state: PartitionOffsets

    @property
    def tp(self) -> TopicPartitionKey:
        return (self.topic, self.partition)


@dataclass(frozen=True, slots=True)
class Valid:
    """A record that passed validation: its title, and whether it carried a `classification` field."""

    record: Accepted
    title: str
    replaces_field: bool


@dataclass(frozen=True, slots=True)
class Classified:
    """Row `row` of a batch the device ran."""

    run: Completion[Encoded]
    row: int


@dataclass(frozen=True, slots=True)
class Failed:
    """The title failed on its own on the device."""

    error: Exception


@dataclass(frozen=True, slots=True)
class Settled:
    """Its output already went out another way (a dead letter when re-tokenized for a new model)."""


SETTLED = Settled()
Outcome = Classified | Failed | Settled


class Slot:
    """A valid record's place in its partition's queue, waiting for its outcome."""

    __slots__ = ("outcome", "valid")

    def __init__(self, valid: Valid) -> None:
        self.valid = valid
        self.outcome: Outcome | None = None


@dataclass(frozen=True, slots=True)
class Encoded:
    """A slot with the token ids of its title for one model: what the grouper and the device see."""

    slot: Slot
    ids: list[int]
