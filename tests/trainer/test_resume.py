"""An interrupted training run continues exactly where it stopped."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import torch

from prodcat.errors import ConfigError
from prodcat.trainer.checkpointing import STATE_FILE, TrainingPaused, state_dir
from prodcat.trainer.records import write_jsonl
from prodcat.trainer.sample_corpus import generate
from prodcat.trainer.train import TrainConfig, train


@pytest.fixture(scope="module")
def small_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("resume") / "titles.jsonl"
    write_jsonl(generate(per_class=30, seed=5), path)
    return path


def lora_config(data: Path, base: Path, registry: Path, **changes: Any) -> TrainConfig:
    # LoRA with dropout, so the random state must be restored too, not only the weights.
    config = TrainConfig(
        data=data,
        base_model=str(base),
        registry=registry,
        learning_rate=3e-3,
        batch_size=16,
        epochs=1.0,
        save_every=1,
        progress=False,
    )
    return dataclasses.replace(config, **changes)


def test_a_resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one(
    small_data: Path, tiny_base: Path, tmp_path: Path
) -> None:
    straight = train(lora_config(small_data, tiny_base, tmp_path / "a")).model.state_dict()

    with pytest.raises(TrainingPaused, match="stopped after step 4"):
        train(lora_config(small_data, tiny_base, tmp_path / "b", stop_after_steps=4))
    resumed = train(lora_config(small_data, tiny_base, tmp_path / "b", resume=True)).model.state_dict()

    for name, value in straight.items():
        torch.testing.assert_close(resumed[name], value, rtol=0, atol=0)


def test_resuming_with_no_saved_state_is_refused(small_data: Path, tiny_base: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nothing to resume"):
        train(lora_config(small_data, tiny_base, tmp_path, resume=True))


def test_resuming_with_a_changed_recipe_is_refused(small_data: Path, tiny_base: Path, tmp_path: Path) -> None:
    with pytest.raises(TrainingPaused):
        train(lora_config(small_data, tiny_base, tmp_path, stop_after_steps=2))
    with pytest.raises(ConfigError, match="different run"):
        train(lora_config(small_data, tiny_base, tmp_path, resume=True, learning_rate=1e-3))


def test_a_published_run_leaves_no_state_to_resume(small_data: Path, tiny_base: Path, tmp_path: Path) -> None:
    result = train(lora_config(small_data, tiny_base, tmp_path, epochs=0.25))
    assert not (state_dir(tmp_path, result.checkpoint.parent.name) / STATE_FILE).exists()


def test_a_state_dir_outside_the_registry_holds_the_state(
    small_data: Path, tiny_base: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "local"
    paused = lora_config(small_data, tiny_base, tmp_path / "reg", stop_after_steps=1, state_dir=elsewhere)
    with pytest.raises(TrainingPaused, match=r"state saved in .*local"):
        train(paused)
    assert (elsewhere / STATE_FILE).is_file()
    assert not (tmp_path / "reg").exists()
