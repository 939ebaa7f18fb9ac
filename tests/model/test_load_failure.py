"""A library's error while loading verified files: retried when it is about the machine, refused otherwise."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import torch

from prodcat.errors import CheckpointError
from prodcat.model.checkpoint import LoadInterrupted, load_failure


@pytest.mark.parametrize(
    "exc",
    [
        MemoryError(),
        torch.OutOfMemoryError("CUDA out of memory"),
        OSError(errno.EIO, "Input/output error"),
    ],
    ids=["host memory", "device memory", "I/O error"],
)
def test_running_out_of_memory_or_an_io_error_is_a_load_to_try_again(exc: BaseException) -> None:
    assert isinstance(load_failure(Path("ckpt"), "the backbone", exc), LoadInterrupted)


@pytest.mark.parametrize(
    "exc",
    [
        OSError("ckpt does not appear to have a file named config.json"),
        ValueError("bad shape"),
        KeyError("weight"),
    ],
    ids=["library OSError without errno", "ValueError", "KeyError"],
)
def test_an_error_about_the_files_refuses_the_checkpoint(exc: BaseException) -> None:
    failure = load_failure(Path("ckpt"), "the backbone", exc)
    assert isinstance(failure, CheckpointError)
    assert str(failure).startswith("checkpoint ckpt: the backbone does not load:")
