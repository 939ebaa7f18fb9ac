"""Titles to model inputs, the same way at training and at serving time."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from typing import Any

import orjson
from tokenizers import Tokenizer, processors
from transformers import AutoTokenizer, BatchEncoding, PreTrainedTokenizerBase

from prodcat.errors import ConfigError

# The name of the instruction's tokens in the tokenizer's template; never produced by a title.
INSTRUCTION_TOKEN = "[INSTRUCTION]"


def model_text(title: str, instruction: str | None) -> str:
    return f"{instruction}{title}" if instruction else title


def encode(
    tokenizer: PreTrainedTokenizerBase,
    titles: Sequence[str],
    *,
    max_length: int,
    instruction: str | None = None,
) -> BatchEncoding:
    """Left-padded, truncated ids; the tokenizer appends its end-of-text token to every row.

    `instruction` is prepended as text: only for checkpoints published before the tokenizer
    carried it (`apply_instruction`).
    """
    tokenizer.padding_side = "left"
    encoded: BatchEncoding = tokenizer(
        [model_text(t, instruction) for t in titles],
        padding=True,
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
    )
    return encoded


def apply_instruction(tokenizer: PreTrainedTokenizerBase, instruction: str, *, max_length: int) -> None:
    """Makes the tokenizer's own template put `instruction`'s tokens before every title.

    Titles are then tokenized alone, in training and serving alike, so the saved
    `tokenizer.json` holds the whole input recipe and an exported tokenizer reproduces it
    token for token (text prepended to a title can merge across the boundary). The
    instruction's tokens are those it has tokenized alone, placed where the template puts
    the title (after BERT's [CLS], before Qwen3's appended end-of-text token); truncation
    shortens the title only. ConfigError when the tokenizer has no template, when its
    class rebuilds the template on loading (BertTokenizer does), or when the instruction
    leaves no room for a title within `max_length`.
    """
    backend = tokenizer.backend_tokenizer
    template = orjson.loads(backend.to_str())["post_processor"]
    kind = template["type"] if template else "none"
    if kind != "TemplateProcessing":
        raise ConfigError(f"--instruction needs a tokenizer whose post-processor is a template, not {kind}")
    # A copy without the padding and truncation a tokenizer.json may carry (sentence-transformers'
    # pad every text to 128 tokens).
    alone = Tokenizer.from_str(backend.to_str())
    alone.no_padding()
    alone.no_truncation()
    encoded = alone.encode(instruction, add_special_tokens=False)
    added = backend.post_processor.num_special_tokens_to_add(False) + len(encoded.ids)
    if added >= max_length:
        raise ConfigError(
            f"--instruction takes {len(encoded.ids)} tokens, leaving no room for a title within "
            f"--max-length {max_length}"
        )
    backend.post_processor = processors.TemplateProcessing(
        single=_with_instruction(template["single"]),
        pair=_with_instruction(template["pair"]),
        special_tokens=[
            *template["special_tokens"].values(),
            {"id": INSTRUCTION_TOKEN, "ids": encoded.ids, "tokens": encoded.tokens},
        ],
    )
    probe = "a title"
    with tempfile.TemporaryDirectory(prefix="prodcat-tokenizer-") as scratch:
        tokenizer.save_pretrained(scratch)
        reloaded = AutoTokenizer.from_pretrained(scratch)
    if reloaded(probe)["input_ids"] != tokenizer(probe)["input_ids"]:
        raise ConfigError(
            f"--instruction is not supported with {type(tokenizer).__name__}: it rebuilds its "
            "template when loaded, so a served checkpoint would lose the instruction"
        )


def _with_instruction(pieces: list[dict[str, Any]]) -> str:
    """A template in TemplateProcessing's string form, the instruction before the first sequence."""
    parts: list[str] = []
    for piece in pieces:
        if "Sequence" in piece:
            sequence = piece["Sequence"]
            if sequence["id"] == "A":
                parts.append(f"{INSTRUCTION_TOKEN}:{sequence['type_id']}")
            parts.append(f"${sequence['id']}:{sequence['type_id']}")
        else:
            special = piece["SpecialToken"]
            parts.append(f"{special['id']}:{special['type_id']}")
    return " ".join(parts)
