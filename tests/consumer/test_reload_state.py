"""The reload state machine alone: a strict in-memory store, a fake gate, the test's own clock."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from prodcat.consumer.classify.checkpoint_source import RegistrySource, Target
from prodcat.consumer.classify.reload import Backoff, Reloader, State
from prodcat.errors import CheckpointError, ConfigError
from prodcat.model.cache import CheckpointCache
from prodcat.model.checkpoint import CURRENT_FILE, MANIFEST_FILE
from prodcat.model.registry import Registry
from prodcat.model.store import Blob, ObjectMissing, RegistryStore, StoreUnavailable, WriteConflict
from prodcat.schemas.manifest import CheckpointManifest, TrainingRecipe

MODEL = "m"
WEIGHTS = "weights.safetensors"
INTERVAL_S = 5.0
BACKOFF = Backoff(initial_s=2.0, max_s=8.0)


def manifest(version: str, files: dict[str, str]) -> bytes:
    recipe = TrainingRecipe(
        method="full",
        learning_rate=1e-3,
        epochs=1.0,
        batch_size=8,
        seed=0,
        train_examples=8,
        validation_examples=2,
    )
    return (
        CheckpointManifest(
            model_name=MODEL,
            version=version,
            created_at=datetime.now(UTC),
            base_model="tiny",
            labels=["a", "b"],
            max_length=16,
            training=recipe,
            files=files,
        )
        .model_dump_json()
        .encode()
    )


class MemoryStore:
    """A RegistryStore in a dict. `down` fails every call as an unreachable store does, `denied`
    as one refusing the credentials; `failing_streams` fails that many downloads once begun."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}
        self.down = False
        self.denied = False
        self.failing_streams = 0
        self.reads: list[str] = []
        self._writes = 0

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailable("memory store is down")
        if self.denied:
            raise ConfigError("memory store: access refused")

    @property
    def uri(self) -> str:
        return "memory://registry"

    @property
    def conditional_writes(self) -> str | None:
        return None

    def local_root(self) -> None:
        return None

    def get(self, key: str) -> Blob | None:
        self._check()
        self.reads.append(key)
        found = self.objects.get(key)
        return None if found is None else Blob(*found)

    def tag(self, key: str) -> str | None:
        self._check()
        found = self.objects.get(key)
        return None if found is None else found[1]

    def stream(self, key: str) -> Iterator[bytes]:
        self._check()
        if key not in self.objects:
            raise ObjectMissing(key)
        if self.failing_streams:
            self.failing_streams -= 1
            raise StoreUnavailable("connection reset by peer")
        yield self.objects[key][0]

    def children(self, prefix: str) -> list[str]:
        self._check()
        start = f"{prefix}/" if prefix else ""
        below = [k[len(start) :] for k in self.objects if k.startswith(start)]
        return sorted({rest.split("/")[0] for rest in below if "/" in rest})

    def put_if(self, key: str, data: bytes, *, tag: str | None) -> str:
        self._check()
        if self.tag(key) != tag:
            raise WriteConflict(key)
        self._writes += 1
        self.objects[key] = (data, f"t{self._writes}")
        return f"t{self._writes}"

    def staging(self, prefix: str) -> AbstractContextManager[Path]:
        raise NotImplementedError("these tests put versions with `publish_version`")

    def put_tree(self, staging: Path, prefix: str, *, last: str) -> None:
        raise NotImplementedError("these tests put versions with `publish_version`")

    def publish_version(self, version: str, *, tamper: bool = False) -> None:
        weights = f"weights of {version}".encode()
        stored = b"x" + weights if tamper else weights
        self.objects[f"{MODEL}/{version}/{WEIGHTS}"] = (stored, f"w-{version}")
        files = {WEIGHTS: hashlib.sha256(weights).hexdigest()}
        self.objects[f"{MODEL}/{version}/{MANIFEST_FILE}"] = (manifest(version, files), f"m-{version}")

    def point(self, version: str) -> None:
        self._writes += 1
        self.objects[f"{MODEL}/{CURRENT_FILE}"] = (f"{version}\n".encode(), f"t{self._writes}")


@dataclass(frozen=True)
class FakeModel:
    version: str


@dataclass
class Gate:
    """Stands in for load_model + label and budget checks: verdicts per version, calls recorded."""

    refuse: set[str] = field(default_factory=set)
    transient: list[BaseException] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    hold: threading.Event | None = None

    def __call__(self, directory: Path) -> FakeModel:
        self.calls.append(directory.name)
        if self.hold is not None:
            self.hold.wait(10)
        if self.transient:
            raise self.transient.pop(0)
        if directory.name in self.refuse:
            raise CheckpointError(f"{directory.name} disagrees with its golden set")
        return FakeModel(directory.name)


class Machine:
    def __init__(self, tmp_path: Path, gate: Gate, may_load: Callable[[], bool] = lambda: True) -> None:
        self.store = MemoryStore()
        self.store.publish_version("v1")
        self.store.point("v1")
        self.now = [0.0]
        self.transitions: list[State] = []
        self.results: list[str] = []
        self.notes: list[str | None] = []
        checked: RegistryStore = self.store
        self.source = RegistrySource(Registry(checked), MODEL, CheckpointCache(tmp_path / "cache"))
        self.reloader: Reloader[FakeModel] = Reloader(
            self.source,
            gate,
            Target("v1", "v1"),
            interval_s=INTERVAL_S,
            backoff=BACKOFF,
            clock=lambda: self.now[0],
            on_transition=self.transitions.append,
            on_result=self.results.append,
            on_degraded=self.notes.append,
            may_load=may_load,
        )

    def at(self, seconds: float) -> FakeModel | None:
        """Polls at `seconds`, then waits for a load it started to end."""
        self.now[0] = seconds
        fresh = self.reloader.poll()
        self.reloader.wait(10)
        return fresh

    def promote(self, version: str, **publish: bool) -> None:
        self.store.publish_version(version, **publish)
        self.store.point(version)


def test_a_promoted_version_goes_idle_loading_verifying_ready_then_idle_once_swapped(tmp_path: Path) -> None:
    machine = Machine(tmp_path, Gate())
    machine.promote("v2")

    assert machine.at(5.0) is None
    assert machine.reloader.state is State.READY
    fresh = machine.at(5.1)

    assert fresh == FakeModel("v2")
    assert machine.transitions == [State.LOADING, State.VERIFYING, State.READY, State.IDLE]
    assert machine.results == ["loaded"]


def test_no_second_load_starts_while_one_runs_or_waits_to_be_swapped(tmp_path: Path) -> None:
    hold = threading.Event()
    gate = Gate(hold=hold)
    machine = Machine(tmp_path, gate)
    machine.promote("v2")
    machine.now[0] = 5.0
    machine.reloader.poll()
    deadline = time.monotonic() + 10
    while machine.reloader.state is not State.VERIFYING and time.monotonic() < deadline:
        time.sleep(0.01)
    for seconds in (10.0, 15.0, 20.0):
        machine.now[0] = seconds
        assert machine.reloader.poll() is None
    hold.set()
    machine.reloader.wait(10)
    # The load thread has ended and its model waits: the pointer is due again, and still
    # names a version not yet swapped in, yet no second load starts.
    machine.now[0] = 25.0
    fresh = machine.reloader.poll()

    assert fresh == FakeModel("v2")
    assert gate.calls == ["v2"]


def test_no_load_starts_while_another_reloader_loads_and_it_starts_at_a_later_poll(tmp_path: Path) -> None:
    other_loading = [True]
    gate = Gate()
    machine = Machine(tmp_path, gate, may_load=lambda: not other_loading[0])
    machine.promote("v2")

    assert machine.at(5.0) is None
    assert (gate.calls, machine.reloader.state) == ([], State.IDLE)
    other_loading[0] = False
    machine.at(10.0)
    assert machine.at(10.1) == FakeModel("v2")


def test_a_transient_failure_backs_off_and_tries_the_same_version_again(tmp_path: Path) -> None:
    gate = Gate(transient=[MemoryError("out of memory")])
    machine = Machine(tmp_path, gate)
    machine.promote("v2")

    machine.at(5.0)
    assert machine.reloader.state is State.BACKOFF
    assert machine.at(5.0 + BACKOFF.initial_s - 0.1) is None and gate.calls == ["v2"]
    machine.at(5.0 + BACKOFF.initial_s)
    fresh = machine.at(5.0 + BACKOFF.initial_s + 0.1)

    assert fresh == FakeModel("v2")
    assert gate.calls == ["v2", "v2"]
    assert "refused" not in machine.results


def test_a_store_outage_during_the_download_is_retried_not_refused(tmp_path: Path) -> None:
    gate = Gate()
    machine = Machine(tmp_path, gate)
    machine.promote("v2")
    machine.store.failing_streams = 1

    machine.at(5.0)
    assert machine.reloader.state is State.BACKOFF
    machine.at(5.0 + BACKOFF.initial_s)

    assert machine.at(5.0 + BACKOFF.initial_s + 0.1) == FakeModel("v2")
    assert machine.results == ["loaded"]
    assert gate.calls == ["v2"]


def test_an_unreachable_registry_is_noted_and_cleared_without_a_refusal(tmp_path: Path) -> None:
    machine = Machine(tmp_path, Gate())
    machine.store.down = True
    machine.at(5.0)
    machine.store.down = False
    machine.at(10.0)

    assert machine.notes == ["registry unreachable: memory store is down", None]
    assert machine.results == []
    assert machine.reloader.state is State.IDLE


def test_refused_access_to_the_registry_is_noted_not_raised_and_not_a_refusal(tmp_path: Path) -> None:
    machine = Machine(tmp_path, Gate())
    machine.store.denied = True

    assert machine.at(5.0) is None
    assert machine.notes == ["registry unreachable: memory store: access refused"]
    assert machine.results == []


def test_backoff_grows_while_the_store_stays_down_after_a_failed_load(tmp_path: Path) -> None:
    gate = Gate(transient=[OSError(5, "Input/output error")])
    machine = Machine(tmp_path, gate)
    machine.promote("v2")
    machine.at(5.0)
    machine.store.down = True
    machine.at(5.0 + BACKOFF.initial_s)  # the pointer cannot be read: wait twice as long
    machine.store.down = False

    assert machine.at(5.0 + BACKOFF.initial_s + 2 * BACKOFF.initial_s - 0.1) is None
    assert gate.calls == ["v2"]
    machine.at(5.0 + 3 * BACKOFF.initial_s)
    assert gate.calls == ["v2", "v2"]


def test_a_verification_failure_refuses_the_version_and_it_is_not_tried_again(tmp_path: Path) -> None:
    gate = Gate(refuse={"v2"})
    machine = Machine(tmp_path, gate)
    machine.promote("v2")

    machine.at(5.0)
    machine.at(10.0)
    machine.at(15.0)

    assert machine.reloader.state is State.REFUSED
    assert machine.results == ["refused"]
    assert gate.calls == ["v2"]


def test_a_tampered_download_is_refused_before_the_gate_sees_it(tmp_path: Path) -> None:
    gate = Gate()
    machine = Machine(tmp_path, gate)
    machine.promote("v2", tamper=True)

    machine.at(5.0)

    assert machine.reloader.state is State.REFUSED
    assert gate.calls == []
    assert not (tmp_path / "cache" / MODEL / "v2").exists()
    assert not (tmp_path / "cache" / MODEL / ".partial-v2").exists()


def test_after_a_refusal_the_next_promoted_version_is_loaded(tmp_path: Path) -> None:
    machine = Machine(tmp_path, Gate(refuse={"v2"}))
    machine.promote("v2")
    machine.at(5.0)
    machine.promote("v3")
    machine.at(10.0)

    assert machine.at(10.1) == FakeModel("v3")


def test_the_cache_keeps_the_serving_and_the_previous_version_only(tmp_path: Path) -> None:
    machine = Machine(tmp_path, Gate())
    for step, version in enumerate(("v2", "v3", "v4"), start=1):
        machine.promote(version)
        machine.at(5.0 * step)
        machine.at(5.0 * step + 0.1)

    assert sorted(p.name for p in (tmp_path / "cache" / MODEL).iterdir() if p.is_dir()) == ["v3", "v4"]
    assert CheckpointCache(tmp_path / "cache").remembered(MODEL) == tmp_path / "cache" / MODEL / "v4"


def test_an_unchanged_pointer_is_not_read_again(tmp_path: Path) -> None:
    machine = Machine(tmp_path, Gate())
    machine.at(5.0)
    machine.store.reads.clear()
    machine.at(10.0)

    assert machine.store.reads == []


@pytest.mark.parametrize(("failures", "delay"), [(1, 2.0), (2, 4.0), (3, 8.0), (6, 8.0)])
def test_backoff_doubles_up_to_its_cap(failures: int, delay: float) -> None:
    assert BACKOFF.delay(failures) == delay
