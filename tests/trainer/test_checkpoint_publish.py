from __future__ import annotations

import stat
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version as installed_version
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from prodcat.errors import CheckpointError
from prodcat.model.checkpoint import MANIFEST_FILE, read_current, resolve, verify
from prodcat.model.classifier import ProductClassifier
from prodcat.model.registry import open_registry
from prodcat.model.store import WriteConflict
from prodcat.schemas.labels import DEFAULT_CATEGORIES
from prodcat.schemas.manifest import TrainingRecipe
from prodcat.trainer import publish as publish_module
from prodcat.trainer.publish import library_versions, list_versions, promote, publish, rollback

MODEL_NAME = "product-categorizer"
RECIPE = TrainingRecipe(
    method="full",
    learning_rate=1e-3,
    epochs=1.0,
    batch_size=32,
    seed=0,
    train_examples=20,
    validation_examples=4,
)

Publish = Callable[..., Path]


class FrozenDatetime(datetime):
    @classmethod
    def now(cls, tz: object = None) -> FrozenDatetime:
        return cls(2026, 11, 22, 9, 1, 2, tzinfo=UTC)


@pytest.fixture(scope="module")
def model(tiny_base: Path) -> ProductClassifier:
    return ProductClassifier.from_base(tiny_base, len(DEFAULT_CATEGORIES))


@pytest.fixture(scope="module")
def tokenizer(tiny_base: Path) -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(tiny_base)


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    return tmp_path / "registry"


@pytest.fixture
def publish_one(model: ProductClassifier, tokenizer: PreTrainedTokenizerBase, registry: Path) -> Publish:
    def run(version: str | None = None, labels: tuple[str, ...] = DEFAULT_CATEGORIES) -> Path:
        return publish(
            model,
            tokenizer,
            registry=registry,
            model_name=MODEL_NAME,
            base_model="tiny-base",
            labels=labels,
            max_length=64,
            instruction=None,
            recipe=RECIPE,
            metrics={"macro_f1": 0.5},
            version=version,
        )

    return run


def test_published_checkpoint_is_what_the_consumer_resolves(publish_one: Publish, registry: Path) -> None:
    publish_one("v1")
    checkpoint = publish_one("v2")
    assert resolve(registry, MODEL_NAME) == checkpoint


def test_manifest_hashes_every_file_of_the_checkpoint(publish_one: Publish) -> None:
    checkpoint = publish_one()
    on_disk = {p.relative_to(checkpoint).as_posix() for p in checkpoint.rglob("*") if p.is_file()}
    assert set(verify(checkpoint).manifest.files) == on_disk - {MANIFEST_FILE}


def test_published_files_are_readable_by_other_users(publish_one: Publish) -> None:
    checkpoint = publish_one()
    unreadable = [p.name for p in checkpoint.iterdir() if not p.stat().st_mode & stat.S_IROTH]
    assert unreadable == []


def test_manifest_records_the_library_versions(publish_one: Publish) -> None:
    manifest = verify(publish_one()).manifest
    assert set(manifest.library_versions) == {"torch", "transformers", "peft", "tokenizers"}


def test_a_library_that_is_not_installed_is_left_out_of_the_recorded_versions() -> None:
    # As peft is after a full fine-tune in an install without the `train` extra.
    assert library_versions(("torch", "no-such-distribution")) == {"torch": installed_version("torch")}


def test_published_weights_are_stored_in_the_manifest_dtype(publish_one: Publish) -> None:
    checkpoint = publish_one()
    dtypes = set()
    for path in checkpoint.glob("*.safetensors"):
        with safe_open(str(path), "pt") as weights:
            # A safe_open handle is not iterable; keys() is its only listing.
            dtypes.update(weights.get_tensor(name).dtype for name in weights.keys())  # noqa: SIM118
    assert (verify(checkpoint).manifest.dtype, dtypes) == ("float16", {torch.float16})


def test_publish_leaves_the_callers_model_in_full_precision(
    publish_one: Publish, model: ProductClassifier
) -> None:
    publish_one()
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_default_version_is_the_utc_time_of_publishing(
    publish_one: Publish, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publish_module, "datetime", FrozenDatetime)
    assert publish_one().name == "20261122T090102Z"


def test_default_version_gets_a_suffix_when_its_timestamp_is_taken(
    publish_one: Publish, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publish_module, "datetime", FrozenDatetime)
    publish_one()
    assert publish_one().name == "20261122T090102Z-2"


def test_publish_refuses_to_overwrite_a_version(publish_one: Publish) -> None:
    publish_one("v1")
    with pytest.raises(CheckpointError, match="already exists"):
        publish_one("v1")


def test_publish_rejects_a_version_that_names_another_path(publish_one: Publish) -> None:
    with pytest.raises(CheckpointError, match="invalid version"):
        publish_one("../elsewhere")


def test_failed_publish_leaves_no_trace_and_keeps_current(publish_one: Publish, registry: Path) -> None:
    publish_one("v1")
    with pytest.raises(ValueError, match="labels"):
        publish_one("v2", labels=("Books",))
    assert sorted(p.name for p in (registry / MODEL_NAME).iterdir()) == ["CURRENT", "HISTORY", "v1"]
    assert read_current(registry / MODEL_NAME) == "v1"


def test_tampered_file_fails_verification(publish_one: Publish) -> None:
    checkpoint = publish_one()
    head = checkpoint / "head.safetensors"
    data = bytearray(head.read_bytes())
    data[-1] ^= 0xFF
    head.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"head\.safetensors fails its sha256 check"):
        verify(checkpoint)


def test_promote_points_current_at_an_earlier_version(publish_one: Publish, registry: Path) -> None:
    publish_one("v1")
    publish_one("v2")
    promote(registry, MODEL_NAME, "v1")
    assert read_current(registry / MODEL_NAME) == "v1"


def test_promote_rejects_an_unknown_version(publish_one: Publish, registry: Path) -> None:
    publish_one("v1")
    with pytest.raises(CheckpointError, match="no version 'v9'"):
        promote(registry, MODEL_NAME, "v9")


def test_promote_rejects_a_version_that_fails_verification(publish_one: Publish, registry: Path) -> None:
    (publish_one("v1") / "head.safetensors").write_bytes(b"tampered")
    publish_one("v2")
    with pytest.raises(CheckpointError, match="sha256"):
        promote(registry, MODEL_NAME, "v1")


def test_list_versions_names_published_versions_only(publish_one: Publish, registry: Path) -> None:
    publish_one("v2")
    publish_one("v1")
    (registry / MODEL_NAME / ".tmp-v3").mkdir()
    assert list_versions(registry, MODEL_NAME) == ["v1", "v2"]


def test_rollback_returns_to_the_version_live_before_the_current_one(
    publish_one: Publish, registry: Path
) -> None:
    for version in ("v1", "v2", "v3"):
        publish_one(version)
    promote(registry, MODEL_NAME, "v1")
    assert rollback(registry, MODEL_NAME) == "v3"
    assert read_current(registry / MODEL_NAME) == "v3"


def test_a_second_rollback_goes_further_back(publish_one: Publish, registry: Path) -> None:
    for version in ("v1", "v2", "v3"):
        publish_one(version)
    rollback(registry, MODEL_NAME)
    assert rollback(registry, MODEL_NAME) == "v1"


def test_rollback_with_no_earlier_live_version_is_refused(publish_one: Publish, registry: Path) -> None:
    publish_one("v1")
    with pytest.raises(CheckpointError, match="no earlier live version"):
        rollback(registry, MODEL_NAME)


def test_of_two_local_promotes_that_read_the_same_history_the_second_changes_nothing(
    publish_one: Publish, registry: Path
) -> None:
    publish_one("v1")
    publish_one("v2")
    local = open_registry(registry)
    history, tag = local.history(MODEL_NAME)
    local.move(MODEL_NAME, [*history, "v1"], read_as=tag, action="promote")

    with pytest.raises(WriteConflict, match="another promote or rollback won"):
        local.move(MODEL_NAME, [*history, "v2"], read_as=tag, action="promote")
    assert read_current(registry / MODEL_NAME) == "v1"
