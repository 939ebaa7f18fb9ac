"""The tokenizer of a verified checkpoint."""

from __future__ import annotations

from transformers import AutoTokenizer, PreTrainedTokenizerBase

from prodcat.model.checkpoint import Checkpoint, load_failure


def load_tokenizer(checkpoint: Checkpoint) -> PreTrainedTokenizerBase:
    """The tokenizer files of `checkpoint`, read from its directory only; errors are one CheckpointError."""
    try:
        tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(
            str(checkpoint.directory), local_files_only=True, trust_remote_code=False
        )
    # The files are outside input, and the Rust tokenizers library reports a malformed
    # tokenizer.json as a bare Exception.
    except Exception as exc:
        raise load_failure(checkpoint.directory, "the tokenizer", exc) from None
    return tokenizer
