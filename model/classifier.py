"""Qwen3 backbone + last-token pooling + linear head, defined once for trainer and consumer.

A saved classifier directory holds the backbone as an ordinary Hugging Face model
(`config.json` + `model.safetensors`, LoRA already merged) and the head as
`head.safetensors`; the manifest beside them says how to use it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoModel, PreTrainedModel

from prodcat.errors import CheckpointError
from prodcat.model.checkpoint import HEAD_FILE, WEIGHTS_FILE, load_failure


def last_token_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Hidden state of each row's last real token, whichever side the padding is on."""
    seq_len = attention_mask.shape[1]
    positions = torch.arange(seq_len, device=attention_mask.device).expand_as(attention_mask)
    last = (positions * attention_mask.long()).argmax(dim=1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def positions_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Rotary positions counted over real tokens only.

    Qwen3 derives positions from the sequence index by default, so a left-padded row
    would see its title at shifted positions and embed differently than when run alone.
    """
    return (attention_mask.long().cumsum(dim=1) - 1).clamp(min=0)


class ProductClassifier(nn.Module):
    def __init__(self, backbone: PreTrainedModel, num_labels: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.config.hidden_size, num_labels)

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.backbone(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=positions_from_mask(attention_mask),
            use_cache=False,
        )
        return last_token_pool(out.last_hidden_state, attention_mask)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        pooled = self.embed(input_ids, attention_mask)
        logits: torch.Tensor = self.head(pooled.to(self.head.weight.dtype))
        return logits

    @classmethod
    def from_base(
        cls, base_model: str | Path, num_labels: int, *, dtype: torch.dtype = torch.float32
    ) -> ProductClassifier:
        """A fresh classifier on a pretrained (or locally built) backbone; the head is random."""
        backbone = AutoModel.from_pretrained(str(base_model), dtype=dtype)
        model = cls(backbone, num_labels)
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
        cls, directory: Path, *, dtype: torch.dtype, device: torch.device | str = "cpu"
    ) -> ProductClassifier:
        """Backbone and head from safetensors only; anything unreadable is one CheckpointError.

        Run `checkpoint.verify` first: this reads what the directory holds, it does not check it.
        """
        backbone = _load_backbone(directory, dtype)
        try:
            head_state = load_file(str(directory / HEAD_FILE))
            model = cls(backbone, num_labels=head_state["weight"].shape[0])
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
