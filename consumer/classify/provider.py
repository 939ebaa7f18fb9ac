"""Who owns the serving model: the gated load at start, hot reload, close.

The registry's CURRENT pointer is re-read every `interval_s`. A new target is loaded
through the same gate as at start (`prodcat.model.loading.load_model`: sha256 of every
file, warm-up, golden set) on a background thread, so polling, heartbeats and commits go
on meanwhile; the engine swaps it in between two batches. A checkpoint whose label set
differs from the serving one is refused: events would change meaning mid-stream, so a
label change is a deliberate restart. A refused checkpoint is logged and counted once,
and the old model keeps serving.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import structlog

from prodcat.errors import CheckpointError, ProdcatError
from prodcat.model.checkpoint import check_same_labels, resolve
from prodcat.model.loading import load_model
from prodcat.model.runtime import ServingModel, TorchModel

log = structlog.get_logger(__name__)


class ModelSource(Protocol):
    """What the engine needs of a model owner: the model to use now, and a newer one when ready."""

    @property
    def current(self) -> ServingModel: ...

    def poll(self) -> ServingModel | None:
        """A newly loaded and checked model, once, which is `current` from now on; else None."""
        ...

    def close(self) -> None: ...


class FixedModel:
    """One model for the service's whole life (benchmarks, tests, reload turned off)."""

    def __init__(self, model: ServingModel) -> None:
        self._model = model

    @property
    def current(self) -> ServingModel:
        return self._model

    def poll(self) -> ServingModel | None:
        return None

    def close(self) -> None:
        return None


class ModelProvider:
    def __init__(
        self,
        model: TorchModel,
        location: Path,
        *,
        model_name: str | None,
        device: str,
        interval_s: float,
        min_agreement: float,
        max_tokens: int,
        on_result: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`on_result` hears "loaded" or "refused" for each reload (the service's metrics);
        `max_tokens` is the batch token budget a reloaded checkpoint's max length must fit."""
        self._model = model
        self._location = location
        self._model_name = model_name
        self._device = device
        self._interval_s = interval_s
        self._min_agreement = min_agreement
        self._max_tokens = max_tokens
        self._on_result = on_result or (lambda _result: None)
        self._clock = clock
        self._next_check = clock() + interval_s
        self._refused: set[Path] = set()
        self._pointer_refusal: str | None = None
        self._lock = threading.Lock()
        self._ready: TorchModel | None = None
        self._loading: threading.Thread | None = None

    @classmethod
    def open(
        cls,
        location: Path,
        *,
        model_name: str | None,
        device: str,
        interval_s: float,
        min_agreement: float,
        max_tokens: int,
        on_result: Callable[[str], None] | None = None,
    ) -> ModelProvider:
        """Loads the live checkpoint through the gate; CheckpointError when it is refused."""
        model = load_model(location, model_name=model_name, device=device, min_agreement=min_agreement)
        return cls(
            model,
            location,
            model_name=model_name,
            device=device,
            interval_s=interval_s,
            min_agreement=min_agreement,
            max_tokens=max_tokens,
            on_result=on_result,
        )

    @property
    def current(self) -> TorchModel:
        return self._model

    def poll(self) -> TorchModel | None:
        if self._interval_s <= 0:
            return None
        with self._lock:
            ready, self._ready = self._ready, None
        if ready is not None:
            log.info("model_reloaded", previous=self._model.version, version=ready.version)
            self._model = ready
            self._on_result("loaded")
            return ready
        now = self._clock()
        if now < self._next_check or (self._loading is not None and self._loading.is_alive()):
            return None
        self._next_check = now + self._interval_s
        try:
            target = resolve(self._location, self._model_name)
        except ProdcatError as exc:
            # A pointer mid-edit, removed, or naming something outside the model folder: keep
            # serving, refuse it once, look again later.
            message = str(exc)
            if message != self._pointer_refusal:
                self._pointer_refusal = message
                self._on_result("refused")
                log.error("reload_refused", serving=self._model.version, error=message)
            return None
        self._pointer_refusal = None
        if target == self._model.checkpoint.directory or target in self._refused:
            return None
        log.info("reload_started", checkpoint=str(target))
        self._loading = threading.Thread(target=self._load, args=(target,), name="reload", daemon=True)
        self._loading.start()
        return None

    def _load(self, target: Path) -> None:
        try:
            model = load_model(target, device=self._device, min_agreement=self._min_agreement)
            check_same_labels(self._model.checkpoint.manifest, model.checkpoint.manifest)
            if model.max_length > self._max_tokens:
                raise CheckpointError(
                    f"its max length {model.max_length} is above --max-batch-tokens {self._max_tokens}: "
                    "a long title could never be batched"
                )
        except Exception as exc:
            # The thread's boundary: whatever went wrong, the service keeps its current model.
            self._refused.add(target)
            self._on_result("refused")
            log.error(
                "reload_refused",
                checkpoint=str(target),
                serving=self._model.version,
                error=f"{type(exc).__name__}: {exc}",
            )
            return
        with self._lock:
            self._ready = model

    def wait_for_reload(self, timeout_s: float) -> None:
        """Waits for a load in progress to end (tests, shutdown)."""
        if self._loading is not None:
            self._loading.join(timeout_s)

    def close(self) -> None:
        self.wait_for_reload(60.0)
        with self._lock:
            self._ready = None
