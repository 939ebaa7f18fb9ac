"""The device worker: one thread that runs batches while the Kafka thread keeps working.

The hand-off is a one-slot queue, as TEI's router does it: one batch runs while the next
waits prepared, so at most two batches are out at a time, memory stays bounded, and a
Kafka thread that gets ahead finds no room and stops polling (backpressure). The worker
touches only token ids and tensors; offsets, acknowledgements and produce calls stay on
the Kafka thread, which collects completions.

A batch that raises is halved and retried here, recursively, so one poisonous title (or
a batch too large for the device) does not sink its neighbours: only rows that fail on
their own come back as failures. Before halving, the failure is classified: a device-level
error (a CUDA error, a lost device, a model whose `health()` raises) is not the batch's
fault, so it is not halved through 2n-1 passes; it comes back as `DeviceFailure` and the
member stops with its offsets uncommitted. `close` and every wait take a deadline, so a
hung device cannot hold the Kafka thread (and the group's rebalance) for ever.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

import structlog

from prodcat.consumer.embeddings import embedding_fields
from prodcat.errors import InferenceUnavailable
from prodcat.model.runtime import ServingModel

log = structlog.get_logger(__name__)

T = TypeVar("T")
IN_FLIGHT_LIMIT = 2
# Errors that say the device, not the batch, is broken (torch's CUDA error text; torch >= 2.8
# raises `torch.AcceleratorError` for them). Out-of-memory is not one: a smaller batch may fit.
DEVICE_ERROR_MARKERS = ("CUDA error", "device-side assert", "CUDA driver", "device lost")
DEVICE_ERROR_TYPES = ("AcceleratorError",)


class DeviceFailure(InferenceUnavailable):
    """The device cannot run the model (a device-level error, or a device that stopped answering)."""


def is_device_error(exc: BaseException) -> bool:
    if any(cls.__name__ in DEVICE_ERROR_TYPES for cls in type(exc).__mro__):
        return True
    text = str(exc)
    return any(marker in text for marker in DEVICE_ERROR_MARKERS)


@dataclass(frozen=True, slots=True)
class ShadowPass:
    """A sampled batch's titles encoded for the candidate, which runs them after the serving pass."""

    model: ServingModel
    rows: list[list[int]]


@dataclass(frozen=True, slots=True)
class ShadowResult:
    """The candidate's top-1 per row; None when its pass failed (nothing else depends on it)."""

    indices: list[list[int]]
    scores: list[list[float]]


@dataclass(slots=True)
class DeviceBatch(Generic[T]):
    """Rows of token ids for one model, and the caller's items in the same order."""

    model: ServingModel
    rows: list[list[int]]
    items: list[T]
    padded_tokens: int
    real_tokens: int
    shadow: ShadowPass | None = None


@dataclass(slots=True)
class Completion(Generic[T]):
    batch: DeviceBatch[T]
    indices: list[list[int]]
    """Per row, best first; empty for a failed row."""
    scores: list[list[float]]
    failures: dict[int, Exception] = field(default_factory=dict)
    embeddings: list[dict[str, object] | None] | None = None
    """Per row, its `classification.embedding` (None for a failed row); None unless asked for."""
    shadow: ShadowResult | None = None
    started_at: float = 0.0
    seconds: float = 0.0


class BatchWorker(Protocol[T]):
    """What the engine asks of whatever runs its batches: `DeviceWorker`, or a stand-in in a benchmark."""

    @property
    def outstanding(self) -> int: ...
    def has_room(self) -> bool: ...
    def submit(self, batch: DeviceBatch[T]) -> None: ...
    def collect(self, timeout_s: float) -> list[Completion[T]]: ...
    def close(self, timeout_s: float) -> bool: ...


class DeviceWorker(Generic[T]):
    def __init__(self, *, top_k: int, embeddings: bool = False) -> None:
        """`embeddings`: also return each row's pooled embedding, encoded for the wire here, off
        the Kafka thread."""
        self._top_k = top_k
        self._embeddings = embeddings
        self._slot: queue.Queue[DeviceBatch[T] | None] = queue.Queue(maxsize=1)
        self._done: queue.SimpleQueue[Completion[T] | BaseException] = queue.SimpleQueue()
        self._outstanding = 0
        self._thread = threading.Thread(target=self._work, name="device", daemon=True)
        self._thread.start()

    @property
    def outstanding(self) -> int:
        """Batches handed over and not yet collected."""
        return self._outstanding

    def has_room(self) -> bool:
        return self._outstanding < IN_FLIGHT_LIMIT

    def submit(self, batch: DeviceBatch[T]) -> None:
        """Hands a batch over; call only when `has_room()`."""
        self._outstanding += 1
        self._slot.put(batch)

    def collect(self, timeout_s: float) -> list[Completion[T]]:
        """Completed batches in completion order, waiting up to `timeout_s` for the first."""
        if self._outstanding == 0:
            return []
        try:
            first = self._done.get(timeout=timeout_s) if timeout_s > 0 else self._done.get_nowait()
        except queue.Empty:
            return []
        done = [first]
        while True:
            try:
                done.append(self._done.get_nowait())
            except queue.Empty:
                break
        completions: list[Completion[T]] = []
        for entry in done:
            self._outstanding -= 1
            if isinstance(entry, BaseException):
                raise entry
            completions.append(entry)
        return completions

    def close(self, timeout_s: float) -> bool:
        """Stops the thread once the batches handed over have run (collect them before or after);
        False when it did not stop within `timeout_s` (a hung device: the thread is a daemon)."""
        deadline = time.monotonic() + timeout_s
        try:
            self._slot.put(None, timeout=timeout_s)
        except queue.Full:
            pass
        else:
            self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            log.error("device_worker_stuck", waited_s=timeout_s)
            return False
        return True

    def _work(self) -> None:
        while True:
            batch = self._slot.get()
            if batch is None:
                return
            try:
                self._done.put(self._run(batch))
            except BaseException as exc:
                # Not a failing batch (that is handled in _run) but the worker's own fault:
                # the Kafka thread re-raises it instead of waiting for ever.
                self._done.put(exc)

    def _run(self, batch: DeviceBatch[T]) -> Completion[T]:
        n = len(batch.rows)
        completion = Completion(batch, indices=[[] for _ in range(n)], scores=[[] for _ in range(n)])
        if self._embeddings:
            completion.embeddings = [None] * n
        completion.started_at = time.monotonic()
        self._run_rows(batch.model, batch.rows, 0, completion)
        completion.seconds = time.monotonic() - completion.started_at
        if batch.shadow is not None:
            completion.shadow = self._run_shadow(batch.shadow)
        return completion

    @staticmethod
    def _run_shadow(shadow: ShadowPass) -> ShadowResult | None:
        """The candidate's pass, after the serving one so it never delays an output's timings;
        its failure costs only the comparison, never an output or an offset."""
        try:
            inference = shadow.model.infer(shadow.rows, top_k=1)
        except Exception as exc:
            log.warning("shadow_pass_failed", candidate=shadow.model.version, error=str(exc)[:200])
            return None
        return ShadowResult(inference.indices, inference.scores)

    def _run_rows(
        self, model: ServingModel, rows: Sequence[list[int]], start: int, completion: Completion[T]
    ) -> None:
        try:
            inference = model.infer(rows, top_k=self._top_k, embeddings=self._embeddings)
        except Exception as exc:
            self._check_device(model, exc)
            if len(rows) == 1:
                completion.failures[start] = exc
                return
            log.warning("batch_failed_retrying_halves", size=len(rows), error=str(exc)[:200])
            middle = len(rows) // 2
            self._run_rows(model, rows[:middle], start, completion)
            self._run_rows(model, rows[middle:], start + middle, completion)
            return
        completion.indices[start : start + len(rows)] = inference.indices
        completion.scores[start : start + len(rows)] = inference.scores
        if completion.embeddings is not None:
            if inference.embeddings is None:
                raise ValueError(f"{model.model_name} returned no embeddings though asked for them")
            completion.embeddings[start : start + len(rows)] = embedding_fields(inference.embeddings)

    @staticmethod
    def _check_device(model: ServingModel, exc: Exception) -> None:
        """Raises `DeviceFailure` when the failure is the device's, not the batch's."""
        if is_device_error(exc):
            raise DeviceFailure(f"the device failed: {type(exc).__name__}: {str(exc)[:200]}") from exc
        try:
            model.health()
        except Exception as health:
            raise DeviceFailure(
                f"the device failed its health check after {type(exc).__name__}: {str(exc)[:200]} "
                f"({type(health).__name__}: {str(health)[:200]})"
            ) from health
