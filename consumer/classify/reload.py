"""The reload state machine: one load at a time, transient failures retried, refusals final.

    idle ──▶ loading (fetch: download into the cache) ──▶ verifying (sha256, golden set,
              ▲                                            label set, token budget)
              │                                              │        │        │
           backoff ◀── a transient failure: store, I/O, ─────┘        │        │
              │        memory (never refuses the version)             ▼        ▼
              └─ after the delay, the pointer is read again        ready    refused
                                                                   (swapped by poll → idle)

Only the Kafka thread calls `poll`; it alone starts a load, and only from idle, backoff or
refused, after setting the state to loading under the lock. The load thread moves the
state on under the same lock. So a load can never start while another runs or while a
loaded model waits to be swapped in (the double load the old provider allowed when its
thread ended between two checks). Only the gate's verdict (CheckpointError) refuses a
version; this process never tries a refused version again (a restart does).
Every transition is logged (`reload_state`) and reported to `on_transition` (a metric).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Generic, Protocol, TypeVar

import structlog

from prodcat.consumer.classify.checkpoint_source import CheckpointSource, Target
from prodcat.errors import CheckpointError, ConfigError
from prodcat.model.store import StoreUnavailable

log = structlog.get_logger(__name__)


class State(StrEnum):
    IDLE = "idle"
    LOADING = "loading"
    VERIFYING = "verifying"
    READY = "ready"
    REFUSED = "refused"
    BACKOFF = "backoff"


@dataclass(frozen=True)
class Backoff:
    """Exponential delays between tries of one target after transient failures."""

    initial_s: float = 1.0
    max_s: float = 60.0

    def delay(self, failures: int) -> float:
        return float(min(self.max_s, self.initial_s * 2 ** max(0, failures - 1)))


DEFAULT_BACKOFF = Backoff()


class Versioned(Protocol):
    @property
    def version(self) -> str: ...


M = TypeVar("M", bound=Versioned)


def _ignore(_value: object) -> None:
    return None


class Reloader(Generic[M]):
    """Follows a source's pointer; `gate` turns a local folder into a checked model or refuses it."""

    def __init__(
        self,
        source: CheckpointSource,
        gate: Callable[[Path], M],
        serving: Target,
        *,
        interval_s: float,
        backoff: Backoff = DEFAULT_BACKOFF,
        clock: Callable[[], float] = time.monotonic,
        on_transition: Callable[[State], None] | None = None,
        on_result: Callable[[str], None] | None = None,
        on_degraded: Callable[[str | None], None] | None = None,
        degraded: str | None = None,
        may_load: Callable[[], bool] = lambda: True,
        role: str | None = None,
    ) -> None:
        """`on_result` hears "loaded" or "refused" once per target; `on_degraded` a note while
        the registry cannot be read (None once it answers again). `degraded`: the registry was
        unreachable when `serving` was chosen. `may_load` is asked (on the polling thread)
        before a load starts: False while another reloader's load is in flight, so one process
        holds at most one model being loaded; the load is tried at a later poll. `role` names
        this reloader in its log lines when a process runs more than one (the candidate's)."""
        self._source = source
        self._gate = gate
        self._serving = serving
        self._interval_s = interval_s
        self._backoff = backoff
        self._clock = clock
        self._on_transition = on_transition or _ignore
        self._on_result = on_result or _ignore
        self._on_degraded = on_degraded or _ignore
        self._lock = threading.Lock()
        self._state = State.IDLE
        self._ready: tuple[Target, M] | None = None
        self._thread: threading.Thread | None = None
        self._next_check = clock() + interval_s
        self._refused: set[str] = set()
        self._pointer_refusal: str | None = None
        self._unreachable = degraded
        self._failures = 0
        self._failing: str | None = None
        self._may_load = may_load
        self._log = log if role is None else log.bind(role=role)

    @property
    def state(self) -> State:
        return self._state

    @property
    def serving(self) -> Target:
        return self._serving

    def poll(self) -> M | None:
        """A newly checked model, once; else None. Starts a load when the pointer moved."""
        with self._lock:
            ready = self._ready if self._state is State.READY else None
            if ready is not None:
                self._ready = None
                self._set(State.IDLE, ready[0].version)
            state = self._state
        if ready is not None:
            previous, (self._serving, model) = self._serving, ready
            self._source.served(self._serving, previous=previous)
            self._log.info("model_reloaded", previous=previous.version, version=model.version)
            self._on_result("loaded")
            return model
        if state in (State.LOADING, State.VERIFYING):
            return None
        now = self._clock()
        if now < self._next_check:
            return None
        self._next_check = now + self._interval_s
        target = self._read_pointer(now)
        if target is None:
            return None
        if target.key != self._failing:
            self._failures, self._failing = 0, None
        if target.key == self._serving.key or target.key in self._refused:
            if state is State.BACKOFF:
                with self._lock:
                    self._set(State.IDLE, target.version)
            return None
        if not self._may_load():
            return None
        with self._lock:
            self._set(State.LOADING, target.version)
        self._thread = threading.Thread(target=self._load, args=(target,), name="reload", daemon=True)
        self._thread.start()
        return None

    def _read_pointer(self, now: float) -> Target | None:
        try:
            target = self._source.target()
        except (StoreUnavailable, ConfigError, OSError) as exc:
            # Not a refusal: the registry will answer again (or its access be fixed), and the
            # model serving stays.
            message = str(exc)
            if self._unreachable is None:
                self._log.warning("registry_unreachable", registry=self._source.where, error=message)
                self._on_degraded(f"registry unreachable: {message}")
            self._unreachable = message
            if self._state is State.BACKOFF:
                self._failures += 1
                self._next_check = now + self._backoff.delay(self._failures)
            return None
        except CheckpointError as exc:
            # A pointer mid-edit, removed, or naming something outside the model folder: keep
            # serving, refuse it once, look again later.
            message = str(exc)
            if message != self._pointer_refusal:
                self._pointer_refusal = message
                self._on_result("refused")
                self._log.error("reload_refused", serving=self._serving.version, error=message)
            return None
        if self._unreachable is not None:
            self._log.info("registry_reachable", registry=self._source.where)
            self._unreachable = None
            self._on_degraded(None)
        self._pointer_refusal = None
        return target

    def _load(self, target: Target) -> None:
        try:
            directory = self._source.fetch(target)
            with self._lock:
                self._set(State.VERIFYING, target.version)
            model = self._gate(directory)
        except CheckpointError as exc:
            with self._lock:
                self._refused.add(target.key)
                self._set(State.REFUSED, target.version, error=str(exc))
            self._on_result("refused")
            self._log.error(
                "reload_refused", checkpoint=target.key, serving=self._serving.version, error=str(exc)
            )
        except Exception as exc:
            # The thread's boundary. Whatever else failed (the store, memory, I/O) says nothing
            # about the version: try it again later, keep serving meanwhile.
            with self._lock:
                self._failures, self._failing = self._failures + 1, target.key
                delay = self._backoff.delay(self._failures)
                self._next_check = self._clock() + delay
                self._set(
                    State.BACKOFF, target.version, error=f"{type(exc).__name__}: {exc}", retry_in_s=delay
                )
        else:
            with self._lock:
                self._ready = (target, model)
                self._set(State.READY, target.version)

    def _set(self, state: State, version: str, **details: object) -> None:
        # Called with the lock held.
        self._log.info(
            "reload_state", previous=self._state.value, state=state.value, version=version, **details
        )
        self._state = state
        self._on_transition(state)

    def wait(self, timeout_s: float) -> None:
        """Waits for a load in progress to end (tests, shutdown)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s)

    def close(self) -> None:
        self.wait(60.0)
        with self._lock:
            self._ready = None
