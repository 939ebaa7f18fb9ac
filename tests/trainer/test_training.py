from __future__ import annotations

import math
from pathlib import Path

import orjson
import pytest
import torch
from safetensors import safe_open
from transformers import AutoTokenizer

from prodcat.errors import ConfigError
from prodcat.model.checkpoint import verify
from prodcat.model.classifier import ProductClassifier
from prodcat.model.encode import encode
from prodcat.model.loading import load_model
from prodcat.trainer.evaluate import predict
from prodcat.trainer.loop import batches, class_weights, oom_guidance
from prodcat.trainer.records import LabeledTitle, write_jsonl
from prodcat.trainer.sample_corpus import generate
from prodcat.trainer.train import TrainConfig, TrainResult, train

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
    from_disk = predict(loaded, tokenizer, titles, max_length=manifest.max_length)
    # The published weights are float16: a title within rounding of a tie may flip, no more.
    assert sum(a == b for a, b in zip(from_disk, in_memory, strict=True)) / len(titles) >= 0.99
    with torch.inference_mode():
        batch = encode(tokenizer, titles, max_length=manifest.max_length)
        gap = loaded(batch["input_ids"], batch["attention_mask"]) - lora_run.model(
            batch["input_ids"], batch["attention_mask"]
        )
    assert gap.abs().max().item() < 1e-2


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
    from prodcat.trainer.dataset_build import BuildOptions, build_dataset, load_split, write_dataset
    from prodcat.trainer.lspc import ReadStats, read_catalogue

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


def test_a_lora_checkpoint_also_carries_its_adapter(lora_run: TrainResult) -> None:
    manifest = verify(lora_run.checkpoint).manifest
    assert "adapter/adapter_model.safetensors" in manifest.files
    assert "adapter/adapter_config.json" in manifest.files


def test_the_golden_set_holds_what_the_published_checkpoint_predicts(lora_run: TrainResult) -> None:
    lines = (lora_run.checkpoint / "golden.jsonl").read_bytes().splitlines()
    golden = [orjson.loads(line) for line in lines]
    assert len(golden) == 32 and "golden.jsonl" in verify(lora_run.checkpoint).manifest.files
    served = load_model(lora_run.checkpoint, device="cpu", min_agreement=0.9).predict(
        [g["title"] for g in golden], top_k=1
    )
    assert [p.label for p in served] == [g["label"] for g in golden]
    assert [p.confidence for p in served] == pytest.approx([g["confidence"] for g in golden], abs=1e-4)


def test_one_epoch_validates_once_at_its_end_and_records_that_step(full_run: TrainResult) -> None:
    recipe = verify(full_run.checkpoint).manifest.training
    steps = math.ceil(recipe.train_examples / recipe.batch_size)
    assert full_run.metrics["best_step"] == steps


def test_balanced_class_weights_follow_scikit_learns_formula() -> None:
    targets = torch.tensor([0, 0, 0, 1, 2, 2])
    # n / (classes present x n_class); class 3 never occurs and weighs nothing.
    assert class_weights(targets, 4).tolist() == pytest.approx([6 / 9, 6 / 3, 6 / 6, 0.0])


def test_two_accumulated_half_batches_equal_one_full_batch(
    corpus: Path, tiny_base: Path, tmp_path: Path
) -> None:
    data = tmp_path / "titles.jsonl"
    write_jsonl(generate(per_class=16, seed=4), data)

    def one_step(batch_size: int, accumulate: int) -> ProductClassifier:
        config = TrainConfig(
            data=data,
            base_model=str(tiny_base),
            registry=tmp_path / f"registry-{batch_size}",
            full_finetune=True,
            learning_rate=1e-3,
            # About 84 training titles: two half batches, or one full batch, make one step.
            epochs=0.3,
            batch_size=batch_size,
            grad_accum_steps=accumulate,
            progress=False,
        )
        return train(config).model

    whole, halves = one_step(32, 1).state_dict(), one_step(16, 2).state_dict()
    for name, value in whole.items():
        torch.testing.assert_close(halves[name], value, atol=2e-5, rtol=1e-4)


def test_balanced_sampling_draws_every_class_about_equally() -> None:
    targets = torch.tensor([0] * 90 + [1] * 10)
    weights = 1.0 / torch.bincount(targets)[targets]
    drawn = torch.cat(list(batches(100, 25, 40, torch.Generator().manual_seed(0), weights)))
    share_of_rare = float((targets[drawn] == 1).float().mean())
    assert share_of_rare == pytest.approx(0.5, abs=0.05)


def test_running_out_of_gpu_memory_explains_what_to_lower(tiny_base: Path, tmp_path: Path) -> None:
    config = TrainConfig(data=tmp_path, base_model=str(tiny_base), registry=tmp_path)
    expected = r"lower --batch-size .* --grad-accum-steps .* --max-length"
    with pytest.raises(ConfigError, match=expected), oom_guidance(config):
        raise torch.OutOfMemoryError("CUDA out of memory")
