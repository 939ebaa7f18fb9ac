"""`prodcat export --format hf`: a checkpoint as a standard transformers text-classification model.

The directory written loads with `transformers.pipeline("text-classification", model=DIR)`
and no prodcat code: the backbone inside its family's `*ForSequenceClassification`
(Qwen3ForSequenceClassification for Qwen3), the head as its `score` layer, the labels as
`id2label`/`label2id`, and the checkpoint's tokenizer. It computes what prodcat computes,
the same network on the same tokens, because each difference is closed here (tested on a
CPU in float32: scores within 1e-4 of prodcat's; other devices and dtypes are not tested):

- Pooling: those classes take the rightmost token that is not the pad token. prodcat pools
  the appended end-of-text token, which Qwen3's tokenizer also uses for padding, so the
  export adds a pad token of its own (one zero row in the embedding matrix, never seen by
  a real token) and pads on the right, where a causal model never attends to the padding
  and rotary positions count from 0 as prodcat's do.
- Head: `score` has no bias. Heads trained since the export existed have none; a head with
  a bias has no exact equivalent there, and is refused.
- Length: prodcat truncates at the manifest's `max_length`; the tokenizer's
  `model_max_length` is set to it, so `truncation=True` in the pipeline call does the same.

Refused with one line: mean-pooled checkpoints (BERT-family: `BertForSequenceClassification`
classifies through the CLS pooler, and no standard class mean-pools a BERT), a head with a
bias, and an instruction prefix prepended as text (checkpoints from before the tokenizer's
template carried it: a tokenizer cannot reproduce merges across the prefix boundary). An
instruction in the template travels with the tokenizer and exports exactly.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Literal

import torch
from transformers import AutoModelForSequenceClassification
from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES

from prodcat.errors import CheckpointError, ConfigError
from prodcat.model.checkpoint import resolve, verify
from prodcat.model.classifier import ProductClassifier
from prodcat.model.tokenizer import load_tokenizer

ExportDtype = Literal["float32", "float16", "bfloat16"]
DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}
PAD_TOKEN = "<|prodcat_pad|>"


def export_hf(
    location: Path, out: Path, *, model_name: str | None = None, dtype: ExportDtype = "float32"
) -> Path:
    """Writes the checkpoint at `location` (a checkpoint, model folder or registry) to `out`."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"--out {out} exists and is not an empty directory")
    checkpoint = verify(resolve(location, model_name))
    manifest = checkpoint.manifest
    where = f"checkpoint {checkpoint.directory}"
    if manifest.pooling != "last_token":
        raise CheckpointError(
            f"{where} pools the {manifest.pooling} of its tokens; the standard sequence-classification "
            "classes pool one token (BERT's the CLS pooler), so it cannot be exported exactly"
        )
    if manifest.instruction and not manifest.instruction_in_tokenizer:
        raise CheckpointError(
            f"{where} prepends its instruction as text, which a tokenizer cannot reproduce token for "
            "token; it cannot be exported exactly"
        )
    network = ProductClassifier.load(checkpoint.directory, dtype=DTYPES[dtype], pooling=manifest.pooling)
    if network.head.bias is not None:
        raise CheckpointError(
            f"{where} has a head with a bias, which the standard `score` layer lacks; retrain it "
            "(heads are trained without one since export exists) to export it exactly"
        )
    backbone_config = network.backbone.config
    model_type = str(backbone_config.model_type)
    architecture = MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES.get(model_type)
    if architecture is None:
        raise CheckpointError(f"{where}: transformers has no sequence-classification class for {model_type}")

    tokenizer = load_tokenizer(checkpoint)
    tokenizer.add_special_tokens({"pad_token": PAD_TOKEN})
    tokenizer.padding_side = "right"
    tokenizer.model_max_length = manifest.max_length

    config = type(backbone_config).from_dict(
        {
            **backbone_config.to_dict(),
            "architectures": [architecture],
            "num_labels": len(manifest.labels),
            "id2label": dict(enumerate(manifest.labels)),
            "label2id": {label: i for i, label in enumerate(manifest.labels)},
            "problem_type": "single_label_classification",
            "pad_token_id": tokenizer.pad_token_id,
            "vocab_size": max(len(tokenizer), backbone_config.vocab_size),
        }
    )
    model = AutoModelForSequenceClassification.from_config(config, dtype=DTYPES[dtype])
    backbone = network.backbone
    state = backbone.state_dict()
    embeddings = backbone.get_input_embeddings().weight
    key = next(name for name, parameter in backbone.named_parameters() if parameter is embeddings)
    # The pad token's row: padding sits after the pooled token, where a causal model never looks.
    extra_rows = config.vocab_size - embeddings.shape[0]
    state[key] = torch.cat([embeddings.detach(), embeddings.new_zeros(extra_rows, embeddings.shape[1])])
    with torch.no_grad():
        getattr(model, model.base_model_prefix).load_state_dict(state, strict=True)
        model.score.weight.copy_(network.head.weight)

    staging = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        model.save_pretrained(str(staging), safe_serialization=True)
        tokenizer.save_pretrained(str(staging))
        if out.exists():
            out.rmdir()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out
