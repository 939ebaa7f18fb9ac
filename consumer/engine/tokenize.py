"""The tokenizer stage: token ids for accepted titles, for the model new batches are made for.

Every title goes through the checkpoint's tokenizer (instruction prefix and end-of-text
token included), so the grouper budgets on the ids the model will see. A title the
tokenizer rejects fails alone; the caller dead-letters it. Two ways, one interface: on the
Kafka thread (`InlineTokenizer`, `--tokenizer-threads 0`) or, TEI's way, on a pool of
threads of its own (`PooledTokenizer`, `consumer/tokenize_pool.py`): `submit` returns at
once and the Kafka thread keeps polling and producing while the Rust tokenizer, GIL
released, works; `ready` hands back finished submissions in submission order, each with
the model its ids are for.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Protocol

from prodcat.consumer.engine.records import Slot
from prodcat.consumer.tokenize_pool import Tokenized, TokenizerPool, tokenize
from prodcat.model.runtime import ServingModel


@dataclass(frozen=True, slots=True)
class Tokenization:
    """One submission's slots and their ids (None where rejected, with the reason) for `model`."""

    slots: list[Slot]
    model: ServingModel
    ids: list[list[int] | None]
    rejections: dict[int, str]


class TokenizerStage(Protocol):
    @property
    def outstanding(self) -> int:
        """Titles submitted and not yet handed back by `ready`."""
        ...

    def submit(self, model: ServingModel, slots: Sequence[Slot]) -> None: ...
    def ready(self, timeout_s: float) -> list[Tokenization]:
        """Finished submissions in submission order, waiting up to `timeout_s` for the first."""
        ...

    def close(self, timeout_s: float) -> bool: ...


class InlineTokenizer:
    """Tokenizes at submit, on the calling (Kafka) thread."""

    def __init__(self) -> None:
        self._done: list[Tokenization] = []

    @property
    def outstanding(self) -> int:
        return sum(len(t.slots) for t in self._done)

    def submit(self, model: ServingModel, slots: Sequence[Slot]) -> None:
        if slots:
            done = tokenize(model, [slot.valid.title for slot in slots])
            self._done.append(Tokenization(list(slots), model, done.ids, done.rejections))

    def ready(self, timeout_s: float) -> list[Tokenization]:
        done, self._done = self._done, []
        return done

    def close(self, timeout_s: float) -> bool:
        return True


class PooledTokenizer:
    """Tokenizes on a `TokenizerPool`'s threads; the Kafka thread only submits and collects."""

    def __init__(self, threads: int, model: ServingModel) -> None:
        self._pool: TokenizerPool[ServingModel] = TokenizerPool(model, threads=threads)
        self._waiting: deque[tuple[list[Slot], Future[Tokenized[ServingModel]]]] = deque()
        self._outstanding = 0

    @property
    def outstanding(self) -> int:
        return self._outstanding

    def submit(self, model: ServingModel, slots: Sequence[Slot]) -> None:
        if not slots:
            return
        if self._pool.encoder is not model:
            self._pool.swap(model)
        self._waiting.append((list(slots), self._pool.submit([slot.valid.title for slot in slots])))
        self._outstanding += len(slots)

    def ready(self, timeout_s: float) -> list[Tokenization]:
        done: list[Tokenization] = []
        while self._waiting:
            slots, future = self._waiting[0]
            try:
                # Only the first may be waited for; the rest are taken as far as they are done.
                tokenized = future.result(timeout=timeout_s if not done else 0.0)
            except FutureTimeout:
                break
            self._waiting.popleft()
            self._outstanding -= len(slots)
            done.append(Tokenization(slots, tokenized.encoder, tokenized.ids, tokenized.rejections))
        return done

    def close(self, timeout_s: float) -> bool:
        return self._pool.close(timeout_s)
