"""`train --resume-from`: start a run from a published checkpoint instead of a fresh head.

A LoRA run continues from the checkpoint's own adapter (`adapter/`) on the same base, so
the adapter it publishes stays an adapter of that base; a full fine-tune continues from the
checkpoint's merged backbone. Both take the checkpoint's head, its rows put in the run's
label order. The checkpoint goes through the same trust checks as a consumer's load.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load_file

from prodcat.errors import CheckpointError, ConfigError
from prodcat.model.checkpoint import HEAD_FILE, check_name, verify
from prodcat.model.classifier import ProductClassifier
from prodcat.model.registry import default_cache, open_registry

if TYPE_CHECKING:
    from peft import PeftModel

CURRENT = "CURRENT"
ADAPTER_CONFIG = "adapter/adapter_config.json"
ADAPTER_WEIGHTS = "adapter/adapter_model.safetensors"


def checkpoint_to_resume(location: str | os.PathLike[str], model_name: str, resume_from: str) -> Path:
    """The verified checkpoint `resume_from` names: `CURRENT` (the live one) or a version; a
    registry on a store is downloaded into its cache first, every file checked."""
    registry = open_registry(location)
    model = check_name("model name", model_name)
    version = registry.current(model).version if resume_from == CURRENT else resume_from
    return verify(registry.fetch(model, version, default_cache(registry.uri))).directory


def warm_start(
    model: ProductClassifier,
    lora: PeftModel | None,
    checkpoint: Path,
    *,
    labels: Sequence[str],
    base_model: str,
) -> None:
    """Loads the checkpoint's head, and its adapter (LoRA) or backbone (full), into `model`."""
    manifest = verify(checkpoint).manifest
    if set(manifest.labels) != set(labels):
        raise ConfigError(
            f"--resume-from {manifest.version}: its labels ({', '.join(manifest.labels)}) are not "
            f"this run's ({', '.join(labels)})"
        )
    if lora is not None:
        _load_adapter(lora, checkpoint, manifest.base_model, base_model)
    else:
        merged = ProductClassifier.load(checkpoint, dtype=torch.float32)
        model.backbone.load_state_dict(merged.backbone.state_dict())
    head = load_file(str(checkpoint / HEAD_FILE))
    order = [manifest.labels.index(label) for label in labels]
    with torch.no_grad():
        model.head.weight.copy_(head["weight"][order].to(model.head.weight.dtype))
        model.head.bias.copy_(head["bias"][order].to(model.head.bias.dtype))


def _load_adapter(lora: PeftModel, checkpoint: Path, trained_on: str, base_model: str) -> None:
    # peft only where LoRA is used: the test kit's full fine-tune runs without the train extra.
    from peft import LoraConfig, set_peft_model_state_dict

    version = checkpoint.name
    if not (checkpoint / ADAPTER_WEIGHTS).is_file():
        raise ConfigError(
            f"--resume-from {version}: it was fully fine-tuned and has no adapter; "
            "resume it with --full-finetune"
        )
    if trained_on != base_model:
        raise ConfigError(
            f"--resume-from {version}: its adapter was trained on {trained_on}, not on {base_model}"
        )
    saved = json.loads((checkpoint / ADAPTER_CONFIG).read_text())
    ours = lora.peft_config["default"]
    assert isinstance(ours, LoraConfig), "the run's own adapter is a LoRA adapter"
    mismatched = [
        f"{name} {saved.get(name)} (this run: {getattr(ours, name)})"
        for name in ("r", "lora_alpha")
        if saved.get(name) != getattr(ours, name)
    ]
    if sorted(saved.get("target_modules") or []) != sorted(ours.target_modules or []):
        mismatched.append(f"target_modules {sorted(saved.get('target_modules') or [])}")
    if mismatched:
        raise ConfigError(f"--resume-from {version}: its adapter has " + ", ".join(mismatched))
    try:
        # torch's (missing_keys, unexpected_keys); peft annotates it as a bare namedtuple.
        result: Any = set_peft_model_state_dict(lora, load_file(str(checkpoint / ADAPTER_WEIGHTS)))
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {checkpoint}: its adapter does not load: {exc}") from None
    if result.unexpected_keys:
        raise CheckpointError(
            f"checkpoint {checkpoint}: its adapter holds weights this run has no place for "
            f"(first: {result.unexpected_keys[0]})"
        )
    # The base's own weights are "missing" from an adapter file; LoRA weights must not be.
    missing = [key for key in result.missing_keys if "lora_" in key]
    if missing:
        raise CheckpointError(
            f"checkpoint {checkpoint}: its adapter lacks {len(missing)} weights ({missing[0]})"
        )
