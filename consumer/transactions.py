"""Exactly-once delivery's open transaction: its outputs, the broker's refusals, its acknowledgements.

The outputs are kept until the transaction commits, so when the broker refuses one of
them (which dooms the whole transaction) the others can be sent again in the next one.
Acknowledgements count only once the transaction commits. A delivery callback of an
aborted transaction carries an older generation and changes nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from confluent_kafka import KafkaError, Message

from prodcat.consumer.sink import RECORD_LEVEL_ERRORS, DeliveryCallback, Headers

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Refusal(Generic[R]):
    """A record the broker refused on its own account; `ref` is the caller's handle on its input."""

    ref: R
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Output(Generic[R]):
    """One output of the open transaction, as it was produced."""

    kind: str
    ref: R
    topic: str
    value: bytes
    key: bytes | None
    headers: Headers | None


class OpenTransaction(Generic[R]):
    def __init__(self, on_failure: Callable[[Message, KafkaError], None]) -> None:
        """`on_failure` hears of a broker-level delivery failure (not a refused record)."""
        self._on_failure = on_failure
        self._generation = 0
        self.outputs: list[Output[R]] = []
        self.refused: dict[int, Refusal[R]] = {}
        """Refused outputs, by their position in `outputs`."""
        self._acknowledged: Counter[str] = Counter()

    def callback(self, kind: str, ref: R) -> DeliveryCallback:
        """The delivery callback of the output about to be `add`ed."""
        generation, index = self._generation, len(self.outputs)

        def delivered(error: KafkaError | None, message: Message) -> None:
            if generation != self._generation:
                return
            if error is None:
                self._acknowledged[kind] += 1
            elif error.code() in RECORD_LEVEL_ERRORS:
                self.refused[index] = Refusal(ref, error.code(), error.str())
            else:
                self._on_failure(message, error)

        return delivered

    def add(self, output: Output[R]) -> None:
        self.outputs.append(output)

    def aborted(self) -> tuple[list[Output[R]], dict[int, Refusal[R]]]:
        """Forgets the aborted transaction; returns its outputs and refusals."""
        self._generation += 1
        outputs, refused = self.outputs, self.refused
        self.outputs, self.refused = [], {}
        self._acknowledged = Counter()
        return outputs, refused

    def committed(self) -> Counter[str]:
        """Forgets the committed transaction; returns what it acknowledged, by kind."""
        self._generation += 1
        acknowledged = self._acknowledged
        self.outputs, self.refused, self._acknowledged = [], {}, Counter()
        return acknowledged
