from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from transformers import AutoModel, AutoTokenizer

from prodcat.model.encode import encode
from prodcat.trainer.tiny_base import EOS, FINGERPRINT_FILE, build_tiny_base


def test_tiny_base_loads_as_a_qwen3_model(tiny_base: Path) -> None:
    model = AutoModel.from_pretrained(tiny_base)
    assert model.config.model_type == "qwen3"


def test_tiny_base_embedding_matches_its_tokenizer(tiny_base: Path) -> None:
    model = AutoModel.from_pretrained(tiny_base)
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    assert model.get_input_embeddings().num_embeddings == len(tokenizer)


def test_tokenizer_appends_endoftext_to_every_input(tiny_base: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    batch = tokenizer(["Crocs Classic Clog", "Atomic Habits (Paperback) by James Clear"])
    assert [ids[-1] for ids in batch["input_ids"]] == [tokenizer.convert_tokens_to_ids(EOS)] * 2


def test_tokenizer_pads_on_the_left_with_endoftext(tiny_base: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    batch = encode(tokenizer, ["Crocs", "Pampers Baby-Dry Nappies Size 4"], max_length=32)
    short_ids, short_mask = batch["input_ids"][0], batch["attention_mask"][0]
    padding = int((short_mask == 0).sum())
    assert padding > 0
    assert short_mask[:padding].sum() == 0
    assert set(short_ids[:padding].tolist()) == {tokenizer.convert_tokens_to_ids(EOS)}


def test_tokenizer_round_trips_arbitrary_text(tiny_base: Path) -> None:
    # Byte-level BPE never loses characters, even ones absent from the training corpus.
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    text = "Britax Römer Baby-Safe 3 — 100% 綿 😀"
    ids = tokenizer(text)["input_ids"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == text


def test_rebuild_with_same_inputs_reuses_the_cached_build(corpus: Path, tiny_base: Path) -> None:
    weights = tiny_base / "model.safetensors"
    written = weights.stat().st_mtime_ns
    assert build_tiny_base(corpus, tiny_base) == tiny_base
    assert weights.stat().st_mtime_ns == written


def test_rebuild_with_other_parameters_replaces_the_build(
    corpus: Path, tiny_base: Path, tmp_path: Path
) -> None:
    out = tmp_path / "base"
    shutil.copytree(tiny_base, out)
    before = (out / "model.safetensors").read_bytes()
    build_tiny_base(corpus, out, seed=1)
    assert (out / "model.safetensors").read_bytes() != before


@pytest.mark.parametrize("damage", ["fingerprint", "weights"])
def test_incomplete_cache_is_rebuilt(corpus: Path, tiny_base: Path, tmp_path: Path, damage: str) -> None:
    out = tmp_path / "base"
    shutil.copytree(tiny_base, out)
    (out / (FINGERPRINT_FILE if damage == "fingerprint" else "model.safetensors")).unlink()
    build_tiny_base(corpus, out)
    assert (out / FINGERPRINT_FILE).is_file()
    assert (out / "model.safetensors").is_file()
