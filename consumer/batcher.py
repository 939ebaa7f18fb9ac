"""Micro-batching policy, apart from Kafka and the model.

A batch closes when it reaches `max_items`, when adding the next item would push its
padded cost (longest item x count, what the GPU actually computes) past `max_tokens`,
or when its oldest item has waited `max_wait_s`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class BatchLimits:
    max_items: int = 64
    max_tokens: int = 8192
    max_wait_s: float = 0.05

    def __post_init__(self) -> None:
        if self.max_items < 1 or self.max_tokens < 1 or self.max_wait_s < 0:
            raise ValueError(f"invalid batch limits: {self}")


@dataclass(slots=True)
class Batch(Generic[T]):
    items: list[T] = field(default_factory=list)
    longest: int = 0
    opened_at: float = 0.0

    def padded_cost(self, extra_tokens: int = 0) -> int:
        return max(self.longest, extra_tokens) * (len(self.items) + (1 if extra_tokens else 0))


class Batcher(Generic[T]):
    def __init__(self, limits: BatchLimits, clock: Callable[[], float]) -> None:
        self._limits = limits
        self._clock = clock
        self._open: Batch[T] = Batch()
        self._closed: list[Batch[T]] = []

    def __len__(self) -> int:
        return len(self._open.items) + sum(len(b.items) for b in self._closed)

    def add(self, item: T, tokens: int) -> None:
        tokens = max(1, tokens)
        batch = self._open
        if batch.items and batch.padded_cost(tokens) > self._limits.max_tokens:
            self._close()
            batch = self._open
        if not batch.items:
            batch.opened_at = self._clock()
        batch.items.append(item)
        batch.longest = max(batch.longest, tokens)
        if len(batch.items) >= self._limits.max_items:
            self._close()

    def seconds_until_due(self) -> float | None:
        """How long until a batch should run; None when nothing is waiting."""
        if self._closed:
            return 0.0
        return self._open_batch_due_in()

    def ready(self) -> list[list[T]]:
        """Batches that are full or due, oldest first."""
        if self._open_batch_due_in() == 0.0:
            self._close()
        return self._drain_closed()

    def _open_batch_due_in(self) -> float | None:
        if not self._open.items:
            return None
        return max(0.0, self._open.opened_at + self._limits.max_wait_s - self._clock())

    def flush(self) -> list[list[T]]:
        """Every waiting item, whether its batch is due or not."""
        if self._open.items:
            self._close()
        return self._drain_closed()

    def _close(self) -> None:
        self._closed.append(self._open)
        self._open = Batch()

    def _drain_closed(self) -> list[list[T]]:
        batches = [b.items for b in self._closed]
        self._closed = []
        return batches
