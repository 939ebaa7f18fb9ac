"""Session-wide real parts: a Kafka-protocol broker, a tiny Qwen3 base, a trained checkpoint.

Broker: KAFKA_BOOTSTRAP_SERVERS when set; else Testcontainers' Kafka when a Docker engine
answers; else the embedded Tansu broker.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
import torch

from prodcat.testing import TinyRecipe, kafka_broker, train_tiny, write_sample_corpus
from prodcat.trainer.tiny_base import build_tiny_base
from prodcat.trainer.train import TrainResult
from tests.s3 import Outage, S3Registry, create_bucket, moto_server

# The test kit's recipe (see TinyRecipe), so the checkpoint trained here is the very one a
# user's suite gets from `prodcat_registry`.
RECIPE = TinyRecipe()


@pytest.fixture(autouse=True)
def default_logging() -> Iterator[None]:
    # A test that configures logging (the CLI run in-process does) must not leave its level
    # behind: a WARNING filter there would hide the info events a later capture_logs expects.
    yield
    structlog.reset_defaults()


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> Iterator[None]:
    # The tiny model runs thousands of very small kernels; with two OpenMP threads and any
    # other process on a 2-core machine (the broker, a second consumer), every kernel waits
    # on a preempted thread and training slows down fifty-fold.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    with kafka_broker() as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "titles.jsonl"
    write_sample_corpus(RECIPE, path)
    return path


@pytest.fixture(scope="session")
def tiny_base(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_base(corpus, tmp_path_factory.mktemp("tiny-base"), seed=RECIPE.seed)


@pytest.fixture(scope="session")
def full_run(corpus: Path, tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    return train_tiny(RECIPE, corpus, tiny_base, tmp_path_factory.mktemp("registry"))


@pytest.fixture(scope="session")
def trained_registry(full_run: TrainResult) -> Path:
    """A registry holding one published, fully fine-tuned tiny checkpoint."""
    return full_run.checkpoint.parent.parent


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's S3 server over HTTP on a loopback port, started once for the session."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3_registry(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Registry]:
    """A fresh bucket, configured the way AWS clients are (AWS_* variables), reached through a relay."""
    bucket = f"prodcat-{uuid.uuid4().hex[:12]}"
    create_bucket(moto_endpoint, bucket)
    outage = Outage(int(moto_endpoint.rsplit(":", 1)[1]))
    for name, value in {
        "AWS_ENDPOINT_URL": outage.endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    try:
        yield S3Registry(f"s3://{bucket}/registry", outage)
    finally:
        outage.close()
