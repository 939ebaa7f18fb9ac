"""Session-wide real parts: a Kafka-protocol broker and a trained tiny checkpoint.

Broker: KAFKA_BOOTSTRAP_SERVERS when set; else Testcontainers' Kafka when a Docker engine
answers; else the embedded Tansu broker.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from prodcat.broker import EmbeddedBroker
from prodcat.cli_env import kafka_bootstrap_from_env


def docker_engine_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        client.ping()
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    configured = kafka_bootstrap_from_env()
    if configured:
        yield configured
    elif docker_engine_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer() as kafka:
            yield kafka.get_bootstrap_server()
    else:
        with EmbeddedBroker() as broker:
            yield broker.bootstrap_servers


@pytest.fixture(scope="session")
def sample_corpus_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from trainer.sample_corpus import generate, write_jsonl

    path = tmp_path_factory.mktemp("corpus") / "sample.jsonl"
    write_jsonl(generate(per_class=120, seed=0), path)
    return path


@pytest.fixture(scope="session")
def tiny_base_dir(tmp_path_factory: pytest.TempPathFactory, sample_corpus_file: Path) -> Path:
    from trainer.tiny_base import build_tiny_base

    return build_tiny_base(sample_corpus_file, tmp_path_factory.mktemp("tiny-base"), hidden_size=64)


@pytest.fixture(scope="session")
def trained_registry(
    tmp_path_factory: pytest.TempPathFactory, sample_corpus_file: Path, tiny_base_dir: Path
) -> Path:
    """A registry holding one published, fully fine-tuned tiny checkpoint."""
    from trainer.train import TrainConfig, train

    registry = tmp_path_factory.mktemp("registry")
    train(
        TrainConfig(
            data=sample_corpus_file,
            base_model=str(tiny_base_dir),
            registry=registry,
            full_finetune=True,
            epochs=2.0,
            learning_rate=1e-3,
            progress=False,
        )
    )
    return registry
