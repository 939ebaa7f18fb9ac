"""The tokenizer pool: the serving model's own ids for every submission, in its titles' order,
on several threads at once; a rejected title fails alone; a submission keeps the encoder it was
submitted to across a swap; close keeps its deadline."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest
import torch
from transformers import AutoTokenizer

from prodcat.consumer.tokenize_pool import (
    Encoder,
    TokenizerPool,
    TokenizerPoolClosed,
    default_tokenizer_threads,
)
from prodcat.model.checkpoint import Checkpoint
from prodcat.model.loading import load_model
from prodcat.model.runtime import TorchModel
from prodcat.trainer.records import read_jsonl

SHARED_QWEN3_TOKENIZER = Path(__file__).resolve().parents[3] / "shared/data/qwen3-tokenizer"
INSTRUCTION = "Instruct: Given a product title, name its category\nQuery: "
# A lone surrogate cannot cross into the Rust tokenizer: a title it rejects, for real.
UNENCODABLE = "Broken \ud800 title"
WAIT_S = 10.0
# Longer than any wait of the tests, so a held batch never ends on its own while one waits.
HOLD_S = 3 * WAIT_S

E = TypeVar("E", bound=Encoder)


class HeldEncoder:
    """A real encoder whose batch calls each say they started and then wait for `release`."""

    def __init__(self, real: Encoder) -> None:
        self._real = real
        self.started = threading.Semaphore(0)
        self.release = threading.Event()

    def encode(self, titles: Sequence[str]) -> list[list[int]]:
        self.started.release()
        if not self.release.wait(HOLD_S):
            raise TimeoutError("the test never released the encoder")
        return self._real.encode(titles)


class RowDroppingEncoder:
    """A real encoder that loses the last row of every batch, as a broken encoder might."""

    def __init__(self, real: Encoder) -> None:
        self._real = real

    def encode(self, titles: Sequence[str]) -> list[list[int]]:
        return self._real.encode(titles)[:-1]


@contextmanager
def pool_of(encoder: E, threads: int) -> Iterator[TokenizerPool[E]]:
    pool = TokenizerPool(encoder, threads=threads)
    try:
        yield pool
    finally:
        pool.close(timeout_s=WAIT_S)


def with_tokenizer(served: TorchModel, tokenizer_dir: Path, *, instruction: str | None) -> TorchModel:
    """The served checkpoint with another tokenizer and instruction prefix."""
    checkpoint = served.checkpoint
    manifest = checkpoint.manifest.model_copy(update={"instruction": instruction})
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    return TorchModel(
        Checkpoint(checkpoint.directory, manifest), served.network, tokenizer, torch.device("cpu")
    )


def tokenizer_names() -> list[str]:
    return ["tiny", "qwen3"] if SHARED_QWEN3_TOKENIZER.is_dir() else ["tiny"]


@pytest.fixture(scope="module")
def served(trained_registry: Path) -> TorchModel:
    return load_model(trained_registry, device="cpu", min_agreement=0.9)


@pytest.fixture(scope="module", params=tokenizer_names())
def model(request: pytest.FixtureRequest, served: TorchModel) -> TorchModel:
    """The served model with its own (tiny) tokenizer or the real Qwen3 one, instruction prefixed."""
    directory = served.checkpoint.directory if request.param == "tiny" else SHARED_QWEN3_TOKENIZER
    return with_tokenizer(served, directory, instruction=INSTRUCTION)


@pytest.fixture(scope="module")
def titles(corpus: Path) -> list[str]:
    return [record.title for record in read_jsonl(corpus)][:600]


def test_each_submission_gets_the_models_own_ids_in_its_titles_order(
    model: TorchModel, titles: list[str]
) -> None:
    # Batches of very different sizes, so the threads finish them out of submission order.
    sizes = [1, 97, 3, 60, 2, 150, 7, 40, 1, 120, 5, 80]
    batches, start = [], 0
    for size in sizes:
        batches.append(titles[start : start + size])
        start += size
    with pool_of(model, threads=3) as pool:
        futures = [pool.submit(batch) for batch in batches]
        results = [future.result(WAIT_S) for future in futures]
    for batch, result in zip(batches, results, strict=True):
        assert result.ids == model.encode(batch)
        assert result.encoder is model
        assert result.rejections == {}


def test_batches_are_tokenized_on_several_threads_at_once(served: TorchModel, titles: list[str]) -> None:
    held = HeldEncoder(served)
    with pool_of(held, threads=2) as pool:
        futures = [pool.submit(titles[:10]), pool.submit(titles[10:20])]
        both_started = held.started.acquire(timeout=WAIT_S) and held.started.acquire(timeout=WAIT_S)
        held.release.set()
        assert both_started
        assert [f.result(WAIT_S).ids for f in futures] == [
            served.encode(titles[:10]),
            served.encode(titles[10:20]),
        ]


def test_a_rejected_title_fails_alone_and_the_others_keep_their_ids(model: TorchModel) -> None:
    batch = ["Kids Rain Boots", UNENCODABLE, "Sterling Silver Hoop Earrings"]
    with pytest.raises(TypeError):
        model.encode(batch)
    with pool_of(model, threads=2) as pool:
        result = pool.submit(batch).result(WAIT_S)
    assert result.ids == [model.encode([batch[0]])[0], None, model.encode([batch[2]])[0]]
    assert list(result.rejections) == [1]
    assert result.rejections[1].startswith("TypeError: ")


def test_a_submission_keeps_the_encoder_it_was_submitted_to_across_a_swap(
    served: TorchModel, titles: list[str]
) -> None:
    reloaded = with_tokenizer(served, served.checkpoint.directory, instruction=INSTRUCTION)
    batch = titles[:20]
    assert served.encode(batch) != reloaded.encode(batch)
    held = HeldEncoder(served)
    first: Encoder = held
    with pool_of(first, threads=1) as pool:
        running = pool.submit(batch)
        assert held.started.acquire(timeout=WAIT_S)
        queued_before = pool.submit(batch)
        pool.swap(reloaded)
        submitted_after = pool.submit(batch)
        held.release.set()
        before, after = queued_before.result(WAIT_S), submitted_after.result(WAIT_S)
        assert running.result(WAIT_S).ids == served.encode(batch)
    assert (before.encoder, before.ids) == (held, served.encode(batch))
    assert (after.encoder, after.ids) == (reloaded, reloaded.encode(batch))


def test_a_broken_encoder_fails_the_submission_instead_of_misplacing_ids(
    served: TorchModel, titles: list[str]
) -> None:
    with pool_of(RowDroppingEncoder(served), threads=1) as pool:
        future = pool.submit(titles[:5])
        with pytest.raises(ValueError, match="answered 4 rows for 5 titles"):
            future.result(WAIT_S)


def test_close_keeps_its_deadline_while_a_batch_hangs_and_cancels_what_waits(
    served: TorchModel, titles: list[str]
) -> None:
    held = HeldEncoder(served)
    pool = TokenizerPool(held, threads=1)
    running = pool.submit(titles[:5])
    assert held.started.acquire(timeout=WAIT_S)
    waiting = pool.submit(titles[5:10])
    started = time.monotonic()
    ended = pool.close(timeout_s=0.2)
    took = time.monotonic() - started
    held.release.set()
    assert not ended
    assert took < 0.2 + 2.0
    assert waiting.cancelled()
    assert running.result(WAIT_S).ids == served.encode(titles[:5])


def test_close_ends_idle_threads_and_later_submissions_are_refused(served: TorchModel) -> None:
    pool = TokenizerPool(served, threads=2)
    assert pool.close(timeout_s=WAIT_S)
    with pytest.raises(TokenizerPoolClosed):
        pool.submit(["Scarf"])


@pytest.mark.parametrize(("cores", "threads"), [(16, 14), (3, 1), (2, 1), (1, 1)])
def test_the_default_size_leaves_a_core_each_to_the_kafka_thread_and_the_device_worker(
    monkeypatch: pytest.MonkeyPatch, cores: int, threads: int
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)))
    assert default_tokenizer_threads() == threads
