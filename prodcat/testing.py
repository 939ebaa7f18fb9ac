"""Integration-testing your own producers and subscribers against a real categorizer.

`pytest_plugins = ["prodcat.testing"]` in a conftest.py gives a test suite these fixtures:

- `prodcat_kafka`: a Kafka-protocol broker's bootstrap servers, for the session;
- `prodcat_registry`: a registry with a tiny trained checkpoint, built on first use and
  cached across runs (see `cache_root`);
- `prodcat_settings`: categorizer settings naming fresh topics (created) and a fresh group,
  serving `prodcat_registry` on the CPU;

and `running_categorizer(settings)` runs the service for the body of a `with` block:

    def test_my_pipeline(prodcat_settings):
        with running_categorizer(prodcat_settings):
            my_producer.send(prodcat_settings.input_topic, ...)
            ... read prodcat_settings.output_topic and check what arrived ...

The broker is the one `KAFKA_BOOTSTRAP_SERVERS` names; else a Testcontainers Kafka (KRaft)
when a Docker engine answers; else the embedded broker (`prodcat[embedded]`). Loading the
plugin imports neither torch nor transformers: only the fixtures that need a model do.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import socket
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import pytest

from prodcat.broker import EmbeddedBroker, consumer_settings_for
from prodcat.cli_env import kafka_bootstrap_from_env
from prodcat.consumer.config import ConsumerSettings

if TYPE_CHECKING:
    from testcontainers.community.kafka import KafkaContainer

    from prodcat.consumer.service import CategorizerService
    from prodcat.model.runtime import ServingModel, TorchModel
    from prodcat.trainer.train import TrainResult

STOP_TIMEOUT_S = 60.0
# Pinned so a suite does not change under its users; testcontainers' KRaft mode needs
# cp-kafka 7.0 or later, and 7.6.0 is the image testcontainers 4 itself defaults to.
KAFKA_IMAGE = "confluentinc/cp-kafka:7.6.0"
# Every group join waits about half a session on the embedded broker: about 3 s with these,
# over 20 s with librdkafka's default 45 s session. 6 s is the shortest session a Kafka
# broker accepts by default (group.min.session.timeout.ms).
FAST_GROUP_JOIN: dict[str, object] = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}
CACHE_ENV = "PRODCAT_TEST_CACHE"
# Bumped when the build below changes in a way the recipe does not show.
KIT_FORMAT = 2
UNIX_SCHEME = "http+unix://"


@dataclass(frozen=True)
class TinyRecipe:
    """The kit's checkpoint: the generated sample corpus, the tiny base, one short full fine-tune.

    Full fine-tuning of the tiny base from random weights: one epoch (64 steps of 32) at 1e-3
    reaches ~0.99 validation macro-F1 in a few seconds on one core; 1e-4 is far too slow for
    weights that start from nothing.
    """

    per_class: int = 400
    seed: int = 0
    learning_rate: float = 1e-3
    epochs: float = 1.0


def docker_engine_answers() -> bool:
    try:
        import docker
        from docker.utils import parse_host
    except ImportError:
        return False
    endpoint = parse_host(os.environ.get("DOCKER_HOST"), sys.platform == "win32")
    if endpoint.startswith(UNIX_SCHEME) and not _accepts(endpoint.removeprefix(UNIX_SCHEME)):
        # docker-py leaves the socket of a failed Unix connect open (a ResourceWarning, an
        # error under `-W error`), so it is not asked when nothing listens there.
        return False
    try:
        with closing(docker.from_env(timeout=3)) as client:
            client.ping()
    except Exception:
        # Any failure (no socket, no engine, an engine that does not answer) means: no Docker here.
        return False
    return True


def _accepts(socket_path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(3)
        try:
            probe.connect(socket_path)
        except OSError:
            return False
    return True


@contextmanager
def kafka_broker() -> Iterator[str]:
    """A Kafka bootstrap string for the duration of the block, from the best source available."""
    configured = kafka_bootstrap_from_env()
    if configured:
        yield configured
    elif docker_engine_answers():
        with kafka_container() as kafka:
            yield kafka.get_bootstrap_server()
    else:
        with EmbeddedBroker() as broker:
            yield broker.bootstrap_servers


def kafka_container(docker_client_kw: dict[str, object] | None = None) -> KafkaContainer:
    """The Docker branch's broker, not yet started: the pinned image in KRaft mode (no ZooKeeper).

    `docker_client_kw` goes to docker-py's client (e.g. a fixed API `version`, so building
    the object asks no engine).
    """
    from testcontainers.community.kafka import KafkaContainer

    return KafkaContainer(KAFKA_IMAGE, docker_client_kw=docker_client_kw).with_kraft()


def consumer_config(bootstrap: str, *, group_id: str | None = None) -> dict[str, object]:
    """A confluent-kafka `Consumer` config that joins its group fast and reads from the start.

    The group is fresh unless `group_id` names one; merge in any other property.
    """
    return {
        "bootstrap.servers": bootstrap,
        "group.id": group_id or f"prodcat-test-{uuid.uuid4().hex[:8]}",
        "auto.offset.reset": "earliest",
        **FAST_GROUP_JOIN,
        **consumer_settings_for(bootstrap),
    }


def cache_root() -> Path:
    """Where built checkpoints are kept between runs: $PRODCAT_TEST_CACHE, else the user cache dir."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured)
    user_cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(user_cache) / "prodcat" / "testing"


def registry_name(recipe: TinyRecipe) -> str:
    """Names a build: the same recipe with the same prodcat, torch and transformers reuses it."""
    versions = {name: importlib.metadata.version(name) for name in ("prodcat", "torch", "transformers")}
    identity = {"format": KIT_FORMAT, "versions": versions, "recipe": asdict(recipe)}
    return "registry-" + hashlib.sha256(orjson.dumps(identity, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def cached_directory(root: Path, name: str, build: Callable[[Path], object]) -> Path:
    """`root/name`, made by `build(empty_directory)` unless an earlier run left it.

    The build happens in a temporary directory beside it, renamed into place when complete,
    so an interrupted build leaves nothing that looks finished and of concurrent builds the
    first rename wins and the others use its result.
    """
    final = root / name
    if final.is_dir():
        return final
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=f".{name}-") as scratch:
        work = Path(scratch) / "build"
        work.mkdir()
        build(work)
        try:
            work.rename(final)
        except OSError:
            if not final.is_dir():
                raise
    return final


def write_sample_corpus(recipe: TinyRecipe, path: Path) -> None:
    from prodcat.trainer.sample_corpus import generate, write_jsonl

    write_jsonl(generate(per_class=recipe.per_class, seed=recipe.seed), path)


def train_tiny(recipe: TinyRecipe, corpus: Path, base: Path, registry: Path) -> TrainResult:
    """Fine-tunes the tiny `base` on `corpus` as the recipe says and publishes into `registry`."""
    from prodcat.trainer.train import TrainConfig, train

    return train(
        TrainConfig(
            data=corpus,
            base_model=str(base),
            registry=registry,
            full_finetune=True,
            learning_rate=recipe.learning_rate,
            epochs=recipe.epochs,
            seed=recipe.seed,
            progress=False,
        )
    )


def build_registry(recipe: TinyRecipe, out: Path) -> None:
    """Builds the tiny base, trains the recipe's checkpoint and publishes it into the registry `out`."""
    import torch

    from prodcat.trainer.tiny_base import build_tiny_base

    # The tiny model's kernels are too small to gain from threads, and with a broker or a
    # second process on a small machine every kernel waits on a preempted thread.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with tempfile.TemporaryDirectory(prefix="prodcat-kit-") as scratch:
            corpus = Path(scratch) / "titles.jsonl"
            write_sample_corpus(recipe, corpus)
            base = build_tiny_base(corpus, Path(scratch) / "tiny-base", seed=recipe.seed)
            train_tiny(recipe, corpus, base, out)
    finally:
        torch.set_num_threads(previous)


def tiny_registry(recipe: TinyRecipe = TinyRecipe()) -> Path:
    """A registry holding the recipe's published checkpoint, from the cache when built before."""
    return cached_directory(cache_root(), registry_name(recipe), lambda out: build_registry(recipe, out))


def load_classifier(settings: ConsumerSettings) -> TorchModel:
    """The model `prodcat consume` would serve for these settings, through the same loading gate."""
    from prodcat.model.loading import load_model

    return load_model(
        settings.registry,
        model_name=settings.model_name,
        device=settings.device,
        min_agreement=settings.min_golden_agreement,
    )


@contextmanager
def running_categorizer(
    settings: ConsumerSettings, model: ServingModel | None = None
) -> Iterator[CategorizerService]:
    """The categorizer service consuming in a background thread until the block ends.

    On exit it drains and commits like a SIGTERM'd process; an error inside the service
    is raised here rather than lost in its thread.
    """
    from prodcat.consumer.classify.provider import FixedModel
    from prodcat.consumer.service import CategorizerService

    service = CategorizerService(settings, FixedModel(model or load_classifier(settings)))
    failure: list[BaseException] = []

    def run() -> None:
        try:
            service.run()
        except BaseException as exc:
            failure.append(exc)

    worker = threading.Thread(target=run, name="categorizer", daemon=True)
    worker.start()
    try:
        yield service
    finally:
        service.stop()
        worker.join(STOP_TIMEOUT_S)
    if worker.is_alive():
        raise RuntimeError(f"the categorizer did not stop within {STOP_TIMEOUT_S:.0f}s")
    if failure:
        raise failure[0]


@pytest.fixture(scope="session")
def prodcat_kafka() -> Iterator[str]:
    """A Kafka-protocol broker's bootstrap servers, shared by the test session."""
    with kafka_broker() as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def prodcat_registry() -> Path:
    """A registry with a tiny trained checkpoint; the first run builds it (seconds), later runs reuse it."""
    return tiny_registry()


@pytest.fixture
def prodcat_settings(prodcat_kafka: str, prodcat_registry: Path) -> ConsumerSettings:
    """Settings naming fresh topics and a fresh, fast-joining group, serving `prodcat_registry` on the CPU."""
    from prodcat.scratch import scratch_settings

    return scratch_settings(prodcat_kafka, "test", registry=prodcat_registry, device="cpu")
