from pathlib import Path

import pytest
import torch
from transformers import AutoModel, BertConfig, BertModel, GPT2Config, Qwen3Config

from prodcat.errors import ConfigError
from prodcat.model.classifier import (
    ProductClassifier,
    last_token_pool,
    mean_pool,
    pooling_for,
    positions_from_mask,
)


def tiny_classifier(num_labels: int = 6) -> ProductClassifier:
    torch.manual_seed(0)
    config = Qwen3Config(
        vocab_size=300,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=64,
    )
    return ProductClassifier(AutoModel.from_config(config), num_labels).eval()


def test_last_token_pool_picks_the_last_real_token_under_left_padding() -> None:
    hidden = torch.arange(2 * 4 * 1, dtype=torch.float32).reshape(2, 4, 1)
    # Row 0 is padded on the left by two; row 1 is full. Both end at index 3.
    mask = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])
    assert last_token_pool(hidden, mask).flatten().tolist() == [3.0, 7.0]


def test_last_token_pool_also_handles_right_padding() -> None:
    hidden = torch.arange(2 * 4 * 1, dtype=torch.float32).reshape(2, 4, 1)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 0]])
    assert last_token_pool(hidden, mask).flatten().tolist() == [1.0, 6.0]


def test_positions_count_real_tokens_only() -> None:
    mask = torch.tensor([[0, 0, 1, 1, 1]])
    assert positions_from_mask(mask).tolist() == [[0, 0, 0, 1, 2]]


def test_every_row_of_a_left_padded_batch_equals_the_same_input_run_alone() -> None:
    model = tiny_classifier()
    rows = [[5, 17, 42, 8, 1], [9, 1], [33, 34, 35, 1]]
    width = max(len(r) for r in rows)
    ids = torch.tensor([[0] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    with torch.inference_mode():
        batched = model(ids, mask)
        alone = torch.cat([model(torch.tensor([r]), torch.ones(1, len(r), dtype=torch.long)) for r in rows])
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=1e-4)


def test_save_then_load_gives_the_same_logits(tmp_path: Path) -> None:
    model = tiny_classifier(num_labels=4)
    model.save(tmp_path)
    loaded = ProductClassifier.load(tmp_path, dtype=torch.float32)
    ids = torch.tensor([[3, 4, 5, 1]])
    mask = torch.ones_like(ids)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(ids, mask), model(ids, mask))


def tiny_bert_classifier(num_labels: int = 6) -> ProductClassifier:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=300,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    return ProductClassifier(BertModel(config), num_labels, pooling="mean").eval()


def test_mean_pool_averages_real_tokens_only() -> None:
    hidden = torch.tensor([[[1.0], [2.0], [3.0], [6.0]]])
    mask = torch.tensor([[0, 1, 1, 0]])
    assert mean_pool(hidden, mask).flatten().tolist() == [2.5]


def test_every_row_of_a_padded_batch_equals_the_same_input_run_alone_under_mean_pooling() -> None:
    model = tiny_bert_classifier()
    rows = [[101, 17, 42, 8, 102], [101, 102], [101, 34, 35, 102]]
    width = max(len(r) for r in rows)
    ids = torch.tensor([[0] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    with torch.inference_mode():
        batched = model(ids, mask)
        alone = torch.cat([model(torch.tensor([r]), torch.ones(1, len(r), dtype=torch.long)) for r in rows])
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=1e-4)


def test_new_heads_have_no_bias_and_a_saved_bias_loads(tmp_path: Path) -> None:
    assert tiny_classifier().head.bias is None
    model = tiny_classifier(num_labels=4)
    model.head = torch.nn.Linear(model.head.in_features, 4, bias=True)
    model.save(tmp_path)
    loaded = ProductClassifier.load(tmp_path, dtype=torch.float32)
    assert loaded.head.bias is not None
    torch.testing.assert_close(loaded.head.bias, model.head.bias)


def test_the_pooling_of_a_base_follows_its_family(tmp_path: Path) -> None:
    BertConfig(hidden_size=32, num_attention_heads=4).save_pretrained(tmp_path / "bert")
    Qwen3Config(hidden_size=32, num_attention_heads=4).save_pretrained(tmp_path / "qwen3")
    assert (pooling_for(tmp_path / "bert"), pooling_for(tmp_path / "qwen3")) == ("mean", "last_token")


def test_a_base_of_an_unknown_family_is_refused_with_one_line(tmp_path: Path) -> None:
    GPT2Config().save_pretrained(tmp_path)
    with pytest.raises(ConfigError, match="no pooling known for model type 'gpt2'"):
        pooling_for(tmp_path)


def test_a_mean_pooled_classifier_embeds_the_average_of_its_real_tokens() -> None:
    model = tiny_bert_classifier()
    ids = torch.tensor([[0, 0, 101, 17, 102], [101, 42, 43, 44, 102]])
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    with torch.inference_mode():
        hidden = model.backbone(
            input_ids=ids, attention_mask=mask, position_ids=positions_from_mask(mask)
        ).last_hidden_state
        expected = torch.stack([hidden[0, 2:].mean(dim=0), hidden[1].mean(dim=0)])
        torch.testing.assert_close(model.embed(ids, mask), expected)
