"""Real models with a fault injected, for the tests of what the service does about it."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from prodcat.model.runtime import Inference, ServingModel

# Rides at the front of a poisoned title's ids; a real tokenizer never gives a negative id.
POISON_ID = -1


class ModelWithFault:
    """A real model behind the whole `ServingModel` contract, each member passed on: the
    fakes below replace one or two of them, and mypy checks the rest against the Protocol."""

    def __init__(self, real: ServingModel) -> None:
        self._real = real

    @property
    def model_name(self) -> str:
        return self._real.model_name

    @property
    def version(self) -> str:
        return self._real.version

    @property
    def labels(self) -> tuple[str, ...]:
        return self._real.labels

    @property
    def max_length(self) -> int:
        return self._real.max_length

    @property
    def device(self) -> str:
        return self._real.device

    def encode(self, titles: Sequence[str]) -> list[list[int]]:
        return self._real.encode(titles)

    def infer(self, rows: Sequence[Sequence[int]], *, top_k: int, embeddings: bool = False) -> Inference:
        return self._real.infer(rows, top_k=top_k, embeddings=embeddings)

    def health(self) -> None:
        self._real.health()


class PoisonSensitiveModel(ModelWithFault):
    """The real model, except that any batch holding a poison title fails as a whole,
    as a batch does when one input breaks the forward pass."""

    POISON = "\u2620"

    def encode(self, titles: Sequence[str]) -> list[list[int]]:
        ids = self._real.encode(titles)
        return [[POISON_ID, *row] if self.POISON in t else row for t, row in zip(titles, ids, strict=True)]

    def infer(self, rows: Sequence[Sequence[int]], *, top_k: int, embeddings: bool = False) -> Inference:
        if any(row and row[0] == POISON_ID for row in rows):
            raise RuntimeError("forward pass failed")
        return self._real.infer(rows, top_k=top_k, embeddings=embeddings)


class BrokenDeviceModel(ModelWithFault):
    """The real model on a device that fails every forward pass."""

    def infer(self, rows: Sequence[Sequence[int]], *, top_k: int, embeddings: bool = False) -> Inference:
        raise RuntimeError("CUDA error: an illegal memory access was encountered")


class RecordingModel(ModelWithFault):
    """The real (or faulty) model, noting each forward pass it runs and the ids of each title
    it tokenized, optionally taking `delay_s` longer per pass, like a busy device."""

    def __init__(
        self, real: ServingModel, runs: list[Run], *, version: str | None = None, delay_s: float = 0.0
    ) -> None:
        super().__init__(real)
        self._runs = runs
        self._version = version or real.version
        self._delay_s = delay_s
        self.titles: dict[tuple[int, ...], str] = {}
        """Each title this model tokenized, by its ids."""
        self.on_device = threading.Event()

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
