"""Hot reload: notice a newly promoted checkpoint and load it without stopping the loop.

The registry's CURRENT pointer is re-read every `interval_s`. A new target is loaded,
verified (sha256 of every file) and checked against its golden set on a background
thread, so polling, heartbeats and commits go on meanwhile; the loop then swaps it in
between two batches. Nothing in flight is dropped: records already batched are
classified by whichever model is current when their batch closes. A checkpoint that
fails any check is refused once, logged and counted, and the old model keeps serving.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import structlog

from prodcat.consumer.classify.runtime import Classifier, load_checked
from prodcat.errors import ProdcatError
from prodcat.model.checkpoint import resolve

log = structlog.get_logger(__name__)


class ModelReloader:
    def __init__(
        self,
        location: Path,
        serving: Path,
        *,
        model_name: str | None,
        device: str,
        interval_s: float,
        min_agreement: float,
        counts: Counter[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`counts` receives one "refused" per checkpoint refused (the service's metrics)."""
        self._location = location
        self._model_name = model_name
        self._device = device
        self._interval_s = interval_s
        self._min_agreement = min_agreement
        self._clock = clock
        self._serving = serving
        self._next_check = clock() + interval_s
        self._refused: set[Path] = set()
        self._lock = threading.Lock()
        self._ready: Classifier | None = None
        self._loading: threading.Thread | None = None
        self._counts = counts if counts is not None else Counter()

    @property
    def refused(self) -> int:
        return self._counts["refused"]

    def poll(self) -> Classifier | None:
        """A newly loaded and checked classifier, once; None while there is nothing new."""
        with self._lock:
            ready, self._ready = self._ready, None
        if ready is not None:
            self._serving = ready.checkpoint.directory
            return ready
        now = self._clock()
        if now < self._next_check or (self._loading is not None and self._loading.is_alive()):
            return None
        self._next_check = now + self._interval_s
        try:
            target = resolve(self._location, self._model_name)
        except ProdcatError as exc:
            # A pointer mid-edit by hand, or a model folder removed: keep serving, look again later.
            log.warning("reload_pointer_unreadable", error=str(exc))
            return None
        if target == self._serving or target in self._refused:
            return None
        log.info("reload_started", checkpoint=str(target))
        self._loading = threading.Thread(target=self._load, args=(target,), name="reload", daemon=True)
        self._loading.start()
        return None

    def _load(self, target: Path) -> None:
        try:
            classifier = load_checked(target, device=self._device, min_agreement=self._min_agreement)
        except Exception as exc:
            # The thread's boundary: whatever went wrong, the service keeps its current model.
            self._refused.add(target)
            self._counts["refused"] += 1
            log.error("reload_refused", checkpoint=str(target), error=f"{type(exc).__name__}: {exc}")
            return
        with self._lock:
            self._ready = classifier
