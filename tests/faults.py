"""Real models with a fault injected, for the tests of what the service does about it."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from prodcat.model.runtime import Inference, ServingModel, TorchModel

# Rides at the front of a poisoned title's ids; a real tokenizer never gives a negative id.
POISON_ID = -1


class PoisonSensitiveModel:
    """The real model, except that any batch holding a poison title fails as a whole,
    as a batch does when one input breaks the forward pass."""

    POISON = "\u2620"

    def __init__(self, real: TorchModel) -> None:
        self._real = real

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)

    def encode(self, titles: Sequence[str]) -> list[list[int]]:
        ids = self._real.encode(titles)
        return [[POISON_ID, *row] if self.POISON in t else row for t, row in zip(titles, ids, strict=True)]

    def infer(self, rows: Sequence[Sequence[int]], *, top_k: int, embeddings: bool = False) -> Inference:
        if any(row and row[0] == POISON_ID for row in rows):
            raise RuntimeError("forward pass failed")
        return self._real.infer(rows, top_k=top_k, embeddings=embeddings)


class BrokenDeviceModel:
    """The real model on a device that fails every forward pass."""

    def __init__(self, real: TorchModel) -> None:
        self._real = real

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)

    def infer(self, rows: Sequence[Sequence[int]], *, top_k: int, embeddings: bool = False) -> Inference:
        raise RuntimeError("CUDA error: an illegal memory access was encountered")


class RecordingModel:
    """The real (or faulty) model, noting each forward pass it runs and the ids of each title
    it tokenized, optionally taking `delay_s` longer per pass, like a busy device."""

    def __init__(
        self, real: ServingModel, runs: list[Run], *, version: str | None = None, delay_s: float = 0.0
    ) -> None:
        self._real = real
        self._runs = runs
        self._version = version or real.version
        self._delay_s = delay_s
        self.titles: dict[tuple[int, ...], str] = {}
        """Each title this model tokenized, by its ids."""
        self.on_device = threading.Event()

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)

    @property
    def version(self) -> str:
        return self._version

    def encode(self, titles: Sequence[str]) -> list[list[int]]:
        ids = self._real.encode(titles)
        self.titles.update((tuple(row), title) for title, row in zip(titles, ids, strict=True))
        return ids

    def infer(self, rows: Sequence[Sequence[int]], *, top_k: int, embeddings: bool = False) -> Inference:
        self._runs.append(Run(self, [tuple(row) for row in rows]))
        self.on_device.set()
        try:
            time.sleep(self._delay_s)
            return self._real.infer(rows, top_k=top_k, embeddings=embeddings)
        finally:
            self.on_device.clear()


@dataclass(frozen=True)
class Run:
    """One forward pass: the model that ran it and its rows of token ids."""

    model: RecordingModel
    rows: list[tuple[int, ...]]

    @property
    def padded_tokens(self) -> int:
        return max(len(row) for row in self.rows) * len(self.rows)
