"""A Hugging Face backbone + pooling + linear head, defined once for trainer and consumer.

Qwen3-Embedding (a decoder) pools the hidden state of the appended end-of-text token;
BERT-family encoders pool the mean over real tokens, as sentence-transformers trained
them. A saved classifier directory holds the backbone as an ordinary Hugging Face model
(`config.json` + `model.safetensors`, LoRA already merged) and the head as
`head.safetensors`; the manifest beside them says how to use it (its pooling included).

New heads have no bias, so a last-token checkpoint is exactly a Hugging Face
`*ForSequenceClassification` model (whose `score` layer has none; see `prodcat export`).
Heads published with a bias still load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel

from prodcat.errors import CheckpointError, ConfigError
from prodcat.model.checkpoint import HEAD_FILE, WEIGHTS_FILE, load_failure

Pooling = Literal["last_token", "mean"]
# The pooling each family was pretrained for: decoders summarise a text in its last token,
# sentence-transformers encoders in the mean of every token.
POOLING_BY_MODEL_TYPE: dict[str, Pooling] = {
    "qwen3": "last_token",
    "qwen2": "last_token",
    "llama": "last_token",
    "mistral": "last_token",
    "bert": "mean",
    "roberta": "mean",
    "xlm-roberta": "mean",
    "mpnet": "mean",
}


def pooling_for(base_model: str | Path) -> Pooling:
    """The pooling of a base model's family; ConfigError for a family not known here."""
    model_type = str(AutoConfig.from_pretrained(str(base_model)).model_type)
    pooling = POOLING_BY_MODEL_TYPE.get(model_type)
    if pooling is None:
        known = ", ".join(sorted(POOLING_BY_MODEL_TYPE))
        raise ConfigError(f"{base_model}: no pooling known for model type {model_type!r} (known: {known})")
    return pooling


def last_token_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Hidden state of each row's last real token, whichever side the padding is on."""
    seq_len = attention_mask.shape[1]
    positions = torch.arange(seq_len, device=attention_mask.device).expand_as(attention_mask)
    last = (positions * attention_mask.long()).argmax(dim=1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean hidden state over each row's real tokens, special tokens included (as sentence-transformers)."""
    weights = attention_mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def positions_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Rotary positions counted over real tokens only.

    Qwen3 derives positions from the sequence index by default, so a left-padded row
    would see its title at shifted positions and embed differently than when run alone.
    """
    return (attention_mask.long().cumsum(dim=1) - 1).clamp(min=0)


class ProductClassifier(nn.Module):
    def __init__(
        self,
        backbone: PreTrainedModel,
        num_labels: int,
        *,
        pooling: Pooling = "last_token",
        head_bias: bool = False,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.pooling: Pooling = pooling
        self.head = nn.Linear(backbone.config.hidden_size, num_labels, bias=head_bias)

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.backbone(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=positions_from_mask(attention_mask),
            use_cache=False,
        )
        if self.pooling == "mean":
            return mean_pool(out.last_hidden_state, attention_mask)
        return last_token_pool(out.last_hidden_state, attention_mask)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        pooled = self.embed(input_ids, attention_mask)
        logits: torch.Tensor = self.head(pooled.to(self.head.weight.dtype))
        return logits

    @classmethod
    def from_base(
        cls, base_model: str | Path, num_labels: int, *, dtype: torch.dtype = torch.float32
    ) -> ProductClassifier:
        """A fresh classifier on a pretrained (or locally built) backbone, pooled as its family is.

        The head is random and has no bias (see the module docstring).
        """
        pooling = pooling_for(base_model)
        backbone = AutoModel.from_pretrained(str(base_model), dtype=dtype)
        model = cls(backbone, num_labels, pooling=pooling)
        model.head.to(dtype)
        return model

    def save(self, directory: Path) -> list[Path]:
        """Writes backbone and head as safetensors; returns the files written."""
        directory.mkdir(parents=True, exist_ok=True)
        self.backbone.save_pretrained(str(directory), safe_serialization=True)
        save_file(
            {k: v.detach().contiguous() for k, v in self.head.state_dict().items()},
            str(directory / HEAD_FILE),
        )
        return sorted(p for p in directory.iterdir() if p.is_file())

    @classmethod
    def load(
        cls,
        directory: Path,
        *,
        dtype: torch.dtype,
        device: torch.device | str = "cpu",
        pooling: Pooling = "last_token",
    ) -> ProductClassifier:
        """Backbone and head from safetensors only; anything unreadable is one CheckpointError.

        Run `checkpoint.verify` first: this reads what the directory holds, it does not check it.
        """
        backbone = _load_backbone(directory, dtype)
        try:
            head_state = load_file(str(directory / HEAD_FILE))
            model = cls(
                backbone,
                num_labels=head_state["weight"].shape[0],
                pooling=pooling,
                head_bias="bias" in head_state,
            )
            model.head.load_state_dict(head_state)
        except (OSError, KeyError, IndexError, RuntimeError, SafetensorError) as exc:
            raise load_failure(directory, HEAD_FILE, exc) from None
        return model.to(device=device, dtype=dtype).eval()


def _load_backbone(directory: Path, dtype: torch.dtype) -> PreTrainedModel:
    try:
        backbone, info = AutoModel.from_pretrained(
            str(directory),
            dtype=dtype,
            # PyTorch's fused scaled-dot-product attention (flash / memory-efficient kernels on a GPU).
            attn_implementation="sdpa",
            # Never a pickle, never the Hub, never code shipped inside the checkpoint.
            use_safetensors=True,
            local_files_only=True,
            trust_remote_code=False,
            output_loading_info=True,
        )
    # The files are outside input and transformers, safetensors and the config classes
    # raise whatever type they like about them (SafetensorError derives from Exception alone).
    except Exception as exc:
        raise load_failure(directory, "the backbone", exc) from None
    # transformers starts weights absent from the file (or of another shape) from random
    # values with a warning: a model that would answer, wrongly.
    absent = sorted({*info["missing_keys"], *(key for key, *_ in info["mismatched_keys"])})
    if absent:
        raise CheckpointError(
            f"checkpoint {directory}: {WEIGHTS_FILE} lacks {len(absent)} backbone weights "
            f"(first: {absent[0]})"
        )
    loaded: PreTrainedModel = backbone
    return loaded
