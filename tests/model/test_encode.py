from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from prodcat.model.encode import TitleEncoder, encode

SHARED_QWEN3_TOKENIZER = Path(__file__).resolve().parents[3] / "shared/data/qwen3-tokenizer"
TITLES = [
    "Pampers Baby-Dry Nappies Size 4, 9-14 kg, 174 Count",
    "Bosch 3397007297 Aerotwin Wiper Blade Set 600/475mm",
    "Boucles d'oreilles créoles en argent 925 — Ø 20 mm",
    "x",
    "Extremely long title " * 40,
]


def tokenizers() -> list[tuple[str, Path]]:
    found = [("tiny", Path())]
    if SHARED_QWEN3_TOKENIZER.is_dir():
        found.append(("qwen3", SHARED_QWEN3_TOKENIZER))
    return found


@pytest.fixture(params=tokenizers(), ids=lambda p: p[0])
def tokenizer(request: pytest.FixtureRequest, tiny_base: Path) -> PreTrainedTokenizerBase:
    _, path = request.param
    return AutoTokenizer.from_pretrained(str(path if path != Path() else tiny_base))


@pytest.mark.parametrize("instruction", [None, "Categorize the product: "])
def test_the_serving_encoder_gives_the_same_ids_as_the_training_encoder(
    tokenizer: PreTrainedTokenizerBase, instruction: str | None
) -> None:
    expected = encode(tokenizer, TITLES, max_length=32, instruction=instruction)
    input_ids, attention_mask = TitleEncoder(tokenizer, max_length=32, instruction=instruction)(TITLES)
    assert torch.equal(input_ids, expected["input_ids"])
    assert torch.equal(attention_mask, expected["attention_mask"])


def test_a_truncated_title_still_ends_with_the_end_of_text_token(tokenizer: PreTrainedTokenizerBase) -> None:
    input_ids, _ = TitleEncoder(tokenizer, max_length=16)(["Extremely long title " * 40])
    assert input_ids.shape == (1, 16)
    assert tokenizer.convert_ids_to_tokens(int(input_ids[0, -1])) == "<|endoftext|>"
