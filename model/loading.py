"""The one gate every loaded model passes: verify, load, warm up, agree with its golden set.

`prodcat consume`, hot reload, the demo, the test kit, `prodcat evaluate` and the
benchmarks all load through `load_model`, so nothing serves or scores a checkpoint that
the service itself would refuse.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from prodcat.errors import CheckpointError
from prodcat.model.checkpoint import GOLDEN_FILE, verify
from prodcat.model.classifier import ProductClassifier
from prodcat.model.registry import checkpoint_directory
from prodcat.model.runtime import TorchModel, pick_device, serving_dtype
from prodcat.model.tokenizer import load_tokenizer


def load_model(
    location: str | os.PathLike[str],
    *,
    model_name: str | None = None,
    device: str = "auto",
    min_agreement: float,
    cache: Path | None = None,
) -> TorchModel:
    """A checked, warmed model; CheckpointError (one line) for anything the gate refuses.

    `location` is a checkpoint, a model's registry folder or a registry root, local or a
    URI (`prodcat.model.registry.checkpoint_directory`; a remote CURRENT is downloaded into
    `cache`).
    """
    checkpoint = verify(checkpoint_directory(location, model_name=model_name, cache=cache))
    torch_device = pick_device(device)
    tokenizer = load_tokenizer(checkpoint)
    network = ProductClassifier.load(
        checkpoint.directory, dtype=serving_dtype(torch_device), device=torch_device
    )
    if network.head.out_features != len(checkpoint.manifest.labels):
        raise CheckpointError(
            f"checkpoint {checkpoint.directory}: head has {network.head.out_features} outputs "
            f"but the manifest lists {len(checkpoint.manifest.labels)} labels"
        )
    model = TorchModel(checkpoint, network, tokenizer, torch_device)
    model.predict(["warm-up"])
    agreement = golden_agreement(model)
    if agreement is not None and agreement < min_agreement:
        raise CheckpointError(
            f"checkpoint {checkpoint.directory} agrees with its golden set on "
            f"{agreement:.0%} of titles (at least {min_agreement:.0%} required)"
        )
    return model


def golden_agreement(model: TorchModel) -> float | None:
    """Share of the checkpoint's golden titles given the label recorded at publish time.

    None when the checkpoint has no golden set. Below 1.0 on a GPU is normal for titles
    near a tie (fp16 here, fp32 when published); far below means a broken checkpoint.
    """
    path = model.checkpoint.directory / GOLDEN_FILE
    if not path.is_file():
        return None
    try:
        golden = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
        titles, labels = [str(g["title"]) for g in golden], [str(g["label"]) for g in golden]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path} is not a golden set: {exc}") from None
    if not golden:
        return None
    predicted = model.predict(titles)
    return sum(p.label == label for p, label in zip(predicted, labels, strict=True)) / len(golden)
