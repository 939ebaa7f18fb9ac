"""Hot reload: a checkpoint promoted in the registry replaces the served one, if it checks out."""

from __future__ import annotations

import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from prodcat.consumer.classify.provider import ModelProvider
from prodcat.consumer.client_config import kafka_client_config
from prodcat.consumer.metrics import Metrics
from prodcat.consumer.service import CategorizerService
from prodcat.consumer.source import read_topic
from prodcat.errors import CheckpointError
from prodcat.model.checkpoint import GOLDEN_FILE, MANIFEST_FILE, file_sha256
from prodcat.model.loading import golden_agreement, load_model
from prodcat.model.runtime import TorchModel
from prodcat.produce import produce_values
from prodcat.scratch import scratch_settings
from prodcat.trainer.publish import list_versions, promote
from prodcat.trainer.records import write_jsonl
from prodcat.trainer.sample_corpus import generate
from prodcat.trainer.train import TrainConfig, train

MODEL = "product-categorizer"


@pytest.fixture(scope="module")
def two_versions(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A registry with two genuinely different trained versions; the older one is CURRENT."""
    registry = tmp_path_factory.mktemp("reload-registry")
    data = tmp_path_factory.mktemp("reload-data") / "titles.jsonl"
    write_jsonl(generate(per_class=40, seed=3), data)
    for seed in (1, 2):
        config = TrainConfig(
            data=data,
            base_model=str(tiny_base),
            registry=registry,
            full_finetune=True,
            learning_rate=1e-3,
            seed=seed,
            progress=False,
        )
        train(config)
    first, second = list_versions(registry, MODEL)
    promote(registry, MODEL, first)
    return registry, first, second


@pytest.fixture
def registry(two_versions: tuple[Path, str, str], tmp_path: Path) -> Path:
    """A private copy, so a test can promote and tamper freely."""
    return Path(shutil.copytree(two_versions[0], tmp_path / "registry"))


class Reloads:
    """A provider on a registry, its clock in the test's hands, and what it reported."""

    def __init__(self, registry: Path, clock: Callable[[], float], *, max_tokens: int = 16384) -> None:
        self.results: Counter[str] = Counter()
        self.provider = ModelProvider(
            load_model(registry, device="cpu", min_agreement=0.9),
            registry,
            model_name=None,
            device="cpu",
            interval_s=5.0,
            min_agreement=0.9,
            max_tokens=max_tokens,
            on_result=lambda result: self.results.update([result]),
            clock=clock,
        )

    @property
    def refused(self) -> int:
        return self.results["refused"]

    def wait(self, timeout_s: float = 60.0) -> TorchModel | None:
        """Polls until the background load hands over a model or is refused."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            fresh = self.provider.poll()
            if fresh is not None or self.refused:
                return fresh
            time.sleep(0.05)
        raise AssertionError("the reload neither finished nor was refused")


def copy_as_version(registry: Path, source: str, version: str, **manifest_changes: object) -> None:
    """Publishes a copy of `source` under a new version name, its manifest edited."""
    target = registry / MODEL / version
    shutil.copytree(registry / MODEL / source, target)
    manifest = orjson.loads((target / MANIFEST_FILE).read_bytes())
    (target / MANIFEST_FILE).write_bytes(orjson.dumps({**manifest, "version": version, **manifest_changes}))


def test_a_promoted_checkpoint_is_loaded_and_handed_over_once(
    registry: Path, two_versions: tuple[Path, str, str]
) -> None:
    _, _, second = two_versions
    now = [0.0]
    reload = Reloads(registry, lambda: now[0])
    promote(registry, MODEL, second)
    now[0] = 5.0

    fresh = reload.wait()

    assert fresh is not None and fresh.version == second
    assert reload.provider.current is fresh
    now[0] = 10.0
    assert reload.provider.poll() is None


def test_nothing_is_loaded_before_the_interval_or_while_the_pointer_is_unchanged(
    registry: Path, two_versions: tuple[Path, str, str]
) -> None:
    now = [0.0]
    reload = Reloads(registry, lambda: now[0])
    promote(registry, MODEL, two_versions[2])
    assert reload.provider.poll() is None  # before the interval
    promote(registry, MODEL, two_versions[1])
    now[0] = 5.0
    assert reload.provider.poll() is None  # the pointer names what is served
    assert reload.refused == 0


def test_a_checkpoint_whose_files_fail_their_checksum_is_refused_once(
    registry: Path, two_versions: tuple[Path, str, str]
) -> None:
    _, _, second = two_versions
    now = [0.0]
    reload = Reloads(registry, lambda: now[0])
    weights = next((registry / MODEL / second).glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-64])
    (registry / MODEL / "CURRENT").write_text(second)
    now[0] = 5.0

    assert reload.wait() is None
    assert reload.refused == 1
    now[0] = 20.0
    assert reload.provider.poll() is None and reload.refused == 1


def test_a_checkpoint_with_other_labels_is_refused_on_reload_and_the_old_one_keeps_serving(
    registry: Path, two_versions: tuple[Path, str, str]
) -> None:
    first = two_versions[1]
    labels = orjson.loads((registry / MODEL / first / MANIFEST_FILE).read_bytes())["labels"]
    renamed = {label: f"{label}-v2" for label in labels}
    target = registry / MODEL / "renamed"
    shutil.copytree(registry / MODEL / first, target)
    golden = [orjson.loads(line) for line in (target / GOLDEN_FILE).read_bytes().splitlines()]
    (target / GOLDEN_FILE).write_bytes(
        b"\n".join(orjson.dumps({**g, "label": renamed[g["label"]]}) for g in golden) + b"\n"
    )
    manifest = orjson.loads((target / MANIFEST_FILE).read_bytes())
    manifest["files"][GOLDEN_FILE] = file_sha256(target / GOLDEN_FILE)
    (target / MANIFEST_FILE).write_bytes(
        orjson.dumps({**manifest, "version": "renamed", "labels": [renamed[x] for x in labels]})
    )
    now = [0.0]
    reload = Reloads(registry, lambda: now[0])
    (registry / MODEL / "CURRENT").write_text("renamed")
    now[0] = 5.0

    assert reload.wait() is None
    assert reload.refused == 1
    assert reload.provider.current.labels == tuple(labels)


def test_a_checkpoint_whose_max_length_exceeds_the_token_budget_is_refused_on_reload(
    registry: Path, two_versions: tuple[Path, str, str]
) -> None:
    first = two_versions[1]
    max_length = orjson.loads((registry / MODEL / first / MANIFEST_FILE).read_bytes())["max_length"]
    copy_as_version(registry, first, "longer", max_length=max_length + 1)
    now = [0.0]
    reload = Reloads(registry, lambda: now[0], max_tokens=max_length)
    (registry / MODEL / "CURRENT").write_text("longer")
    now[0] = 5.0

    assert reload.wait() is None
    assert reload.refused == 1


def test_a_checkpoint_that_disagrees_with_its_golden_set_is_refused(
    registry: Path, two_versions: tuple[Path, str, str]
) -> None:
    # Labels listed in the wrong order: every file verifies, but the answers are wrong.
    first = two_versions[1]
    labels = orjson.loads((registry / MODEL / first / MANIFEST_FILE).read_bytes())["labels"]
    copy_as_version(registry, first, "relabelled", labels=labels[1:] + labels[:1])

    with pytest.raises(CheckpointError, match="agrees with its golden set on"):
        load_model(registry / MODEL / "relabelled", device="cpu", min_agreement=0.9)


def test_a_checkpoint_agrees_with_the_golden_set_it_was_published_with(registry: Path) -> None:
    assert golden_agreement(load_model(registry, device="cpu", min_agreement=0.0)) == 1.0


def test_a_checkpoint_promoted_mid_stream_serves_the_rest_and_no_message_is_lost(
    kafka_bootstrap: str, registry: Path, two_versions: tuple[Path, str, str]
) -> None:
    _, first, second = two_versions
    settings = scratch_settings(
        kafka_bootstrap, "reload", registry=registry, device="cpu", reload_interval_s=0.2
    )
    metrics = Metrics()
    provider = ModelProvider.open(
        registry,
        model_name=None,
        device="cpu",
        interval_s=settings.reload_interval_s,
        min_agreement=0.9,
        max_tokens=settings.max_batch_tokens,
        on_result=metrics.reload,
    )
    service = CategorizerService(settings, provider, metrics=metrics)
    summary = []
    worker = threading.Thread(target=lambda: summary.append(service.run(until_records=40)))
    worker.start()
    try:
        produce_values(
            [orjson.dumps({"id": f"a-{n}", "title": "Pampers Baby Wipes"}) for n in range(20)], settings
        )
        deadline = time.monotonic() + 60
        while service.metrics.enriched_total < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        promote(registry, MODEL, second)
        while service.metrics.model_version != second and time.monotonic() < deadline:
            time.sleep(0.05)
        produce_values(
            [orjson.dumps({"id": f"b-{n}", "title": "Pampers Baby Wipes"}) for n in range(20)], settings
        )
    finally:
        worker.join(timeout=120)
    assert summary, "the service did not finish"

    enriched = read_topic(kafka_client_config(settings), settings.output_topic, expected=40)
    served = {
        event["id"]: event["classification"]["model_version"]
        for event in (orjson.loads(r.value or b"") for r in enriched)
    }
    assert len(enriched) == 40 and len(served) == 40
    assert {served[f"a-{n}"] for n in range(20)} == {first}
    assert {served[f"b-{n}"] for n in range(20)} == {second}
    assert service.metrics.reloads_by_result["loaded"] == 1
