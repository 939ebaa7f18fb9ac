"""`train --resume-from`: a run starts from a published checkpoint's head and adapter (or backbone)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict
from safetensors.torch import load_file

from prodcat.errors import CheckpointError, ConfigError
from prodcat.model.checkpoint import resolve
from prodcat.model.classifier import ProductClassifier
from prodcat.schemas.labels import DEFAULT_CATEGORIES
from prodcat.trainer.records import write_jsonl
from prodcat.trainer.sample_corpus import generate
from prodcat.trainer.train import LORA_TARGETS, TrainConfig, TrainResult, train
from prodcat.trainer.warm_start import checkpoint_to_resume, warm_start
from tests.cli_runner import run_cli

MODEL = "product-categorizer"
# So small that a run barely moves its starting weights: what it ends with is where it began.
STANDSTILL_LR = 1e-9


@pytest.fixture(scope="module")
def small_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("warm-data") / "titles.jsonl"
    write_jsonl(generate(per_class=20, seed=3), path)
    return path


@pytest.fixture(scope="module")
def lora_checkpoint(small_data: Path, tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = train(
        TrainConfig(
            data=small_data,
            base_model=str(tiny_base),
            registry=tmp_path_factory.mktemp("lora-registry"),
            learning_rate=3e-3,
            lora_r=4,
            lora_alpha=8,
            batch_size=16,
            progress=False,
        )
    )
    return result.checkpoint


@pytest.fixture
def registry_copy(trained_registry: Path, tmp_path: Path) -> Path:
    """The session's fully fine-tuned registry, copied so a run may publish into it."""
    return Path(shutil.copytree(trained_registry, tmp_path / "registry"))


def lora_model(tiny_base: Path, r: int = 4, alpha: int = 8) -> tuple[ProductClassifier, PeftModel]:
    model = ProductClassifier.from_base(str(tiny_base), len(DEFAULT_CATEGORIES))
    lora = get_peft_model(
        model.backbone,
        LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.05, target_modules=list(LORA_TARGETS)),
    )
    return model, lora


def test_current_names_the_live_version(registry_copy: Path) -> None:
    assert checkpoint_to_resume(registry_copy, MODEL, "CURRENT") == resolve(registry_copy / MODEL)


def test_a_version_that_is_not_published_is_refused(registry_copy: Path) -> None:
    with pytest.raises(CheckpointError, match="no version directory 'v0'"):
        checkpoint_to_resume(registry_copy, MODEL, "v0")


def test_a_lora_run_starts_from_the_checkpoints_adapter_and_head(
    tiny_base: Path, lora_checkpoint: Path
) -> None:
    model, lora = lora_model(tiny_base)
    warm_start(model, lora, lora_checkpoint, labels=DEFAULT_CATEGORIES, base_model=str(tiny_base))
    saved = load_file(str(lora_checkpoint / "adapter" / "adapter_model.safetensors"))
    loaded = get_peft_model_state_dict(lora)
    assert sorted(saved) == sorted(loaded)
    assert [k for k in saved if not torch.equal(saved[k], loaded[k])] == []
    head = load_file(str(lora_checkpoint / "head.safetensors"))
    assert torch.equal(model.head.weight, head["weight"].float())


def test_the_head_rows_follow_the_runs_label_order(tiny_base: Path, lora_checkpoint: Path) -> None:
    reordered = tuple(reversed(DEFAULT_CATEGORIES))
    model, lora = lora_model(tiny_base)
    warm_start(model, lora, lora_checkpoint, labels=reordered, base_model=str(tiny_base))
    head = load_file(str(lora_checkpoint / "head.safetensors"))
    assert torch.equal(model.head.weight, head["weight"].float().flip(0))


def test_a_full_run_starts_from_the_checkpoints_backbone(tiny_base: Path, registry_copy: Path) -> None:
    checkpoint = resolve(registry_copy / MODEL)
    model = ProductClassifier.from_base(str(tiny_base), len(DEFAULT_CATEGORIES))
    warm_start(model, None, checkpoint, labels=DEFAULT_CATEGORIES, base_model=str(tiny_base))
    published = ProductClassifier.load(checkpoint, dtype=torch.float32).state_dict()
    assert [k for k, v in model.state_dict().items() if not torch.equal(v, published[k])] == []


def test_a_resumed_run_begins_where_the_live_checkpoint_left_off(
    small_data: Path, tiny_base: Path, registry_copy: Path, tmp_path: Path
) -> None:
    def run(registry: Path, resume_from: str | None) -> TrainResult:
        return train(
            TrainConfig(
                data=small_data,
                base_model=str(tiny_base),
                registry=registry,
                full_finetune=True,
                learning_rate=STANDSTILL_LR,
                batch_size=16,
                resume_from=resume_from,
                progress=False,
            )
        )

    resumed, fresh = run(registry_copy, "CURRENT"), run(tmp_path / "fresh", None)
    assert resumed.metrics["macro_f1"] >= 0.8 > fresh.metrics["macro_f1"]


def test_labels_that_differ_from_the_checkpoints_are_refused(tiny_base: Path, lora_checkpoint: Path) -> None:
    model, lora = lora_model(tiny_base)
    with pytest.raises(ConfigError, match=r"its labels \(.*\) are not this run's"):
        warm_start(model, lora, lora_checkpoint, labels=("Books", "Garden"), base_model=str(tiny_base))


def test_an_adapter_of_another_rank_is_refused_with_one_line(tiny_base: Path, lora_checkpoint: Path) -> None:
    model, lora = lora_model(tiny_base, r=8, alpha=16)
    with pytest.raises(
        ConfigError, match=r"its adapter has r 4 \(this run: 8\), lora_alpha 8 \(this run: 16\)"
    ):
        warm_start(model, lora, lora_checkpoint, labels=DEFAULT_CATEGORIES, base_model=str(tiny_base))


def test_an_adapter_trained_on_another_base_is_refused(tiny_base: Path, lora_checkpoint: Path) -> None:
    model, lora = lora_model(tiny_base)
    with pytest.raises(ConfigError, match="its adapter was trained on"):
        warm_start(
            model, lora, lora_checkpoint, labels=DEFAULT_CATEGORIES, base_model="Qwen/Qwen3-Embedding-0.6B"
        )


def test_a_lora_run_from_a_fully_fine_tuned_checkpoint_is_refused(
    tiny_base: Path, registry_copy: Path
) -> None:
    model, lora = lora_model(tiny_base)
    with pytest.raises(ConfigError, match="has no adapter; resume it with --full-finetune"):
        warm_start(
            model, lora, resolve(registry_copy / MODEL), labels=DEFAULT_CATEGORIES, base_model=str(tiny_base)
        )


def test_train_resume_from_reaches_the_run_and_refuses_in_one_line(
    small_data: Path, tiny_base: Path, registry_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run_cli(
        capsys,
        "train",
        "--data",
        str(small_data),
        "--base-model",
        str(tiny_base),
        "--registry",
        str(registry_copy),
        "--resume-from",
        "CURRENT",
    )
    assert (code, err.count("\n")) == (1, 1)
    assert err.startswith("prodcat: error: --resume-from ") and "resume it with --full-finetune" in err
