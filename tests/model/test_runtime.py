"""The serving runtime: the ids it encodes, and what its forward pass answers."""

import copy
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from prodcat.model.checkpoint import Checkpoint
from prodcat.model.classifier import ProductClassifier
from prodcat.model.encode import encode
from prodcat.model.loading import load_model
from prodcat.model.runtime import TorchModel

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


@pytest.fixture(scope="module")
def served(trained_registry: Path) -> TorchModel:
    return load_model(trained_registry, device="cpu", min_agreement=0.9)


@pytest.fixture(params=tokenizers(), ids=lambda p: p[0])
def tokenizer(request: pytest.FixtureRequest, tiny_base: Path) -> PreTrainedTokenizerBase:
    _, path = request.param
    return AutoTokenizer.from_pretrained(str(path if path != Path() else tiny_base))


def variant(
    served: TorchModel,
    *,
    tokenizer: PreTrainedTokenizerBase | None = None,
    network: ProductClassifier | None = None,
    **manifest: object,
) -> TorchModel:
    """The served model with another tokenizer, network or manifest fields."""
    checkpoint = served.checkpoint
    edited = Checkpoint(checkpoint.directory, checkpoint.manifest.model_copy(update=manifest))
    tokens = tokenizer or AutoTokenizer.from_pretrained(str(checkpoint.directory))
    return TorchModel(edited, network or served.network, tokens, torch.device("cpu"))


@pytest.mark.parametrize("instruction", [None, "Categorize the product: "])
def test_the_serving_encoder_gives_the_same_ids_as_the_training_encoder(
    served: TorchModel, tokenizer: PreTrainedTokenizerBase, instruction: str | None
) -> None:
    expected = encode(tokenizer, TITLES, max_length=32, instruction=instruction)
    rows = [
        ids[mask.bool()].tolist()
        for ids, mask in zip(expected["input_ids"], expected["attention_mask"], strict=True)
    ]
    model = variant(served, tokenizer=tokenizer, max_length=32, instruction=instruction)
    assert model.encode(TITLES) == rows


def test_a_truncated_title_still_ends_with_the_end_of_text_token(
    served: TorchModel, tokenizer: PreTrainedTokenizerBase
) -> None:
    (ids,) = variant(served, tokenizer=tokenizer, max_length=16).encode(["Extremely long title " * 40])
    assert len(ids) == 16
    assert tokenizer.convert_ids_to_tokens(ids[-1]) == "<|endoftext|>"


def test_each_row_of_a_padded_batch_scores_as_it_does_alone(served: TorchModel) -> None:
    rows = served.encode(TITLES)
    together = served.infer(rows, top_k=3)
    alone = [served.infer([row], top_k=3) for row in rows]
    assert together.indices == [a.indices[0] for a in alone]
    for row_scores, single in zip(together.scores, alone, strict=True):
        assert row_scores == pytest.approx(single.scores[0], abs=1e-5)


def test_half_precision_gives_the_labels_full_precision_gives(served: TorchModel) -> None:
    # The GPU serves fp16; PyTorch runs it on the CPU too, slowly, which is enough to compare.
    half = variant(served, network=copy.deepcopy(served.network).half())
    titles = [*TITLES, "Leather Ankle Boots", "Sterling Silver Hoop Earrings", "Kids Rain Boots"]
    assert [p.label for p in half.predict(titles)] == [p.label for p in served.predict(titles)]
