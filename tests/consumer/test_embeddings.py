import base64

import numpy as np
import pytest
import torch

from prodcat.consumer.embeddings import decode_embedding, embedding_fields
from prodcat.schemas.events import EmbeddingVector


def test_each_row_becomes_one_float16_vector_that_decodes_to_it() -> None:
    pooled = torch.tensor([[0.5, -1.25, 3.0], [1e-3, 2.0, -0.0]])
    fields = embedding_fields(pooled)
    decoded = [decode_embedding(EmbeddingVector.model_validate(f)) for f in fields]
    expected = pooled.to(torch.float16).to(torch.float32).numpy()
    assert [f["dim"] for f in fields] == [3, 3]
    np.testing.assert_array_equal(np.stack(decoded), expected)


def test_the_bytes_are_little_endian_float16() -> None:
    (field,) = embedding_fields(torch.tensor([[1.0, -2.0]]))
    # IEEE half: 1.0 is 0x3C00, -2.0 is 0xC000; little-endian puts the low byte first.
    assert base64.b64decode(str(field["b64"])) == bytes([0x00, 0x3C, 0x00, 0xC0])


def test_a_float16_tensor_is_carried_exactly() -> None:
    pooled = torch.randn(4, 16, generator=torch.Generator().manual_seed(0)).to(torch.float16)
    decoded = np.stack(
        [decode_embedding(EmbeddingVector.model_validate(f)) for f in embedding_fields(pooled)]
    )
    np.testing.assert_array_equal(decoded, pooled.float().numpy())


def test_a_tensor_that_is_not_rows_of_vectors_is_refused() -> None:
    with pytest.raises(ValueError, match="rows x hidden size"):
        embedding_fields(torch.zeros(3))


def test_a_vector_whose_bytes_do_not_match_its_dimension_is_refused() -> None:
    vector = EmbeddingVector(dim=3, b64=base64.b64encode(b"\x00\x3c").decode())
    with pytest.raises(ValueError, match="not 3 float16 values"):
        decode_embedding(vector)
