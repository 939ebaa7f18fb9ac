"""`prodcat export --format hf`: a directory transformers' own pipeline loads, labelling as prodcat does."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import torch
from torch import nn
from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel, Qwen3Config, pipeline

from prodcat.export import export_hf
from prodcat.model.classifier import ProductClassifier
from prodcat.model.loading import load_model
from prodcat.schemas.labels import DEFAULT_CATEGORIES
from prodcat.schemas.manifest import TrainingRecipe
from prodcat.trainer.publish import publish
from prodcat.trainer.records import read_jsonl
from tests.cli_runner import run_cli, run_cli_output

REAL_TITLES = Path(__file__).resolve().parents[3] / "shared/data/product-titles/train.jsonl"
RECIPE = TrainingRecipe(
    method="full",
    learning_rate=1e-3,
    epochs=1.0,
    batch_size=32,
    seed=0,
    train_examples=1,
    validation_examples=1,
)


def export(capsys: pytest.CaptureFixture[str], location: Path, out: Path) -> Path:
    code, _, err = run_cli_output(capsys, "export", str(location), "--format", "hf", "--out", str(out))
    assert code == 0, err
    return out


def agreement(exported: Path, registry: Path, titles: list[str]) -> tuple[float, float]:
    """Share of titles given the same label by the pipeline and by prodcat, and the largest score gap."""
    pipe = pipeline("text-classification", model=str(exported), device="cpu")
    theirs = pipe(titles, truncation=True, batch_size=16)
    ours = load_model(registry, device="cpu", min_agreement=0.9).predict(titles)
    same = sum(t["label"] == o.label for t, o in zip(theirs, ours, strict=True)) / len(titles)
    gap = max(abs(t["score"] - o.confidence) for t, o in zip(theirs, ours, strict=True))
    return same, gap


def test_the_pipeline_labels_the_tiny_corpus_as_prodcat_does(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, trained_registry: Path, corpus: Path
) -> None:
    exported = export(capsys, trained_registry, tmp_path / "hf")
    # Batches of 16 titles of mixed lengths: padding must not move the pooled token.
    same, gap = agreement(exported, trained_registry, [r.title for r in read_jsonl(corpus)][:400])
    assert same >= 0.99
    assert gap < 1e-4


@pytest.mark.skipif(not REAL_TITLES.is_file(), reason="needs ../shared/data/product-titles")
def test_the_pipeline_labels_real_titles_as_prodcat_classify_does(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, trained_registry: Path
) -> None:
    exported = export(capsys, trained_registry, tmp_path / "hf")
    titles = [r.title for r in read_jsonl(REAL_TITLES)][:2000]
    source = tmp_path / "titles.txt"
    source.write_text("".join(f"{t}\n" for t in titles))
    code, out, err = run_cli_output(
        capsys,
        "classify",
        str(source),
        "--input",
        "titles",
        "--registry",
        str(trained_registry),
        "--device",
        "cpu",
    )
    assert code == 0 and not err
    ours = [orjson.loads(line)["classification"]["label"] for line in out.splitlines()]
    theirs = pipeline("text-classification", model=str(exported), device="cpu")(
        titles, truncation=True, batch_size=32
    )
    assert len(ours) == len(titles)
    assert sum(t["label"] == o for t, o in zip(theirs, ours, strict=True)) / len(titles) >= 0.99


def test_a_location_without_a_checkpoint_gets_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, err = run_cli(
        capsys, "export", str(tmp_path / "nowhere"), "--format", "hf", "--out", str(tmp_path / "o")
    )
    assert code == 1
    assert err.strip().splitlines() == [
        f"prodcat: error: no checkpoint at {tmp_path / 'nowhere'}: expected manifest.json or CURRENT"
    ]


def test_an_out_directory_with_files_in_it_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, trained_registry: Path
) -> None:
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "keep.txt").write_text("mine")
    code, err = run_cli(
        capsys, "export", str(trained_registry), "--format", "hf", "--out", str(tmp_path / "o")
    )
    assert code == 1
    assert err.strip().splitlines() == [
        f"prodcat: error: --out {tmp_path / 'o'} exists and is not an empty directory"
    ]
    assert (tmp_path / "o" / "keep.txt").read_text() == "mine"


def publish_network(network: ProductClassifier, tiny_base: Path, registry: Path) -> Path:
    return publish(
        network,
        AutoTokenizer.from_pretrained(tiny_base),
        registry=registry,
        model_name="m",
        base_model=str(tiny_base),
        labels=DEFAULT_CATEGORIES,
        max_length=32,
        instruction=None,
        recipe=RECIPE,
        metrics={},
    )


def test_a_head_with_a_bias_is_refused_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_base: Path
) -> None:
    network = ProductClassifier.from_base(tiny_base, len(DEFAULT_CATEGORIES))
    network.head = nn.Linear(network.head.in_features, len(DEFAULT_CATEGORIES), bias=True)
    checkpoint = publish_network(network, tiny_base, tmp_path / "registry")
    capsys.readouterr()  # what publishing wrote (progress bars), not the command
    code, err = run_cli(capsys, "export", str(checkpoint), "--format", "hf", "--out", str(tmp_path / "o"))
    assert code == 1
    [line] = err.strip().splitlines()
    assert line.startswith(f"prodcat: error: checkpoint {checkpoint} has a head with a bias")
    assert not (tmp_path / "o").exists()


def test_a_mean_pooled_checkpoint_is_refused_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_base: Path
) -> None:
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    bert = BertModel(
        BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
        )
    )
    network = ProductClassifier(bert, len(DEFAULT_CATEGORIES), pooling="mean")
    checkpoint = publish_network(network, tiny_base, tmp_path / "registry")
    capsys.readouterr()  # what publishing wrote (progress bars), not the command
    code, err = run_cli(capsys, "export", str(checkpoint), "--format", "hf", "--out", str(tmp_path / "o"))
    assert code == 1
    [line] = err.strip().splitlines()
    assert line.startswith(f"prodcat: error: checkpoint {checkpoint} pools the mean of its tokens")


REAL_TOKENIZER = REAL_TITLES.parents[1] / "qwen3-tokenizer"


@pytest.mark.skipif(
    not (REAL_TOKENIZER.is_dir() and REAL_TITLES.is_file()), reason="needs ../shared/data (Qwen3 tokenizer)"
)
def test_a_checkpoint_with_the_real_qwen3_tokenizer_exports_exactly(tmp_path: Path) -> None:
    # Qwen3's own tokenizer pads with the end-of-text token it appends: what the export's pad token is for.
    tokenizer = AutoTokenizer.from_pretrained(REAL_TOKENIZER)
    torch.manual_seed(0)
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        pad_token_id=tokenizer.pad_token_id,
    )
    network = ProductClassifier(AutoModel.from_config(config), len(DEFAULT_CATEGORIES))
    titles = [r.title for r in read_jsonl(REAL_TITLES)][:300]
    checkpoint = publish(
        network,
        tokenizer,
        registry=tmp_path / "registry",
        model_name="m",
        base_model="qwen3-random",
        labels=DEFAULT_CATEGORIES,
        max_length=64,
        instruction=None,
        recipe=RECIPE,
        metrics={},
        dtype="float32",
    )
    exported = export_hf(checkpoint, tmp_path / "hf")
    same, gap = agreement(exported, checkpoint, titles)
    assert same == 1.0 and gap < 1e-4
