"""Fine-tunes a ProductClassifier on labelled titles and publishes the result.

LoRA adapts the backbone's attention and MLP projections while the head trains in full;
the adapters are merged before publishing, so the consumer loads a plain model.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from tqdm.auto import tqdm
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from consumer.classify.encode import encode
from consumer.classify.model import ProductClassifier
from consumer.errors import ConfigError
from schemas.labels import DEFAULT_CATEGORIES
from schemas.manifest import TrainingRecipe
from trainer.data import label_index, split
from trainer.dataset_build import is_dataset_dir, load_split
from trainer.device import autocast, autocast_dtype, training_device
from trainer.evaluate import evaluate
from trainer.publish import publish
from trainer.records import LabeledTitle, read_jsonl

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class TrainConfig:
    data: Path
    base_model: str
    registry: Path
    model_name: str = "product-categorizer"
    labels: tuple[str, ...] = DEFAULT_CATEGORIES
    full_finetune: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    learning_rate: float = 5e-5
    epochs: float = 1.0
    batch_size: int = 32
    max_length: int = 64
    warmup_fraction: float = 0.06
    grad_clip: float = 1.0
    seed: int = 0
    instruction: str | None = None
    validation_fraction: float = 0.15
    progress: bool = True

    def __post_init__(self) -> None:
        problems = [
            message
            for failed, message in (
                (len(self.labels) < 2, "labels needs at least two categories"),
                (len(set(self.labels)) != len(self.labels), "labels must be unique"),
                (self.epochs <= 0, "epochs must be positive"),
                (self.batch_size < 1, "batch_size must be at least 1"),
                (self.learning_rate <= 0, "learning_rate must be positive"),
                (not 0 <= self.warmup_fraction < 1, "warmup_fraction must be in [0, 1)"),
                (not 0 < self.validation_fraction < 1, "validation_fraction must be in (0, 1)"),
                (self.max_length < 4, "max_length must be at least 4"),
                (self.grad_clip <= 0, "grad_clip must be positive"),
            )
            if failed
        ]
        if problems:
            raise ConfigError("invalid training config: " + "; ".join(problems))


@dataclass
class TrainResult:
    checkpoint: Path
    version: str
    metrics: dict[str, float]
    # Records whose category is not one of the configured labels.
    skipped: int
    # The merged full-precision model, before the cast to the published dtype.
    model: ProductClassifier = field(repr=False)


def train(config: TrainConfig) -> TrainResult:
    """Reads, splits, fine-tunes, validates and publishes; the new checkpoint becomes CURRENT."""
    index = label_index(config.labels)
    train_set, validation, skipped = _read_data(config, index)
    if not train_set or not validation:
        raise ConfigError(
            f"{config.data} has {len(train_set) + len(validation)} records in the configured labels; "
            "need enough for both a training and a validation split"
        )

    # Seeds the head's and the adapters' initialisation and LoRA dropout.
    torch.manual_seed(config.seed)
    device = training_device()
    tokenizer = AutoTokenizer.from_pretrained(config.base_model)
    model = ProductClassifier.from_base(config.base_model, len(config.labels))
    if not config.full_finetune:
        # Only the backbone is wrapped, so the head keeps requires_grad and trains in full.
        model.backbone = get_peft_model(
            model.backbone,
            LoraConfig(
                r=config.lora_r,
                lora_alpha=config.lora_alpha,
                lora_dropout=config.lora_dropout,
                target_modules=list(LORA_TARGETS),
            ),
        )
    model.to(device)

    _fit(model, tokenizer, train_set, index, config, device)
    if not config.full_finetune:
        model.backbone = model.backbone.merge_and_unload()
    model.eval()
    metrics = evaluate(
        model,
        tokenizer,
        validation,
        config.labels,
        max_length=config.max_length,
        instruction=config.instruction,
        batch_size=config.batch_size,
    )
    checkpoint = publish(
        model,
        tokenizer,
        registry=config.registry,
        model_name=config.model_name,
        base_model=config.base_model,
        labels=config.labels,
        max_length=config.max_length,
        instruction=config.instruction,
        recipe=_recipe(config, len(train_set), len(validation)),
        metrics=metrics,
    )
    return TrainResult(
        checkpoint=checkpoint,
        version=checkpoint.name,
        metrics=metrics,
        skipped=skipped,
        model=model,
    )


def _read_data(
    config: TrainConfig, index: dict[str, int]
) -> tuple[list[LabeledTitle], list[LabeledTitle], int]:
    """Training and validation records in the label set, and how many were outside it.

    A dataset directory brings its own cluster-grouped validation split; a JSONL file is
    split here, stratified by label.
    """
    if is_dataset_dir(config.data):
        parts = [load_split(config.data, "train"), load_split(config.data, "validation")]
        train_set, validation = ([r for r in part if r.category in index] for part in parts)
        return train_set, validation, sum(map(len, parts)) - len(train_set) - len(validation)
    records = read_jsonl(config.data)
    known = [r for r in records if r.category in index]
    train_set, validation = split(known, validation_fraction=config.validation_fraction, seed=config.seed)
    return train_set, validation, len(records) - len(known)


def _fit(
    model: ProductClassifier,
    tokenizer: PreTrainedTokenizerBase,
    records: Sequence[LabeledTitle],
    index: dict[str, int],
    config: TrainConfig,
    device: torch.device,
) -> None:
    titles = [r.title for r in records]
    targets = torch.tensor([index[r.category] for r in records])
    total_steps = max(1, math.ceil(config.epochs * math.ceil(len(records) / config.batch_size)))
    warmup_steps = int(config.warmup_fraction * total_steps)

    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, partial(_warmup_then_decay, warmup=warmup_steps, total=total_steps)
    )
    # bf16 needs no loss scaling; fp16 (CUDA without bf16) does.
    scaler = torch.amp.GradScaler(device.type, enabled=autocast_dtype(device) == torch.float16)
    generator = torch.Generator().manual_seed(config.seed)

    model.train()
    seen, started = 0, time.perf_counter()
    with tqdm(total=total_steps, desc="training", unit="step", disable=not config.progress) as bar:
        for batch in _batches(len(records), config.batch_size, total_steps, generator):
            inputs = encode(
                tokenizer,
                [titles[i] for i in batch],
                max_length=config.max_length,
                instruction=config.instruction,
            ).to(device)
            with autocast(device):
                logits = model(inputs["input_ids"], inputs["attention_mask"])
            loss = F.cross_entropy(logits.float(), targets[batch].to(device))
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(parameters, config.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            seen += len(batch)
            bar.update()
            rate = seen / (time.perf_counter() - started)
            bar.set_postfix({"loss": f"{loss.item():.4f}", "ex/s": f"{rate:.0f}"})


def _batches(
    size: int, batch_size: int, total_steps: int, generator: torch.Generator
) -> Iterator[torch.Tensor]:
    """Index batches over freshly shuffled epochs until `total_steps` batches were given."""
    given = 0
    while True:
        for batch in torch.randperm(size, generator=generator).split(batch_size):
            if given == total_steps:
                return
            given += 1
            yield batch


def _warmup_then_decay(step: int, *, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / (total - warmup))


def _recipe(config: TrainConfig, train_examples: int, validation_examples: int) -> TrainingRecipe:
    lora = not config.full_finetune
    return TrainingRecipe(
        method="lora" if lora else "full",
        lora_r=config.lora_r if lora else None,
        lora_alpha=config.lora_alpha if lora else None,
        lora_dropout=config.lora_dropout if lora else None,
        learning_rate=config.learning_rate,
        epochs=config.epochs,
        batch_size=config.batch_size,
        seed=config.seed,
        train_examples=train_examples,
        validation_examples=validation_examples,
    )
