"""The provider follows the registry's CANDIDATE beside CURRENT: loaded through the same gate,
exposed for the shadow, dropped when cleared; a refused candidate changes nothing served."""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from structlog.testing import capture_logs

from prodcat.consumer.classify.provider import ModelProvider
from prodcat.model.checkpoint import GOLDEN_FILE, MANIFEST_FILE, file_sha256, resolve
from prodcat.model.loading import load_model
from prodcat.model.registry import Registry, open_registry
from prodcat.model.runtime import TorchModel
from prodcat.trainer.publish import promote
from tests.s3 import S3Registry, upload_version

MODEL = "product-categorizer"


def copy_as_version(registry: Path, source: Path, version: str, *, rename_labels: bool = False) -> None:
    """Publishes a copy of the checkpoint `source` as `version`; its labels renamed (golden set
    and manifest alike, so only the label-set check can refuse it) when asked."""
    target = registry / MODEL / version
    shutil.copytree(source, target)
    manifest = orjson.loads((target / MANIFEST_FILE).read_bytes())
    manifest["version"] = version
    if rename_labels:
        renamed = {label: f"{label}-new" for label in manifest["labels"]}
        golden = [orjson.loads(line) for line in (target / GOLDEN_FILE).read_bytes().splitlines()]
        (target / GOLDEN_FILE).write_bytes(
            b"\n".join(orjson.dumps({**g, "label": renamed[g["label"]]}) for g in golden) + b"\n"
        )
        manifest["files"][GOLDEN_FILE] = file_sha256(target / GOLDEN_FILE)
        manifest["labels"] = [renamed[label] for label in manifest["labels"]]
    (target / MANIFEST_FILE).write_bytes(orjson.dumps(manifest))


@pytest.fixture
def local(trained_registry: Path, tmp_path: Path) -> Registry:
    """A copy of the session's registry; `v2` a copy of CURRENT, `relabelled` one with other labels."""
    root = Path(shutil.copytree(trained_registry, tmp_path / "registry"))
    serving = resolve(root / MODEL)
    copy_as_version(root, serving, "v2")
    copy_as_version(root, serving, "relabelled", rename_labels=True)
    return open_registry(root)


class Shadowed:
    """A provider on a registry, its clock in the test's hands, and what it reported."""

    def __init__(self, registry: Registry, clock: Callable[[], float]) -> None:
        self.results: Counter[str] = Counter()
        root = Path(registry.uri)
        self.provider = ModelProvider(
            load_model(root, device="cpu", min_agreement=0.9),
            root,
            model_name=None,
            device="cpu",
            interval_s=5.0,
            min_agreement=0.9,
            max_tokens=16384,
            on_result=lambda result: self.results.update([result]),
            clock=clock,
        )

    def until_candidate(self, timeout_s: float = 60.0) -> TorchModel | None:
        """Polls until a candidate is exposed or refused."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.provider.poll()
            if self.provider.candidate is not None or self.results["refused"]:
                return self.provider.candidate
            time.sleep(0.02)
        raise AssertionError("the candidate was neither loaded nor refused")


def test_the_candidate_is_loaded_beside_current_after_the_poll_interval(local: Registry) -> None:
    now = [0.0]
    shadowed = Shadowed(local, lambda: now[0])
    serving = shadowed.provider.current
    local.set_candidate(MODEL, "v2")
    shadowed.provider.poll()
    shadowed.provider.wait_for_reload(10)
    assert shadowed.provider.candidate is None  # before the interval

    now[0] = 5.0
    candidate = shadowed.until_candidate()

    assert candidate is not None and candidate.version == "v2"
    assert shadowed.provider.current is serving and shadowed.results == {}


def test_a_cleared_candidate_is_dropped_at_the_next_poll_interval(local: Registry) -> None:
    now = [0.0]
    shadowed = Shadowed(local, lambda: now[0])
    local.set_candidate(MODEL, "v2")
    now[0] = 5.0
    shadowed.until_candidate()

    local.clear_candidate(MODEL, "v2")
    shadowed.provider.poll()
    assert shadowed.provider.candidate is not None  # before the interval
    now[0] = 10.0
    shadowed.provider.poll()
    assert shadowed.provider.candidate is None


def test_a_candidate_with_another_label_set_is_refused_and_serving_goes_on(local: Registry) -> None:
    now = [0.0]
    shadowed = Shadowed(local, lambda: now[0])
    serving = shadowed.provider.current
    local.set_candidate(MODEL, "relabelled")
    now[0] = 5.0

    assert shadowed.until_candidate() is None
    now[0] = 10.0
    shadowed.provider.poll()
    shadowed.provider.wait_for_reload(10)
    assert (shadowed.results, shadowed.provider.current) == ({"refused": 1}, serving)


def test_a_candidate_that_names_the_serving_version_is_not_loaded(local: Registry) -> None:
    now = [0.0]
    shadowed = Shadowed(local, lambda: now[0])
    local.set_candidate(MODEL, shadowed.provider.current.version)
    now[0] = 5.0
    with capture_logs() as logs:
        shadowed.provider.poll()
        shadowed.provider.wait_for_reload(10)
        shadowed.provider.poll()
    assert [entry["event"] for entry in logs if entry.get("role") == "candidate"] == []
    assert shadowed.provider.candidate is None


@pytest.fixture
def s3(s3_registry: S3Registry, trained_registry: Path, tmp_path: Path) -> Registry:
    """v1 CURRENT and v2 on S3, no candidate yet."""
    registry = s3_registry.open()
    for version in ("v1", "v2"):
        upload_version(registry, resolve(trained_registry), MODEL, version, tmp_path)
    registry.move(MODEL, ["v1"], read_as=None, action="promote")
    return registry


def poll_until(provider: ModelProvider, done: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError("the provider never got there")
        provider.poll()
        time.sleep(0.02)


def test_on_s3_the_candidate_is_followed_and_promoting_it_serves_it_and_drops_it(
    s3: Registry, s3_registry: S3Registry, tmp_path: Path
) -> None:
    provider = ModelProvider.open(
        s3_registry.uri,
        model_name=MODEL,
        device="cpu",
        interval_s=0.05,
        min_agreement=0.9,
        max_tokens=16384,
        cache_dir=tmp_path / "cache",
    )
    s3.set_candidate(MODEL, "v2")
    poll_until(provider, lambda: provider.candidate is not None)
    assert (provider.current.version, provider.candidate is not None and provider.candidate.version) == (
        "v1",
        "v2",
    )

    promote(s3, MODEL, "v2")
    poll_until(provider, lambda: provider.current.version == "v2")
    provider.poll()
    assert provider.candidate is None
    provider.close()


def test_the_candidate_is_not_loaded_while_a_reload_of_current_is_in_flight(local: Registry) -> None:
    now = [0.0]
    shadowed = Shadowed(local, lambda: now[0])
    root = Path(local.uri)
    copy_as_version(root, root / MODEL / "v2", "v3")
    promote(local, MODEL, "v2")
    local.set_candidate(MODEL, "v3")
    now[0] = 5.0
    with capture_logs() as logs:
        shadowed.provider.poll()  # starts the reload of CURRENT; the candidate must wait
    shadowed.provider.wait_for_reload(10)
    assert [e["state"] for e in logs if e["event"] == "reload_state" and e.get("role") == "candidate"] == []

    candidate = shadowed.until_candidate()
    assert (shadowed.provider.current.version, candidate is not None and candidate.version) == ("v2", "v3")


def test_a_reload_of_current_waits_while_the_candidate_loads(local: Registry) -> None:
    now = [0.0]
    shadowed = Shadowed(local, lambda: now[0])
    root = Path(local.uri)
    copy_as_version(root, root / MODEL / "v2", "v3")
    local.set_candidate(MODEL, "v3")
    now[0] = 5.0
    shadowed.provider.poll()  # starts the candidate's load
    promote(local, MODEL, "v2")
    now[0] = 10.0
    with capture_logs() as logs:
        shadowed.provider.poll()  # the candidate's load has not been taken in yet
    assert [e for e in logs if e["event"] == "reload_state" and "role" not in e] == []

    now[0] = 15.0
    deadline = time.monotonic() + 60
    while shadowed.provider.current.version != "v2" and time.monotonic() < deadline:
        shadowed.provider.poll()
        now[0] += 5.0
        time.sleep(0.02)
    assert shadowed.provider.current.version == "v2"


def test_a_candidate_pointer_that_names_no_plain_version_is_refused_once(local: Registry) -> None:
    now = [0.0]
    shadowed = Shadowed(local, lambda: now[0])
    serving = shadowed.provider.current
    (Path(local.uri) / MODEL / "CANDIDATE").write_text("../v2\n")
    for seconds in (5.0, 10.0):
        now[0] = seconds
        shadowed.provider.poll()
    assert (shadowed.results, shadowed.provider.candidate, shadowed.provider.current) == (
        {"refused": 1},
        None,
        serving,
    )


def test_a_candidate_cleared_while_it_loads_is_never_exposed(local: Registry) -> None:
    now = [0.0]
    shadowed = Shadowed(local, lambda: now[0])
    local.set_candidate(MODEL, "v2")
    now[0] = 5.0
    shadowed.provider.poll()  # starts the candidate's load
    local.clear_candidate(MODEL, "v2")
    now[0] = 10.0
    exposed: list[TorchModel | None] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(exposed) < 50:
        shadowed.provider.poll()
        exposed.append(shadowed.provider.candidate)
        now[0] += 0.01  # never reaching the next look at CANDIDATE
        time.sleep(0.02)
    assert (set(exposed), shadowed.results) == ({None}, {})
