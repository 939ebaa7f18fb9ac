from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from trainer.sample_corpus import generate, write_jsonl
from trainer.tiny_base import build_tiny_base


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> Iterator[None]:
    # The tiny model runs thousands of very small kernels; with two OpenMP threads and any
    # other process on a 2-core machine, every kernel waits on a preempted thread and
    # training slows down fifty-fold. One thread is as fast when the machine is idle.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "titles.jsonl"
    write_jsonl(generate(), path)
    return path


@pytest.fixture(scope="session")
def tiny_base(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_base(corpus, tmp_path_factory.mktemp("tiny-base"))
