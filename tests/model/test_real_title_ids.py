"""The serving encoder (the Rust tokenizer's `encode_batch_fast`) against the training encoder
(the Hugging Face tokenizer's call) on every real product title in ../shared/data, with the real
Qwen3 tokenizer: the ids must be the same, title by title. Skipped without the shared data."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from prodcat.model.checkpoint import Checkpoint
from prodcat.model.encode import encode
from prodcat.model.loading import load_model
from prodcat.model.runtime import TorchModel
from prodcat.trainer.records import read_jsonl

SHARED = Path(__file__).resolve().parents[3] / "shared/data"
REAL_TITLES = SHARED / "product-titles/train.jsonl"
QWEN3_TOKENIZER = SHARED / "qwen3-tokenizer"
INSTRUCTION = "Instruct: Given a product title, name its category\nQuery: "
# The trainer's default: long titles are truncated, so truncation is compared too.
MAX_LENGTH = 64
CHUNK = 2048

pytestmark = pytest.mark.skipif(
    not (REAL_TITLES.is_file() and QWEN3_TOKENIZER.is_dir()),
    reason="needs ../shared/data (real titles and the Qwen3 tokenizer)",
)


@pytest.fixture(scope="module")
def qwen3() -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(str(QWEN3_TOKENIZER))


@pytest.fixture(scope="module")
def titles() -> list[str]:
    return [record.title for record in read_jsonl(REAL_TITLES)]


def training_ids(
    tokenizer: PreTrainedTokenizerBase, titles: list[str], instruction: str | None
) -> list[list[int]]:
    rows: list[list[int]] = []
    for start in range(0, len(titles), CHUNK):
        batch = encode(
            tokenizer, titles[start : start + CHUNK], max_length=MAX_LENGTH, instruction=instruction
        )
        rows.extend(
            ids[mask.bool()].tolist()
            for ids, mask in zip(batch["input_ids"], batch["attention_mask"], strict=True)
        )
    return rows


@pytest.mark.parametrize("instruction", [None, INSTRUCTION], ids=["bare", "instruction"])
def test_the_serving_ids_equal_the_hugging_face_tokenizers_on_every_real_title(
    trained_registry: Path, qwen3: PreTrainedTokenizerBase, titles: list[str], instruction: str | None
) -> None:
    served = load_model(trained_registry, device="cpu", min_agreement=0.9)
    checkpoint = served.checkpoint
    manifest = checkpoint.manifest.model_copy(update={"instruction": instruction, "max_length": MAX_LENGTH})
    serving = TorchModel(
        Checkpoint(checkpoint.directory, manifest), served.network, qwen3, torch.device("cpu")
    )
    expected = training_ids(qwen3, titles, instruction)
    got = serving.encode(titles)
    differing = [title for title, a, b in zip(titles, got, expected, strict=True) if a != b]
    assert len(got) == len(titles) > 20_000
    assert differing == []
