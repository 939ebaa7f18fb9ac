"""Real models with a fault injected, for the tests of what the service does about it."""

from __future__ import annotations

from collections.abc import Sequence

from prodcat.model.runtime import Inference, TorchModel

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
