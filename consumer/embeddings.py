"""Pooled title embeddings on enriched events (`--emit-embeddings`): float16, little-endian, base64.

float16 halves the bytes of float32 and is what a GPU consumer computes in anyway (so
there it is exact); a CPU consumer's float32 values are rounded to it. The vector is the
pooled hidden state the head reads, not normalised: normalise before cosine search.
"""

from __future__ import annotations

import base64

import numpy as np
import torch

from prodcat.schemas.events import EmbeddingVector

# Little-endian whatever the host: the wire format must not depend on the machine.
WIRE_DTYPE = np.dtype("<f2")


def embedding_fields(pooled: torch.Tensor) -> list[dict[str, object]]:
    """One `classification.embedding` member per row of `pooled` (rows x hidden size)."""
    if pooled.dim() != 2:
        raise ValueError(f"expected rows x hidden size, got shape {tuple(pooled.shape)}")
    rows = pooled.detach().to(device="cpu", dtype=torch.float16).numpy().astype(WIRE_DTYPE, copy=False)
    dim = rows.shape[1]
    return [{"dtype": "float16", "dim": dim, "b64": base64.b64encode(row.tobytes()).decode()} for row in rows]


def decode_embedding(embedding: EmbeddingVector) -> np.ndarray:
    """The vector an enriched event carries, as float32 (for subscribers and tests)."""
    raw = base64.b64decode(embedding.b64, validate=True)
    if len(raw) != embedding.dim * WIRE_DTYPE.itemsize:
        raise ValueError(f"embedding holds {len(raw)} bytes, not {embedding.dim} float16 values")
    return np.frombuffer(raw, dtype=WIRE_DTYPE).astype(np.float32)
