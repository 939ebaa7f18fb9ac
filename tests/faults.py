"""Real models with a fault injected, for the tests of what the service does about it."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from prodcat.model.runtime import Inference, ServingModel

# Rides at the front of a poisoned title's ids; a real tokenizer never gives a negative id.
POISON_ID = -1
# Longest a stand-in pass hangs, so a test that forgets to release it still ends.
HANG_LIMIT_S = 60.0


class WrappedModel:
    """A real model with every `ServingModel` member passed through by name (no `__getattr__`,
    so the type checker holds each fault model to the protocol); subclasses override what they fault."""

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


class PoisonSensitiveModel(WrappedModel):
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


class BrokenDeviceModel(WrappedModel):
    """The real model on a device that fails every forward pass with a CUDA error; counts the passes."""

    def __init__(self, real: ServingModel) -> None:
        super().__init__(real)
        self.passes = 0

    def infer(self, rows: Sequence[Sequence[int]], *, top_k: int, embeddings: bool = False) -> Inference:
        self.passes += 1
        raise RuntimeError("CUDA error: an illegal memory access was encountered")


class FailingModel(WrappedModel):
    """The real model, except that every forward pass fails on a healthy device (a broken checkpoint)."""

    def infer(self, rows: Sequence[Sequence[int]], *, top_k: int, embeddings: bool = False) -> Inference:
        raise RuntimeError("forward pass failed")


class UnencodableModel(WrappedModel):
    """The real model with a tokenizer that rejects every title."""

    def encode(self, titles: Sequence[str]) -> list[list[int]]:
        raise ValueError("the tokenizer rejects this title")


class RecordingModel(WrappedModel):
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


class StandInModel:
    """Classifies every row as label 0, except that a batch holding a poison row fails as a whole.

    `device_error` makes every pass fail as a broken CUDA device does; `healthy` False makes
    `health()` raise; `hang` holds every pass until it is set.
    """

    def __init__(
        self,
        *,
        device_error: bool = False,
        healthy: bool = True,
        hang: threading.Event | None = None,
        version: str = "1",
    ):
        self.passes: list[int] = []
        self.encoded_on: set[str] = set()
        """Names of the threads that called `encode`."""
        self._device_error = device_error
        self._healthy = healthy
        self._hang = hang
        self._version = version

    @property
    def model_name(self) -> str:
        return "stand-in"

    @property
    def version(self) -> str:
        return self._version

    @property
    def labels(self) -> tuple[str, ...]:
        return ("a", "b")

    @property
    def max_length(self) -> int:
        return 8

    @property
    def device(self) -> str:
        return "stand-in"

    def encode(self, titles: Sequence[str]) -> list[list[int]]:
        self.encoded_on.add(threading.current_thread().name)
        return [[1] for _ in titles]

    def infer(self, rows: Sequence[Sequence[int]], *, top_k: int, embeddings: bool = False) -> Inference:
        self.passes.append(len(rows))
        if self._hang is not None:
            self._hang.wait(HANG_LIMIT_S)
        if self._device_error:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        if any(row[0] == POISON_ID for row in rows):
            raise RuntimeError("forward pass failed")
        return Inference(indices=[[0] for _ in rows], scores=[[1.0] for _ in rows])

    def health(self) -> None:
        if not self._healthy:
            raise RuntimeError("device lost")
