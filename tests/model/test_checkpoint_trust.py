"""A registry is outside input: every tampered checkpoint or pointer is refused with one line."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import orjson
import pytest
import torch
from safetensors.torch import load_file, save_file

from prodcat.errors import CheckpointError
from prodcat.model.checkpoint import (
    CURRENT_FILE,
    MANIFEST_FILE,
    WEIGHTS_FILE,
    WEIGHTS_INDEX_FILE,
    check_same_labels,
    file_sha256,
    load_manifest,
    resolve,
    verify,
)
from prodcat.model.classifier import ProductClassifier
from prodcat.model.tokenizer import load_tokenizer
from prodcat.trainer.publish import HISTORY_FILE, promote, rollback
from tests.cli_runner import run_cli


@pytest.fixture
def registry(trained_registry: Path, tmp_path: Path) -> Path:
    """A private copy of the session's registry, to tamper with."""
    return Path(shutil.copytree(trained_registry, tmp_path / "registry"))


@pytest.fixture
def model_dir(registry: Path) -> Path:
    (model,) = (p for p in registry.iterdir() if p.is_dir())
    return model


@pytest.fixture
def checkpoint(model_dir: Path) -> Path:
    return resolve(model_dir)


@pytest.fixture
def outside(checkpoint: Path, tmp_path: Path) -> Path:
    """A complete, valid copy of the checkpoint outside the registry, where a pointer could lead."""
    return Path(shutil.copytree(checkpoint, tmp_path / "outside" / "ckpt"))


def manifest_files(checkpoint: Path) -> dict[str, str]:
    return dict(orjson.loads((checkpoint / MANIFEST_FILE).read_bytes())["files"])


def write_files(checkpoint: Path, files: dict[str, str]) -> None:
    manifest = orjson.loads((checkpoint / MANIFEST_FILE).read_bytes())
    (checkpoint / MANIFEST_FILE).write_bytes(orjson.dumps({**manifest, "files": files}))


def relist(checkpoint: Path, *relative: str) -> None:
    """Updates the manifest's sha256 of files changed in place, as a careful tamperer would."""
    write_files(
        checkpoint, {**manifest_files(checkpoint), **{r: file_sha256(checkpoint / r) for r in relative}}
    )


def test_a_published_checkpoint_verifies(checkpoint: Path) -> None:
    assert verify(checkpoint).manifest == load_manifest(checkpoint)


def test_a_manifest_path_climbing_out_of_the_checkpoint_is_refused(checkpoint: Path) -> None:
    escape = "../../etc/passwd"
    target = (checkpoint / escape).resolve()
    target.parent.mkdir(parents=True)
    target.write_text("root:x:0:0\n")
    write_files(checkpoint, {**manifest_files(checkpoint), escape: file_sha256(target)})

    with pytest.raises(CheckpointError, match=r"files: .*'\.\./\.\./etc/passwd' is not a relative path"):
        verify(checkpoint)


def test_an_absolute_manifest_path_is_refused(checkpoint: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    target.write_text("{}")
    write_files(checkpoint, {**manifest_files(checkpoint), str(target): file_sha256(target)})

    with pytest.raises(CheckpointError, match="is not a relative path inside the checkpoint"):
        verify(checkpoint)


def test_an_empty_files_map_is_refused(checkpoint: Path) -> None:
    write_files(checkpoint, {})
    with pytest.raises(CheckpointError, match="not listed in its manifest"):
        verify(checkpoint)


def test_a_file_the_loader_opens_must_be_listed_even_when_absent(checkpoint: Path) -> None:
    files = manifest_files(checkpoint)
    del files["tokenizer_config.json"]
    (checkpoint / "tokenizer_config.json").unlink()
    write_files(checkpoint, files)

    with pytest.raises(CheckpointError, match=r"does not list tokenizer_config\.json"):
        verify(checkpoint)


def test_an_unlisted_tokenizer_file_is_refused(checkpoint: Path) -> None:
    (checkpoint / "special_tokens_map.json").write_text('{"pad_token": "<|im_start|>"}')
    with pytest.raises(CheckpointError, match=r"special_tokens_map\.json not listed in its manifest"):
        verify(checkpoint)


def test_a_listed_symlink_leading_out_of_the_checkpoint_is_refused(checkpoint: Path, outside: Path) -> None:
    # Same bytes, so the sha256 still matches: only the link's target gives it away.
    (checkpoint / "tokenizer.json").unlink()
    (checkpoint / "tokenizer.json").symlink_to(outside / "tokenizer.json")

    with pytest.raises(CheckpointError, match=r"tokenizer\.json is a link to .*, outside the checkpoint"):
        verify(checkpoint)


def test_pickle_weights_are_refused_even_when_listed_and_verified(checkpoint: Path) -> None:
    torch.save(load_file(str(checkpoint / WEIGHTS_FILE)), checkpoint / "pytorch_model.bin")
    relist(checkpoint, "pytorch_model.bin")

    with pytest.raises(CheckpointError, match=r"pickle-format weights \(pytorch_model\.bin\)"):
        verify(checkpoint)


def test_pickle_weights_are_refused_before_the_manifest_is_read(checkpoint: Path) -> None:
    torch.save({}, checkpoint / "pytorch_model.bin")
    (checkpoint / MANIFEST_FILE).write_text("not json")

    with pytest.raises(CheckpointError, match="pickle-format weights"):
        verify(checkpoint)


def test_an_adapter_config_beside_the_weights_is_refused(checkpoint: Path) -> None:
    (checkpoint / "adapter_config.json").write_text('{"base_model_name_or_path": "someone/else"}')
    relist(checkpoint, "adapter_config.json")

    with pytest.raises(CheckpointError, match=r"adapter_config\.json beside its weights"):
        verify(checkpoint)


def test_a_weight_index_naming_a_shard_outside_the_checkpoint_is_refused(
    checkpoint: Path, outside: Path
) -> None:
    tensors = load_file(str(checkpoint / WEIGHTS_FILE))
    shard = "../../../outside/ckpt/model.safetensors"
    (checkpoint / WEIGHTS_FILE).unlink()
    (checkpoint / WEIGHTS_INDEX_FILE).write_bytes(
        orjson.dumps({"metadata": {}, "weight_map": dict.fromkeys(tensors, shard)})
    )
    files = {k: v for k, v in manifest_files(checkpoint).items() if k != WEIGHTS_FILE}
    write_files(checkpoint, {**files, WEIGHTS_INDEX_FILE: file_sha256(checkpoint / WEIGHTS_INDEX_FILE)})

    with pytest.raises(CheckpointError, match="names shards its manifest does not list"):
        verify(checkpoint)


@pytest.mark.parametrize("pointer", ["../../outside/ckpt", "/outside/ckpt", ".tmp-ckpt", "a\\b", "v1/.."])
def test_current_must_name_a_plain_version(model_dir: Path, registry: Path, pointer: str) -> None:
    (model_dir / CURRENT_FILE).write_text(pointer + "\n")
    with pytest.raises(CheckpointError, match=re.escape(f"CURRENT names invalid version {pointer!r}")):
        resolve(registry)


def test_current_escaping_the_registry_is_refused_though_a_checkpoint_waits_there(
    model_dir: Path, registry: Path, outside: Path
) -> None:
    assert (model_dir / "../../outside/ckpt").resolve() == outside.resolve()
    (model_dir / CURRENT_FILE).write_text("../../outside/ckpt\n")
    with pytest.raises(CheckpointError, match="invalid version"):
        resolve(registry)


def test_a_version_directory_linked_out_of_the_model_folder_is_refused(
    model_dir: Path, registry: Path, outside: Path
) -> None:
    (model_dir / "linked").symlink_to(outside, target_is_directory=True)
    (model_dir / CURRENT_FILE).write_text("linked\n")

    with pytest.raises(CheckpointError, match="leads outside"):
        resolve(registry)


def test_rollback_refuses_a_history_line_escaping_the_model_folder(
    model_dir: Path, registry: Path, checkpoint: Path, outside: Path
) -> None:
    (model_dir / HISTORY_FILE).write_text(f"../../outside/ckpt\n{checkpoint.name}\n")
    with pytest.raises(CheckpointError, match=r"HISTORY names invalid version '\.\./\.\./outside/ckpt'"):
        rollback(registry, model_dir.name)


def test_promote_refuses_a_history_line_escaping_the_model_folder(
    model_dir: Path, registry: Path, checkpoint: Path
) -> None:
    (model_dir / HISTORY_FILE).write_text("../../outside/ckpt\n")
    with pytest.raises(CheckpointError, match=r"HISTORY names invalid version '\.\./\.\./outside/ckpt'"):
        promote(registry, model_dir.name, checkpoint.name)


def test_truncated_weights_with_a_matching_sha_fail_to_load_as_one_line(checkpoint: Path) -> None:
    weights = checkpoint / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    relist(checkpoint, WEIGHTS_FILE)
    verify(checkpoint)

    with pytest.raises(CheckpointError, match="the backbone does not load") as refused:
        ProductClassifier.load(checkpoint, dtype=torch.float32)
    assert "\n" not in str(refused.value)


def test_weights_missing_a_tensor_are_refused_rather_than_randomly_filled(checkpoint: Path) -> None:
    weights = checkpoint / WEIGHTS_FILE
    tensors = load_file(str(weights))
    dropped = sorted(tensors)[0]
    save_file({k: v for k, v in tensors.items() if k != dropped}, str(weights))
    relist(checkpoint, WEIGHTS_FILE)

    with pytest.raises(CheckpointError, match=re.escape(f"lacks 1 backbone weights (first: {dropped})")):
        ProductClassifier.load(checkpoint, dtype=torch.float32)


def test_a_corrupt_config_fails_to_load_as_one_line(checkpoint: Path) -> None:
    (checkpoint / "config.json").write_text('{"model_type": ')
    relist(checkpoint, "config.json")

    with pytest.raises(CheckpointError, match="the backbone does not load"):
        ProductClassifier.load(checkpoint, dtype=torch.float32)


def test_a_truncated_head_fails_to_load_as_one_line(checkpoint: Path) -> None:
    head = checkpoint / "head.safetensors"
    head.write_bytes(head.read_bytes()[:-8])
    relist(checkpoint, "head.safetensors")

    with pytest.raises(CheckpointError, match=r"head\.safetensors does not load"):
        ProductClassifier.load(checkpoint, dtype=torch.float32)


def test_a_corrupt_tokenizer_fails_to_load_as_one_line(checkpoint: Path) -> None:
    tokenizer = checkpoint / "tokenizer.json"
    tokenizer.write_bytes(tokenizer.read_bytes()[:100])
    relist(checkpoint, "tokenizer.json")

    with pytest.raises(CheckpointError, match="the tokenizer does not load") as refused:
        load_tokenizer(verify(checkpoint))
    assert "\n" not in str(refused.value)


def test_a_renamed_label_is_refused_on_reload(checkpoint: Path) -> None:
    serving = load_manifest(checkpoint)
    renamed = serving.model_copy(update={"labels": ["Renamed", *serving.labels[1:]]})

    change = f"(added Renamed; removed {serving.labels[0]}): a label change needs a deliberate restart"
    with pytest.raises(CheckpointError, match=re.escape(change)):
        check_same_labels(serving, renamed)


def test_the_cli_reports_weights_that_do_not_load_in_one_line(
    capsys: pytest.CaptureFixture[str], registry: Path, checkpoint: Path, corpus: Path, tmp_path: Path
) -> None:
    weights = checkpoint / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:64])
    relist(checkpoint, WEIGHTS_FILE)

    code, err = run_cli(
        capsys,
        "evaluate",
        "--checkpoint",
        str(registry),
        "--data",
        str(corpus),
        "--out",
        str(tmp_path / "report"),
    )
    assert code == 1
    assert err.strip().splitlines() == [err.strip()] and "the backbone does not load" in err


def test_the_cli_reports_a_current_escaping_the_registry_in_one_line(
    capsys: pytest.CaptureFixture[str], registry: Path, model_dir: Path, outside: Path
) -> None:
    (model_dir / CURRENT_FILE).write_text("../../outside/ckpt\n")

    code, err = run_cli(
        capsys, "registry", "list", "--registry", str(registry), "--model-name", model_dir.name
    )
    assert code == 1
    assert err.strip().splitlines() == [err.strip()] and "invalid version '../../outside/ckpt'" in err


def test_sharded_weights_verify_and_load_when_every_shard_is_listed(checkpoint: Path) -> None:
    reference = ProductClassifier.load(checkpoint, dtype=torch.float32)
    (checkpoint / WEIGHTS_FILE).unlink()
    reference.backbone.save_pretrained(str(checkpoint), max_shard_size="200KB")
    shards = sorted(p.name for p in checkpoint.glob("model-*.safetensors"))
    relist(checkpoint, "config.json", WEIGHTS_INDEX_FILE, *shards)
    write_files(checkpoint, {k: v for k, v in manifest_files(checkpoint).items() if k != WEIGHTS_FILE})

    loaded = ProductClassifier.load(verify(checkpoint).directory, dtype=torch.float32)
    assert len(shards) > 1
    torch.testing.assert_close(loaded.state_dict(), reference.state_dict())
