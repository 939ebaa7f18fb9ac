"""A consumer's model on an S3 registry (moto's server over HTTP): start, follow, outages, tampering."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import obstore
import pytest
from obstore.store import S3Store

from prodcat.consumer.classify.provider import ModelProvider
from prodcat.consumer.classify.reload import Backoff, State
from prodcat.errors import CheckpointError
from prodcat.model.checkpoint import HEAD_FILE, resolve
from prodcat.model.registry import Registry
from prodcat.model.store import StoreUnavailable
from prodcat.trainer.publish import promote, rollback
from tests.cli_runner import run_cli
from tests.s3 import S3Registry, upload_version

MODEL = "product-categorizer"
QUICK = Backoff(initial_s=0.2, max_s=0.4)


@pytest.fixture
def registry(s3_registry: S3Registry, trained_registry: Path, tmp_path: Path) -> Registry:
    """v1 and v2 (copies of the trained checkpoint) on S3, v1 CURRENT."""
    registry = s3_registry.open()
    for version in ("v1", "v2"):
        upload_version(registry, resolve(trained_registry), MODEL, version, tmp_path)
    registry.move(MODEL, ["v1"], read_as=None, action="promote")
    return registry


class Follower:
    """A provider on the S3 registry, polled by the test; what it reported is kept."""

    def __init__(self, uri: str, cache: Path) -> None:
        self.results: Counter[str] = Counter()
        self.states: list[State] = []
        self.notes: list[str | None] = []
        self.provider = ModelProvider.open(
            uri,
            model_name=MODEL,
            device="cpu",
            interval_s=0.05,
            min_agreement=0.9,
            max_tokens=16384,
            on_result=lambda result: self.results.update([result]),
            on_transition=self.states.append,
            on_degraded=self.notes.append,
            cache_dir=cache,
            backoff=QUICK,
        )

    def until(self, version: str, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.provider.current.version != version:
            if time.monotonic() > deadline:
                raise AssertionError(f"still serving {self.provider.current.version}, states {self.states}")
            self.provider.poll()
            time.sleep(0.02)

    def poll_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.provider.poll()
            time.sleep(0.02)


def bucket(s3_registry: S3Registry) -> S3Store:
    return S3Store(s3_registry.uri.removeprefix("s3://").split("/")[0], client_options={"allow_http": True})


def test_a_consumer_serves_current_and_follows_promote_and_rollback(
    registry: Registry, s3_registry: S3Registry, tmp_path: Path
) -> None:
    follower = Follower(s3_registry.uri, tmp_path / "cache")
    assert follower.provider.current.version == "v1"

    promote(registry, MODEL, "v2")
    follower.until("v2")
    rollback(registry, MODEL)
    follower.until("v1")

    assert follower.results == {"loaded": 2}
    assert sorted(p.name for p in (tmp_path / "cache" / MODEL).iterdir() if p.is_dir()) == ["v1", "v2"]


def test_with_the_store_down_at_start_the_cached_current_is_served_and_noted_until_it_answers(
    registry: Registry, s3_registry: S3Registry, tmp_path: Path
) -> None:
    Follower(s3_registry.uri, tmp_path / "cache").provider.close()
    s3_registry.outage.down()

    follower = Follower(s3_registry.uri, tmp_path / "cache")
    assert follower.provider.current.version == "v1"
    assert follower.notes == ["serving cached version v1: registry unreachable at start"]

    s3_registry.outage.up()
    follower.poll_for(0.5)
    assert follower.notes[1:] == [None]


def test_with_the_store_down_at_start_and_nothing_cached_the_start_fails(
    registry: Registry, s3_registry: S3Registry, tmp_path: Path
) -> None:
    s3_registry.outage.down()

    with pytest.raises(StoreUnavailable, match="no cached checkpoint to serve meanwhile"):
        Follower(s3_registry.uri, tmp_path / "cache")


def test_consume_with_the_store_down_and_nothing_cached_exits_1_with_one_line(
    registry: Registry,
    s3_registry: S3Registry,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s3_registry.outage.down()
    monkeypatch.setenv("PRODCAT_REGISTRY", s3_registry.uri)
    monkeypatch.setenv("PRODCAT_CACHE_DIR", str(tmp_path / "cache"))

    code, error = run_cli(capsys, "consume", "--device", "cpu")

    assert code == 1
    assert error.startswith(f"prodcat: error: {s3_registry.uri}/")
    assert error.endswith("no cached checkpoint to serve meanwhile\n") and error.count("\n") == 1


def test_a_store_failing_during_a_reload_is_retried_and_the_version_is_not_refused(
    registry: Registry, s3_registry: S3Registry, tmp_path: Path
) -> None:
    follower = Follower(s3_registry.uri, tmp_path / "cache")
    promote(registry, MODEL, "v2")
    s3_registry.outage.cut_requests_for(f"/{MODEL}/v2/".encode())
    deadline = time.monotonic() + 60
    while State.BACKOFF not in follower.states and time.monotonic() < deadline:
        follower.poll_for(0.1)
    assert State.BACKOFF in follower.states, follower.states

    s3_registry.outage.cut_requests_for(None)
    follower.until("v2")

    assert follower.results == {"loaded": 1}


def test_a_tampered_object_is_refused_on_reload_and_the_old_version_keeps_serving(
    registry: Registry, s3_registry: S3Registry, tmp_path: Path
) -> None:
    follower = Follower(s3_registry.uri, tmp_path / "cache")
    key = f"registry/{MODEL}/v2/{HEAD_FILE}"
    data = bytearray(obstore.get(bucket(s3_registry), key).bytes())
    data[-1] ^= 0xFF
    obstore.put(bucket(s3_registry), key, bytes(data))
    history, tag = registry.history(MODEL)
    registry.move(MODEL, [*history, "v2"], read_as=tag, action="promote")

    deadline = time.monotonic() + 60
    while not follower.results and time.monotonic() < deadline:
        follower.poll_for(0.1)

    assert follower.results == {"refused": 1}
    assert follower.provider.current.version == "v1"
    assert not (tmp_path / "cache" / MODEL / "v2").exists()
    with pytest.raises(CheckpointError, match="sha256"):
        registry.fetch(MODEL, "v2", tmp_path / "elsewhere")
