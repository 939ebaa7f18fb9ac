"""Who owns the serving model: the gated load at start, hot reload, close.

The registry's CURRENT pointer is re-read every `interval_s` (on an object store: a HEAD,
and a read only when its ETag moved). A new target is fetched (downloaded into the local
cache and checked against its manifest's sha256) and loaded through the same gate as at
start (`prodcat.model.loading.load_model`: sha256 of every file, warm-up, golden set),
then checked for the serving label set and the token budget, on a background thread, so
polling, heartbeats and commits go on meanwhile; the engine swaps it in between two
batches. The state machine in `reload.py` runs one load at a time, retries transient
failures with backoff and refuses a version only on the gate's verdict; the old model
keeps serving meanwhile.

The registry's CANDIDATE is followed the same way, on the same interval, by a second
reloader through the same gate (the serving label set included), and exposed as
`candidate` for the shadow. The two reloaders never load at once, so the process holds at
most the serving model, the candidate and one model being loaded. A refused candidate is
logged and counted like a refused reload and changes nothing served; a cleared CANDIDATE, or
one naming the serving version, drops the candidate.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import structlog

from prodcat.consumer.classify.checkpoint_source import (
    CandidateSource,
    CheckpointSource,
    Target,
    open_candidate_source,
    open_source,
)
from prodcat.consumer.classify.reload import DEFAULT_BACKOFF, Backoff, Reloader, State
from prodcat.errors import CheckpointError, ConfigError
from prodcat.model.checkpoint import check_same_labels
from prodcat.model.loading import load_model
from prodcat.model.runtime import ServingModel, TorchModel
from prodcat.model.store import StoreUnavailable

log = structlog.get_logger(__name__)
# A reloader in these states holds, or is about to hold, a model being loaded.
BUSY = (State.LOADING, State.VERIFYING, State.READY)
# What the candidate's reloader starts from: no candidate loaded (no version has this key).
NO_CANDIDATE = Target("", "")


class ModelSource(Protocol):
    """What the engine needs of a model owner: the model to use now, and a newer one when ready."""

    @property
    def current(self) -> ServingModel: ...

    def poll(self) -> ServingModel | None:
        """A newly loaded and checked model, once, which is `current` from now on; else None."""
        ...

    @property
    def candidate(self) -> ServingModel | None:
        """The registry's candidate, loaded through the same gate with the serving label set,
        for the shadow to judge beside `current`; None when there is none (the usual case)."""
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

    @property
    def candidate(self) -> ServingModel | None:
        return None

    def close(self) -> None:
        return None


class ModelProvider:
    def __init__(
        self,
        model: TorchModel,
        location: str | os.PathLike[str] | CheckpointSource,
        *,
        model_name: str | None,
        device: str,
        interval_s: float,
        min_agreement: float,
        max_tokens: int,
        on_result: Callable[[str], None] | None = None,
        on_transition: Callable[[State], None] | None = None,
        on_degraded: Callable[[str | None], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        cache_dir: Path | None = None,
        backoff: Backoff = DEFAULT_BACKOFF,
        serving: Target | None = None,
        degraded: str | None = None,
        candidates: CandidateSource | None = None,
    ) -> None:
        """`on_result` hears "loaded" or "refused" for each reload and `on_transition` each
        state change (the service's metrics); `on_degraded` a note while the registry cannot
        be read; `max_tokens` is the batch token budget a reloaded checkpoint's max length
        must fit. `serving` is the target `model` was loaded from (default: its folder);
        `degraded` the note it was started with, cleared once the registry answers.
        `candidates`: the registry's CANDIDATE to follow (default: that of `location` when it
        is a path or URI; none for a CheckpointSource)."""
        self._model = model
        self._device = device
        self._min_agreement = min_agreement
        self._max_tokens = max_tokens
        self._enabled = interval_s > 0
        self._interval_s = interval_s
        self._clock = clock
        self._backoff = backoff
        self._on_result = on_result
        if isinstance(location, str | os.PathLike):
            source = open_source(location, model_name=model_name, cache_dir=cache_dir)
            if candidates is None:
                candidates = open_candidate_source(location, model_name=model_name, cache_dir=cache_dir)
        else:
            source = location
        self._candidates = candidates
        self._candidate: TorchModel | None = None
        self._candidate_reloader: Reloader[TorchModel] | None = None
        self._next_candidate_check = clock() + interval_s
        self._candidate_refusal: str | None = None
        # Whether CANDIDATE, when last read, named a version other than the serving one.
        self._wanted = False
        directory = model.checkpoint.directory
        self._reloader: Reloader[TorchModel] = Reloader(
            source,
            self._gate,
            serving or Target(str(directory), model.version),
            interval_s=interval_s,
            backoff=backoff,
            clock=clock,
            on_transition=on_transition,
            on_result=on_result,
            on_degraded=on_degraded,
            degraded=degraded,
            may_load=self._no_candidate_load,
        )

    @classmethod
    def open(
        cls,
        location: str | os.PathLike[str],
        *,
        model_name: str | None,
        device: str,
        interval_s: float,
        min_agreement: float,
        max_tokens: int,
        on_result: Callable[[str], None] | None = None,
        on_transition: Callable[[State], None] | None = None,
        on_degraded: Callable[[str | None], None] | None = None,
        cache_dir: Path | None = None,
        backoff: Backoff = DEFAULT_BACKOFF,
    ) -> ModelProvider:
        """Loads the live checkpoint through the gate; CheckpointError when it is refused.

        With the registry unreachable it serves the version this machine served last, when
        its cache still holds it (`on_degraded` and the log say so); otherwise
        StoreUnavailable: one line, and the command exits 1.
        """
        source = open_source(location, model_name=model_name, cache_dir=cache_dir)
        cached = source.cached()
        note = None
        try:
            target = source.target()
            directory = source.fetch(target)
        except StoreUnavailable as exc:
            if cached is None:
                raise StoreUnavailable(f"{exc}; no cached checkpoint to serve meanwhile") from None
            target, directory = cached
            note = f"serving cached version {target.version}: registry unreachable at start"
            log.warning("registry_unreachable_serving_cache", version=target.version, error=str(exc))
            if on_degraded is not None:
                on_degraded(note)
        model = load_model(directory, device=device, min_agreement=min_agreement)
        # The version served before this start stays cached as the previous one.
        source.served(target, previous=cached[0] if cached is not None else None)
        return cls(
            model,
            source,
            model_name=model_name,
            device=device,
            interval_s=interval_s,
            min_agreement=min_agreement,
            max_tokens=max_tokens,
            on_result=on_result,
            on_transition=on_transition,
            on_degraded=on_degraded,
            backoff=backoff,
            serving=target,
            degraded=note,
            candidates=open_candidate_source(location, model_name=model_name, cache_dir=cache_dir),
        )

    @property
    def current(self) -> TorchModel:
        return self._model

    @property
    def candidate(self) -> TorchModel | None:
        candidate = self._candidate
        # A promote makes the candidate serve before the next look at CANDIDATE drops it.
        if candidate is None or candidate.version == self._model.version:
            return None
        return candidate

    @property
    def state(self) -> State:
        return self._reloader.state

    def poll(self) -> TorchModel | None:
        if not self._enabled:
            return None
        fresh = self._reloader.poll()
        if fresh is not None:
            self._model = fresh
        if self._candidates is not None:
            self._follow_candidate(self._candidates)
        return fresh

    def _follow_candidate(self, candidates: CandidateSource) -> None:
        now = self._clock()
        if now >= self._next_candidate_check:
            self._next_candidate_check = now + self._interval_s
            known, named = self._read_candidate(candidates)
            if known:
                self._wanted = named is not None and named.version != self._reloader.serving.version
        if not self._wanted:
            self._drop_candidate()
            return
        reloader = self._candidate_reloader
        if reloader is None:
            return
        fresh = reloader.poll()
        if fresh is not None:
            self._candidate = fresh
            log.info("candidate_loaded", version=fresh.version, serving=self._model.version)

    def _read_candidate(self, candidates: CandidateSource) -> tuple[bool, Target | None]:
        """Whether CANDIDATE could be read, and what it names (None: no candidate). It cannot be
        read while the registry is unreachable (the serving reloader reports that) or when
        CANDIDATE is refused; the candidate held meanwhile stays."""
        try:
            named = candidates.read()
        except (StoreUnavailable, ConfigError, OSError):
            return False, None
        except CheckpointError as exc:
            message = str(exc)
            if message != self._candidate_refusal:
                self._candidate_refusal = message
                if self._on_result is not None:
                    self._on_result("refused")
                log.error("reload_refused", role="candidate", error=message)
            return False, None
        self._candidate_refusal = None
        if named is None:
            return True, None
        if self._candidate_reloader is None:
            self._candidate_reloader = Reloader(
                candidates,
                self._gate,
                NO_CANDIDATE,
                interval_s=0.0,
                backoff=self._backoff,
                clock=self._clock,
                on_result=self._candidate_result,
                may_load=lambda: self._reloader.state not in BUSY,
                role="candidate",
            )
        return True, named

    def _candidate_result(self, result: str) -> None:
        # A refused candidate counts as a refused reload; a loaded one replaced nothing served.
        if result == "refused" and self._on_result is not None:
            self._on_result(result)

    def _drop_candidate(self) -> None:
        reloader = self._candidate_reloader
        if reloader is not None and reloader.state in (State.LOADING, State.VERIFYING):
            # Never waited for on the Kafka thread: dropped at the first poll after its load ends.
            return
        if reloader is not None:
            reloader.close()  # its load has ended: returns at once, and lets go of a ready model
            self._candidate_reloader = None
        if self._candidate is not None:
            log.info("candidate_dropped", version=self._candidate.version, serving=self._model.version)
            self._candidate = None

    def _no_candidate_load(self) -> bool:
        reloader = self._candidate_reloader
        return reloader is None or reloader.state not in BUSY

    def _gate(self, directory: Path) -> TorchModel:
        # Runs on the load thread; the serving model does not change while a load runs.
        model = load_model(directory, device=self._device, min_agreement=self._min_agreement)
        check_same_labels(self._model.checkpoint.manifest, model.checkpoint.manifest)
        if model.max_length > self._max_tokens:
            raise CheckpointError(
                f"its max length {model.max_length} is above --max-batch-tokens {self._max_tokens}: "
                "a long title could never be batched"
            )
        return model

    def wait_for_reload(self, timeout_s: float) -> None:
        """Waits for a load in progress to end (tests, shutdown)."""
        self._reloader.wait(timeout_s)
        if self._candidate_reloader is not None:
            self._candidate_reloader.wait(timeout_s)

    def close(self) -> None:
        self._reloader.close()
        if self._candidate_reloader is not None:
            self._candidate_reloader.close()
        self._candidate = None
