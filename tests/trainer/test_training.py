from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from transformers import AutoTokenizer

from consumer.classify.checkpoint import verify
from consumer.classify.model import ProductClassifier
from consumer.errors import ConfigError
from trainer.evaluate import predict
from trainer.records import LabeledTitle, write_jsonl
from trainer.sample_corpus import generate
from trainer.train import TrainConfig, TrainResult, train

# LoRA on a random backbone mostly trains the head, so it needs a higher rate to move at all.
LORA_LEARNING_RATE = 3e-3
OFF_LABEL = [LabeledTitle(f"Hozelock Garden Hose {n}m", "Garden") for n in (15, 25, 30)]


@pytest.fixture(scope="module")
def lora_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lora-data") / "titles.jsonl"
    write_jsonl([*generate(per_class=100, seed=1), *OFF_LABEL], path)
    return path


@pytest.fixture(scope="module")
def lora_run(lora_data: Path, tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    return train(
        TrainConfig(
            data=lora_data,
            base_model=str(tiny_base),
            registry=tmp_path_factory.mktemp("registry"),
            learning_rate=LORA_LEARNING_RATE,
            progress=False,
        )
    )


def test_full_finetune_reaches_high_validation_macro_f1(full_run: TrainResult) -> None:
    assert full_run.metrics["macro_f1"] >= 0.8


def test_full_finetune_manifest_records_a_full_recipe(full_run: TrainResult) -> None:
    training = verify(full_run.checkpoint).manifest.training
    assert (training.method, training.lora_r) == ("full", None)


def test_lora_training_publishes_a_checkpoint_that_verifies(lora_run: TrainResult) -> None:
    assert verify(lora_run.checkpoint).manifest.training.method == "lora"


def test_lora_training_learns_better_than_chance(lora_run: TrainResult) -> None:
    assert lora_run.metrics["macro_f1"] > 2 / 6


def test_lora_checkpoint_holds_merged_weights_only(lora_run: TrainResult) -> None:
    with safe_open(str(lora_run.checkpoint / "model.safetensors"), "pt") as weights:
        names = list(weights.keys())
    assert [n for n in names if "lora_" in n or n.startswith("base_model")] == []


def test_loaded_checkpoint_predicts_like_the_in_memory_model(lora_run: TrainResult) -> None:
    titles = [r.title for r in generate(per_class=40, seed=99)]
    manifest = verify(lora_run.checkpoint).manifest
    tokenizer = AutoTokenizer.from_pretrained(lora_run.checkpoint)
    # float32 is how a CPU consumer runs the float16 weights.
    loaded = ProductClassifier.load(lora_run.checkpoint, dtype=torch.float32)
    in_memory = predict(lora_run.model, tokenizer, titles, max_length=manifest.max_length)
    assert predict(loaded, tokenizer, titles, max_length=manifest.max_length) == in_memory


def test_records_outside_the_labels_are_skipped_and_counted(lora_run: TrainResult) -> None:
    assert lora_run.skipped == len(OFF_LABEL)


def test_manifest_counts_only_records_within_the_labels(lora_run: TrainResult) -> None:
    training = verify(lora_run.checkpoint).manifest.training
    assert training.train_examples + training.validation_examples == 6 * 100


def test_training_is_deterministic_for_a_seed(tiny_base: Path, tmp_path: Path) -> None:
    data = tmp_path / "titles.jsonl"
    write_jsonl(generate(per_class=30, seed=2), data)
    states = []
    for run in ("first", "second"):
        config = TrainConfig(
            data=data,
            base_model=str(tiny_base),
            registry=tmp_path / run,
            learning_rate=LORA_LEARNING_RATE,
            batch_size=16,
            progress=False,
        )
        states.append(train(config).model.state_dict())
    first, second = states
    assert [name for name in first if not torch.equal(first[name], second[name])] == []


def test_config_rejects_non_positive_epochs(tiny_base: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="epochs must be positive"):
        TrainConfig(data=tmp_path / "x.jsonl", base_model=str(tiny_base), registry=tmp_path, epochs=0)


def test_training_rejects_data_without_records_in_the_labels(tiny_base: Path, tmp_path: Path) -> None:
    data = tmp_path / "titles.jsonl"
    write_jsonl(OFF_LABEL, data)
    config = TrainConfig(data=data, base_model=str(tiny_base), registry=tmp_path, progress=False)
    with pytest.raises(ConfigError, match="0 records in the configured labels"):
        train(config)


def test_a_dataset_directory_is_validated_on_its_own_validation_split(
    corpus: Path, tiny_base: Path, tmp_path: Path
) -> None:
    from trainer.dataset_build import BuildOptions, build_dataset, load_split, write_dataset
    from trainer.lspc import ReadStats, read_catalogue

    stats = ReadStats()
    offers = read_catalogue(corpus, stats=stats, progress=False)
    write_dataset(build_dataset(offers, BuildOptions(), stats), tmp_path / "dataset")
    result = train(
        TrainConfig(
            data=tmp_path / "dataset",
            base_model=str(tiny_base),
            registry=tmp_path / "registry",
            full_finetune=True,
            learning_rate=1e-3,
            epochs=0.25,
            progress=False,
        )
    )
    recipe = verify(result.checkpoint).manifest.training
    assert recipe.validation_examples == len(load_split(tmp_path / "dataset", "validation"))
    assert recipe.train_examples == len(load_split(tmp_path / "dataset", "train"))
