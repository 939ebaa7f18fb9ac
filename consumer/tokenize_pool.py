"""The tokenizer stage: titles to token ids on a few threads of their own, off the Kafka thread.

TEI's shape (a fixed set of tokenization workers fed by one channel, each request answered on
its own reply channel), in Python: `submit` queues a batch of titles and returns at once with a
future; a worker thread runs the encoder's batch call, which for the Rust tokenizer releases the
GIL, so the Kafka thread keeps polling and producing meanwhile. Each future answers for its own
batch, ids in the order its titles were given, so order is kept whatever thread finishes first.

The encoder is fixed at submit: after `swap` (a hot reload), batches submitted earlier are
still tokenized by the encoder they were submitted to, later ones by the new one, and every
answer names the encoder that made it, so the caller knows which model the ids are for.

The queue is not bounded here: the caller bounds it (the service caps the records it holds).
The Rust tokenizer also spreads one batch call over its own threads (rayon) where cores are
free, so one worker already uses several cores for a large batch; more workers let batches
overlap.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

# The Kafka thread and the device worker keep a core each.
RESERVED_THREADS = 2


class Encoder(Protocol):
    """What the pool asks of a model; `ServingModel` is one. Called from the pool's threads."""

    def encode(self, titles: Sequence[str]) -> list[list[int]]: ...


E = TypeVar("E", bound=Encoder)


@dataclass(frozen=True, slots=True)
class Tokenized(Generic[E]):
    """One submission's answer: ids in the order its titles were given, by the encoder named."""

    encoder: E
    ids: list[list[int] | None]
    """None where the tokenizer rejected the title; `rejections` says why."""
    rejections: dict[int, str]
    """Position of each rejected title → `ExceptionType: message`."""


@dataclass(frozen=True, slots=True)
class _Job(Generic[E]):
    titles: list[str]
    encoder: E
    future: Future[Tokenized[E]]


class TokenizerPoolClosed(RuntimeError):
    """A submission after `close`."""


def default_tokenizer_threads() -> int:
    """The cores this process may run on, less one each for the Kafka thread and the device worker."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux (macOS has no affinity call)
        cores = os.cpu_count() or 1
    return max(1, cores - RESERVED_THREADS)


def tokenize(encoder: E, titles: Sequence[str]) -> Tokenized[E]:
    """One batch call; when it fails, each title alone, so a rejected title fails only itself."""
    try:
        encoded = encoder.encode(titles)
    except Exception:
        return _one_by_one(encoder, titles)
    if len(encoded) != len(titles):
        raise ValueError(f"the encoder answered {len(encoded)} rows for {len(titles)} titles")
    ids: list[list[int] | None] = list(encoded)
    return Tokenized(encoder, ids, {})


def _one_by_one(encoder: E, titles: Sequence[str]) -> Tokenized[E]:
    ids: list[list[int] | None] = []
    rejections: dict[int, str] = {}
    for position, title in enumerate(titles):
        try:
            (row,) = encoder.encode([title])
        except Exception as exc:
            rejections[position] = f"{type(exc).__name__}: {exc}"
            ids.append(None)
        else:
            ids.append(row)
    return Tokenized(encoder, ids, rejections)


class TokenizerPool(Generic[E]):
    """`threads` workers tokenizing submitted batches with the current encoder."""

    def __init__(self, encoder: E, *, threads: int, name: str = "prodcat-tokenizer") -> None:
        if threads < 1:
            raise ValueError(f"a tokenizer pool needs at least one thread, not {threads}")
        self._encoder = encoder
        self._jobs: queue.SimpleQueue[_Job[E] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        # Daemon threads: a batch stuck in the tokenizer past close's deadline must not keep
        # the process from exiting.
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{n}", daemon=True) for n in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def threads(self) -> int:
        return len(self._threads)

    @property
    def encoder(self) -> E:
        """The encoder the next submission will be tokenized with."""
        return self._encoder

    def swap(self, encoder: E) -> None:
        """Submissions from now on use `encoder`; those already submitted keep theirs."""
        with self._lock:
            self._encoder = encoder

    def submit(self, titles: Sequence[str]) -> Future[Tokenized[E]]:
        """Queues `titles` (copied) and returns at once; raises TokenizerPoolClosed after close."""
        future: Future[Tokenized[E]] = Future()
        with self._lock:
            if self._closed:
                raise TokenizerPoolClosed("the tokenizer pool is closed")
            encoder = self._encoder
            if not titles:
                future.set_result(Tokenized(encoder, [], {}))
                return future
            self._jobs.put(_Job(list(titles), encoder, future))
        return future

    def close(self, timeout_s: float) -> bool:
        """Cancels what has not started, lets running batches finish, and waits at most
        `timeout_s` for the threads; True when all of them ended in time."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            self._closed = True
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job.future.cancel()
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            if not job.future.set_running_or_notify_cancel():
                continue
            try:
                job.future.set_result(tokenize(job.encoder, job.titles))
            except Exception as exc:
                # Not a rejected title but a broken encoder: the submitter sees it on result().
                job.future.set_exception(exc)
