"""A stand-in device, and the old sequential loop, for measuring overlap without a GPU.

`SimulatedDevice` tokenizes for real and takes a fixed time per batch in `infer`, sleeping
(which releases the GIL, as a wait on a GPU kernel does), so a device rate can be chosen.
With no time per batch it is the no-op model that isolates the Kafka path.

`InlineWorker` has `DeviceWorker`'s interface but runs each batch inside `submit`, on the
Kafka thread: the engine as it was before the device got its own thread.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Generic, TypeVar

from tokenizers import Tokenizer

from prodcat.consumer.classify.device import Completion, DeviceBatch
from prodcat.model.runtime import Inference

T = TypeVar("T")
LABELS = ("Automotive", "Baby", "Books", "Clothing", "Jewelry", "Shoes")


class SimulatedDevice:
    """A `ServingModel` whose forward pass takes `seconds_per_batch` whatever the batch holds."""

    def __init__(self, tokenizer: Tokenizer, *, seconds_per_batch: float, max_length: int) -> None:
        self._tokenizer = tokenizer
        self._seconds = seconds_per_batch
        self._max_length = max_length
        self.batches: list[Sequence[Sequence[int]]] = []
        """The rows of every batch `infer` ran, to replay them for the device's own rate."""

    @classmethod
    def at_rate(
        cls, tokenizer: Tokenizer, *, titles_per_s: float, max_batch_size: int, max_length: int
    ) -> SimulatedDevice:
        """A device that runs `titles_per_s` when every batch is full."""
        return cls(tokenizer, seconds_per_batch=max_batch_size / titles_per_s, max_length=max_length)

    @property
    def model_name(self) -> str:
        return "simulated-device"

    @property
    def version(self) -> str:
        return "bench"

    @property
    def labels(self) -> tuple[str, ...]:
        return LABELS

    @property
    def max_length(self) -> int:
        return self._max_length

    @property
    def device(self) -> str:
        return "simulated"

    def encode(self, titles: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self._tokenizer.encode_batch_fast(list(titles))]

    def infer(self, rows: Sequence[Sequence[int]], *, top_k: int, embeddings: bool = False) -> Inference:
        # Kept as given: copying here would take the GIL from the Kafka thread.
        self.batches.append(rows)
        if self._seconds > 0:
            time.sleep(self._seconds)
        k = min(top_k, len(LABELS))
        # Deterministic and label-shaped: a best label per row, scores falling and below 1 in sum.
        indices = [[(len(row) + j) % len(LABELS) for j in range(k)] for row in rows]
        scores = [[0.9 / (j + 1) ** 2 for j in range(k)] for _ in rows]
        return Inference(indices=indices, scores=scores)

    def health(self) -> None:
        return None

    def replay_rate(self, top_k: int) -> float:
        """Titles/s of `infer` alone, run back to back on the batches it was given so far."""
        batches, self.batches = self.batches, []
        started = time.perf_counter()
        for rows in batches:
            self.infer(rows, top_k=top_k)
        seconds = time.perf_counter() - started
        self.batches = batches
        return sum(map(len, batches)) / seconds if seconds > 0 else 0.0


class InlineWorker(Generic[T]):
    """Runs each batch as it is submitted, on the caller's thread: no overlap with the Kafka path.

    Unlike `DeviceWorker` it does not retry the halves of a failing batch; the stand-in never fails.
    """

    def __init__(self, *, top_k: int) -> None:
        self._top_k = top_k
        self._done: list[Completion[T]] = []

    @property
    def outstanding(self) -> int:
        return len(self._done)

    def has_room(self) -> bool:
        return not self._done

    def submit(self, batch: DeviceBatch[T]) -> None:
        started = time.monotonic()
        inference = batch.model.infer(batch.rows, top_k=self._top_k)
        self._done.append(
            Completion(
                batch,
                indices=inference.indices,
                scores=inference.scores,
                started_at=started,
                seconds=time.monotonic() - started,
            )
        )

    def collect(self, timeout_s: float) -> list[Completion[T]]:
        done, self._done = self._done, []
        return done

    def close(self, timeout_s: float) -> bool:
        return True
