"""Length-grouped micro-batching, apart from Kafka and the model.

Items arrive with their exact token counts. They gather in a window until it holds
`window_items` or its oldest item has waited `max_wait_s`; the window is then sorted by
token count and cut into batches, so titles of similar length share a batch and padding
stays close to the real tokens. A batch closes at `max_items` or when one more item
would push its padded cost (longest x rows, what the device computes) past `max_tokens`.
One cut window waits at most: the caller stops adding while `room()` is 0, which is how
backpressure from the device reaches the Kafka poll. The window only waits under load:
when the device is idle the caller takes what is there at once (`next_batch(idle=True)`).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class BatchLimits:
    max_items: int = 64
    max_tokens: int = 16384
    max_wait_s: float = 0.02
    window_items: int = 1024

    def __post_init__(self) -> None:
        if (
            self.max_items < 1
            or self.max_tokens < 1
            or self.window_items < 1
            or not (0 <= self.max_wait_s < math.inf)
        ):
            raise ValueError(f"invalid batch limits: {self}")


@dataclass(slots=True)
class Batch(Generic[T]):
    items: list[T] = field(default_factory=list)
    real_tokens: int = 0
    longest: int = 0

    @property
    def padded_tokens(self) -> int:
        return self.longest * len(self.items)


class LengthGrouper(Generic[T]):
    def __init__(self, limits: BatchLimits, clock: Callable[[], float]) -> None:
        self._limits = limits
        self._clock = clock
        self._window: list[tuple[int, int, T]] = []
        self._opened_at = 0.0
        self._arrivals = 0
        self._cut: deque[Batch[T]] = deque()

    def __len__(self) -> int:
        return len(self._window) + sum(len(b.items) for b in self._cut)

    def room(self) -> int:
        """How many more items the window takes now; 0 while a full window waits to be cut."""
        return max(0, self._limits.window_items - len(self._window))

    def add(self, item: T, tokens: int) -> None:
        if not self._window:
            self._opened_at = self._clock()
        # The arrival number breaks ties, so equal lengths keep their arrival order.
        self._window.append((max(1, tokens), self._arrivals, item))
        self._arrivals += 1

    def seconds_until_due(self) -> float | None:
        """How long until a batch is due; None when nothing waits."""
        if self._cut or len(self._window) >= self._limits.window_items:
            return 0.0
        if not self._window:
            return None
        return max(0.0, self._opened_at + self._limits.max_wait_s - self._clock())

    def next_batch(self, *, idle: bool = False) -> Batch[T] | None:
        """The next batch to run, cutting the window when it is full or due; None otherwise.

        `idle`: the device has nothing to run, so waiting for the window to fill would only
        add latency; what waits is cut at once.
        """
        if not self._cut and (idle or self.seconds_until_due() == 0.0):
            self._cut_window()
        return self._cut.popleft() if self._cut else None

    def flush(self) -> list[Batch[T]]:
        """Every waiting item in batches, due or not."""
        self._cut_window()
        batches = list(self._cut)
        self._cut.clear()
        return batches

    def take_all(self) -> list[T]:
        """Every waiting item, batched or not, and empties the grouper (to re-encode for a new model)."""
        items = [item for _, _, item in self._window] + [item for batch in self._cut for item in batch.items]
        self._window, self._cut = [], deque()
        return items

    def _cut_window(self) -> None:
        if not self._window:
            return
        self._window.sort(key=lambda entry: (entry[0], entry[1]))
        limits = self._limits
        batch: Batch[T] = Batch()
        for tokens, _, item in self._window:
            # Sorted ascending, so this item is the batch's longest once added.
            if batch.items and (
                len(batch.items) >= limits.max_items or tokens * (len(batch.items) + 1) > limits.max_tokens
            ):
                self._cut.append(batch)
                batch = Batch()
            batch.items.append(item)
            batch.real_tokens += tokens
            batch.longest = tokens
        self._cut.append(batch)
        self._window = []
