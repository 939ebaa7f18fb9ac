"""Fine-tunes a ProductClassifier on labelled titles and publishes the result.

LoRA adapts the backbone's attention and MLP projections while the head trains in full;
the adapters are merged before publishing, so the consumer loads a plain model.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from prodcat.errors import CheckpointError, ConfigError
from prodcat.model.checkpoint import load_manifest
from prodcat.model.classifier import ProductClassifier
from prodcat.model.encode import apply_instruction
from prodcat.model.registry import checkpoint_directory, default_cache, open_registry
from prodcat.schemas.labels import DEFAULT_CATEGORIES
from prodcat.schemas.manifest import TrainingRecipe
from prodcat.trainer import distributed
from prodcat.trainer.checkpointing import TrainingPaused, clear_state, state_dir
from prodcat.trainer.data import label_index, split
from prodcat.trainer.dataset_build import is_dataset_dir, load_split
from prodcat.trainer.device import training_device
from prodcat.trainer.loop import fit, score
from prodcat.trainer.publish import publish
from prodcat.trainer.records import LabeledTitle, read_jsonl
from prodcat.trainer.warm_start import checkpoint_to_resume, warm_start

if TYPE_CHECKING:
    from peft import PeftModel

GOLDEN_SIZE = 32
DECODER_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# Attention and MLP projections of every layer, matched in full: BERT's pooler is also called
# `dense`, and it is not used (the classifier pools the mean itself).
ENCODER_TARGETS = (
    r".*layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense"
    r"|intermediate\.dense|output\.dense)"
)
# The modules LoRA adapts, by the base's model type: attention and MLP projections.
LORA_TARGETS: dict[str, str | tuple[str, ...]] = {
    "qwen3": DECODER_TARGETS,
    "qwen2": DECODER_TARGETS,
    "llama": DECODER_TARGETS,
    "mistral": DECODER_TARGETS,
    "bert": ENCODER_TARGETS,
    "roberta": ENCODER_TARGETS,
    "xlm-roberta": ENCODER_TARGETS,
}


@dataclass(frozen=True)
class TrainConfig:
    data: Path
    base_model: str
    registry: Path | str
    """A registry folder or URI (`prodcat.model.registry.open_registry`)."""
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
    grad_accum_steps: int = 1
    class_weighting: Literal["none", "balanced"] = "none"
    """"balanced" weighs each class's loss by n / (classes x n_class), lifting rare classes."""
    balanced_sampling: bool = False
    """Draw examples so every class is seen equally often (with replacement)."""
    eval_every: int | None = None
    """Validate every N optimizer steps (default: once per epoch) and at the end; the best wins."""
    resume: bool = False
    """Continue from the state an interrupted run saved in `state_dir`."""
    state_dir: Path | None = None
    """Where the resumable state lives; default `<registry>/<model_name>/.train-state`."""
    save_every: int = 200
    """Save the resumable state every N optimizer steps (also at each epoch end and on Ctrl-C)."""
    stop_after_steps: int | None = None
    """Stop (state saved, nothing published) after this many steps in this invocation."""
    resume_from: str | None = None
    """Start from this published version's head and adapter (or backbone), or CURRENT's."""
    as_candidate: bool = False
    """Publish as the registry's CANDIDATE (judged by the consumers' shadow); CURRENT stays."""
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
                (self.grad_accum_steps < 1, "grad_accum_steps must be at least 1"),
                (self.class_weighting not in ("none", "balanced"), "class_weighting is none or balanced"),
                (self.eval_every is not None and self.eval_every < 1, "eval_every must be at least 1"),
                (self.save_every < 1, "save_every must be at least 1"),
                (
                    self.stop_after_steps is not None and self.stop_after_steps < 1,
                    "stop_after_steps must be >= 1",
                ),
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
    # The merged full-precision model, before the cast to the published dtype; under torchrun
    # every rank holds the same weights (its own copy of the best ones).
    model: ProductClassifier = field(repr=False)


def train(config: TrainConfig) -> TrainResult:
    """Reads, splits, fine-tunes, validates and publishes; the new checkpoint becomes CURRENT
    (CANDIDATE with `as_candidate`)."""
    index = label_index(config.labels)
    train_set, validation, skipped = _read_data(config, index)
    if not train_set or not validation:
        raise ConfigError(
            f"{config.data} has {len(train_set) + len(validation)} records in the configured labels; "
            "need enough for both a training and a validation split"
        )

    ranks = distributed.start()
    # Seeds the head's and the adapters' initialisation and LoRA dropout, the same on every rank.
    torch.manual_seed(config.seed)
    device = (
        torch.device("cuda", ranks.local_rank)
        if ranks.active and torch.cuda.is_available()
        else training_device()
    )
    tokenizer = AutoTokenizer.from_pretrained(config.base_model)
    if config.instruction:
        # In the tokenizer's template, so the checkpoint's tokenizer alone reproduces the inputs.
        apply_instruction(tokenizer, config.instruction, max_length=config.max_length)
    model = ProductClassifier.from_base(config.base_model, len(config.labels))
    lora: PeftModel | None = None
    if not config.full_finetune:
        # peft (the `train` extra) only here: a full fine-tune, the test kit's, runs without it.
        from peft import LoraConfig, get_peft_model

        # LoRA layers go into the backbone in place; `lora` is the handle that saves the
        # adapter and merges it. The head is not wrapped, so it trains in full.
        lora = get_peft_model(
            model.backbone,
            LoraConfig(
                r=config.lora_r,
                lora_alpha=config.lora_alpha,
                lora_dropout=config.lora_dropout,
                target_modules=lora_targets(model.backbone.config.model_type),
            ),
        )
    if config.resume_from is not None:
        warm_start(
            model,
            lora,
            checkpoint_to_resume(config.registry, config.model_name, config.resume_from),
            labels=config.labels,
            base_model=config.base_model,
        )
    model.to(device)

    try:
        best = fit(model, tokenizer, train_set, validation, index, config, device, ranks)
    except TrainingPaused:
        # Every rank pauses at the same step, so all can leave the group together. A rank
        # that exits while a peer still works in it can abort in interpreter teardown
        # (SIGABRT, "terminate called without an active exception").
        distributed.stop(ranks)
        raise
    with tempfile.TemporaryDirectory(prefix="prodcat-adapter-") as scratch:
        adapter = None
        if lora is not None:
            # The adapter alone is saved before merging; merged, it is gone.
            adapter = Path(scratch) / "adapter"
            if ranks.is_main:
                lora.save_pretrained(str(adapter), safe_serialization=True)
            # Merges into model.backbone itself and takes the LoRA layers out.
            lora.merge_and_unload()
        model.eval()
        if not ranks.is_main:
            # Rank 0 publishes; the others wait for it and report the same checkpoint.
            ranks.barrier()
            distributed.stop(ranks)
            published = _published_directory(config)
            metrics = dict(load_manifest(published).metrics)
            return TrainResult(published, published.name, metrics, skipped, model)
        metrics = score(model, tokenizer, validation, config)
        metrics["best_step"] = float(best.step)
        checkpoint = _publish(model, tokenizer, config, metrics, adapter, train_set, validation)
    # Published: a later run starts afresh instead of resuming this finished one.
    clear_state(state_dir(config.registry, config.model_name, config.state_dir))
    ranks.barrier()
    distributed.stop(ranks)
    return TrainResult(
        checkpoint=checkpoint,
        version=checkpoint.name,
        metrics=metrics,
        skipped=skipped,
        model=model,
    )


def lora_targets(model_type: str) -> str | list[str]:
    """peft's `target_modules` for a model type: a list of names or one full-match pattern."""
    targets = LORA_TARGETS.get(model_type)
    if targets is None:
        known = ", ".join(sorted(LORA_TARGETS))
        raise ConfigError(
            f"no LoRA target modules known for model type {model_type!r} (known: {known}); "
            "use --full-finetune"
        )
    return targets if isinstance(targets, str) else list(targets)


def _publish(
    model: ProductClassifier,
    tokenizer: PreTrainedTokenizerBase,
    config: TrainConfig,
    metrics: dict[str, float],
    adapter: Path | None,
    train_set: Sequence[LabeledTitle],
    validation: Sequence[LabeledTitle],
) -> Path:
    return publish(
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
        adapter=adapter,
        golden_titles=[r.title for r in validation[:GOLDEN_SIZE]],
        as_candidate=config.as_candidate,
    )


def _published_directory(config: TrainConfig) -> Path:
    """The folder of what rank 0 just published: CANDIDATE's version or CURRENT's."""
    if not config.as_candidate:
        return checkpoint_directory(config.registry, model_name=config.model_name)
    registry = open_registry(config.registry)
    pointer = registry.candidate(config.model_name)
    if pointer is None:
        raise CheckpointError(
            f"registry {registry.uri}: {config.model_name} has no CANDIDATE after publishing"
        )
    return registry.fetch(config.model_name, pointer.version, default_cache(registry.uri))


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
