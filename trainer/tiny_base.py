"""A tiny randomly initialised Qwen3 base model with its own tokenizer, built in seconds.

It stands in for Qwen3-Embedding in tests and demos on machines with no hub access: the
tokenizer is trained on the corpus but shaped like Qwen3's (byte-level BPE, the Qwen2 split
regex, `<|endoftext|>` appended to every input and used for padding on the left), and the
model is the real Qwen3 architecture at toy width, so everything downstream runs unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from tokenizers.processors import TemplateProcessing
from transformers import AutoModel, PreTrainedTokenizerFast, Qwen3Config

from prodcat.model.checkpoint import file_sha256
from prodcat.trainer.records import read_jsonl

EOS = "<|endoftext|>"
# Qwen2/Qwen3's pre-tokenizer split, copied from Qwen3-Embedding's tokenizer.json.
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
FINGERPRINT_FILE = "tiny_base.json"
# Bump when the build itself changes, so stale caches are rebuilt.
BUILD_FORMAT = 1
MAX_POSITIONS = 512


def build_tiny_base(
    corpus: Path,
    out: Path,
    *,
    vocab_size: int = 2048,
    hidden_size: int = 128,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int = 256,
    seed: int = 0,
) -> Path:
    """Builds (or reuses) a tokenizer + model directory loadable with AutoModel/AutoTokenizer."""
    fingerprint = {
        "format": BUILD_FORMAT,
        "corpus_sha256": file_sha256(corpus),
        "vocab_size": vocab_size,
        "hidden_size": hidden_size,
        "num_layers": num_layers,
        "num_heads": num_heads,
        "num_kv_heads": num_kv_heads,
        "intermediate_size": intermediate_size,
        "seed": seed,
    }
    if _is_cached(out, fingerprint):
        return out
    if hidden_size % num_heads:
        raise ValueError(f"hidden_size {hidden_size} is not divisible by num_heads {num_heads}")
    out.mkdir(parents=True, exist_ok=True)
    # A stale fingerprint must not survive a build that fails half-way.
    (out / FINGERPRINT_FILE).unlink(missing_ok=True)

    tokenizer = _train_tokenizer((r.title for r in read_jsonl(corpus)), vocab_size)
    tokenizer.save_pretrained(str(out))

    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        head_dim=hidden_size // num_heads,
        max_position_embeddings=MAX_POSITIONS,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = AutoModel.from_config(config, dtype=torch.float32)
    model.save_pretrained(str(out), safe_serialization=True)

    (out / FINGERPRINT_FILE).write_bytes(orjson.dumps(fingerprint, option=orjson.OPT_INDENT_2))
    return out


def _is_cached(out: Path, fingerprint: dict[str, object]) -> bool:
    required = (FINGERPRINT_FILE, "config.json", "model.safetensors", "tokenizer.json")
    if not all((out / name).is_file() for name in required):
        return False
    try:
        return bool(orjson.loads((out / FINGERPRINT_FILE).read_bytes()) == fingerprint)
    except orjson.JSONDecodeError:
        return False


def _train_tokenizer(texts: Iterator[str], vocab_size: int) -> PreTrainedTokenizerFast:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    eos_id = tokenizer.token_to_id(EOS)
    # Qwen3-Embedding pools the hidden state of this appended token.
    tokenizer.post_processor = TemplateProcessing(
        single=f"$A:0 {EOS}:0",
        pair=f"$A:0 {EOS}:0 $B:1 {EOS}:1",
        special_tokens=[(EOS, eos_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=EOS,
        pad_token=EOS,
        padding_side="left",
        model_max_length=MAX_POSITIONS,
    )
