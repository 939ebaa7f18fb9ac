"""A registry on S3, against moto's server over HTTP: publish, pointers, downloads, conflicts."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import obstore
import pytest
from obstore.store import S3Store
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from prodcat.cli import main
from prodcat.errors import CheckpointError, ConfigError
from prodcat.model.checkpoint import HEAD_FILE, verify
from prodcat.model.classifier import ProductClassifier
from prodcat.model.loading import load_model
from prodcat.model.registry import Registry, open_registry
from prodcat.model.store import StoreUnavailable, WriteConflict
from prodcat.schemas.labels import DEFAULT_CATEGORIES
from prodcat.schemas.manifest import TrainingRecipe
from prodcat.trainer.publish import list_versions, promote, publish, rollback
from prodcat.trainer.records import write_jsonl
from prodcat.trainer.sample_corpus import generate
from prodcat.trainer.train import TrainConfig, train
from tests.cli_runner import run_cli
from tests.s3 import S3Registry

MODEL = "product-categorizer"
RECIPE = TrainingRecipe(
    method="full",
    learning_rate=1e-3,
    epochs=1.0,
    batch_size=32,
    seed=0,
    train_examples=20,
    validation_examples=4,
)


@pytest.fixture(scope="module")
def model(tiny_base: Path) -> ProductClassifier:
    return ProductClassifier.from_base(tiny_base, len(DEFAULT_CATEGORIES))


@pytest.fixture(scope="module")
def tokenizer(tiny_base: Path) -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(tiny_base)


def publish_to(
    registry: str, model: ProductClassifier, tokenizer: PreTrainedTokenizerBase, version: str, cache: Path
) -> Path:
    return publish(
        model,
        tokenizer,
        registry=registry,
        model_name=MODEL,
        base_model="tiny-base",
        labels=DEFAULT_CATEGORIES,
        max_length=64,
        instruction=None,
        recipe=RECIPE,
        metrics={"macro_f1": 0.5},
        version=version,
        cache=cache,
    )


@pytest.fixture
def published(
    s3_registry: S3Registry, model: ProductClassifier, tokenizer: PreTrainedTokenizerBase, tmp_path: Path
) -> Registry:
    """v1, v2 and v3 published in that order (v3 CURRENT)."""
    for version in ("v1", "v2", "v3"):
        publish_to(s3_registry.uri, model, tokenizer, version, tmp_path / "trainer-cache")
    return s3_registry.open()


def bucket_of(s3_registry: S3Registry) -> S3Store:
    bucket = s3_registry.uri.removeprefix("s3://").split("/")[0]
    return S3Store(bucket, client_options={"allow_http": True})


def test_a_published_version_is_current_and_downloads_as_exactly_its_manifest(
    published: Registry, tmp_path: Path
) -> None:
    directory = published.fetch(MODEL, published.current(MODEL).version, tmp_path / "cache")

    assert published.current(MODEL).version == "v3"
    assert published.versions(MODEL) == ["v1", "v2", "v3"]
    assert verify(directory).manifest.version == "v3"


def test_train_publishes_to_s3_and_a_consumer_loads_it_through_the_gate(
    s3_registry: S3Registry, tiny_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    data = tmp_path / "titles.jsonl"
    write_jsonl(generate(per_class=20, seed=5), data)
    config = TrainConfig(
        data=data, base_model=str(tiny_base), registry=s3_registry.uri, full_finetune=True, progress=False
    )

    result = train(config)
    served = load_model(s3_registry.uri, device="cpu", min_agreement=0.9, cache=tmp_path / "consumer")

    assert s3_registry.open().current(MODEL).version == result.version
    assert (served.version, served.checkpoint.directory) == (
        result.version,
        tmp_path / "consumer" / MODEL / result.version,
    )


def test_a_version_is_never_overwritten(
    s3_registry: S3Registry, model: ProductClassifier, tokenizer: PreTrainedTokenizerBase, tmp_path: Path
) -> None:
    publish_to(s3_registry.uri, model, tokenizer, "v1", tmp_path)
    with pytest.raises(CheckpointError, match="already exists"):
        publish_to(s3_registry.uri, model, tokenizer, "v1", tmp_path)


def test_a_publish_cut_off_part_way_leaves_no_version_a_reader_would_see(
    s3_registry: S3Registry, model: ProductClassifier, tokenizer: PreTrainedTokenizerBase, tmp_path: Path
) -> None:
    s3_registry.outage.cut_requests_for(f"/v1/{HEAD_FILE}".encode())
    with pytest.raises(StoreUnavailable):
        publish_to(s3_registry.uri, model, tokenizer, "v1", tmp_path)
    s3_registry.outage.cut_requests_for(None)
    registry = s3_registry.open()

    assert registry.versions(MODEL) == []
    assert registry.current_tag(MODEL) is None


def test_a_version_whose_manifest_is_not_written_yet_is_not_listed(
    published: Registry, s3_registry: S3Registry
) -> None:
    obstore.put(bucket_of(s3_registry), "registry/product-categorizer/v4/config.json", b"{}")

    assert list_versions(published, MODEL) == ["v1", "v2", "v3"]


def test_promote_and_rollback_move_current_and_history(published: Registry) -> None:
    promote(published, MODEL, "v1")
    assert published.current(MODEL).version == "v1"
    assert rollback(published, MODEL) == "v3"
    assert published.current(MODEL).version == "v3"
    assert published.history(MODEL)[0] == ["v2", "v3"]  # the rolled-back version leaves it


def test_of_two_promotes_that_read_the_same_history_one_wins_and_the_other_changes_nothing(
    published: Registry, s3_registry: S3Registry
) -> None:
    both_read = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def promote_concurrently(version: str) -> None:
        registry = s3_registry.open()
        history, tag = registry.history(MODEL)
        both_read.wait()
        try:
            registry.move(MODEL, [*history, version], read_as=tag, action="promote")
            outcomes[version] = "won"
        except WriteConflict as exc:
            outcomes[version] = str(exc)

    threads = [threading.Thread(target=promote_concurrently, args=(v,)) for v in ("v1", "v2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    winner = next(v for v, outcome in outcomes.items() if outcome == "won")
    loser = next(v for v in outcomes if v != winner)
    assert "(another promote or rollback won); nothing was written" in outcomes[loser]
    assert published.current(MODEL).version == winner
    assert published.history(MODEL)[0] == ["v1", "v2", "v3", winner]


def test_current_is_brought_to_history_when_a_writer_stopped_between_the_two(published: Registry) -> None:
    # A promote that died after writing HISTORY: the next move leaves CURRENT at HISTORY's end.
    history, tag = published.history(MODEL)
    published.store.put_if(f"{MODEL}/HISTORY", b"v1\nv2\nv3\nv1\n", tag=tag)
    history, tag = published.history(MODEL)

    assert published.move(MODEL, [*history, "v2"], read_as=tag, action="promote") == "v2"
    assert published.current(MODEL).version == "v2"


def test_a_tampered_object_is_refused_and_leaves_nothing_in_the_cache(
    published: Registry, s3_registry: S3Registry, tmp_path: Path
) -> None:
    key = f"registry/{MODEL}/v2/{HEAD_FILE}"
    store = bucket_of(s3_registry)
    data = bytearray(obstore.get(store, key).bytes())
    data[-1] ^= 0xFF
    obstore.put(store, key, bytes(data))

    with pytest.raises(CheckpointError, match=r"head\.safetensors fails its sha256 check"):
        published.fetch(MODEL, "v2", tmp_path / "cache")
    assert list((tmp_path / "cache" / MODEL).iterdir()) == []


def test_promote_checks_the_stored_objects_not_a_copy_downloaded_before(
    published: Registry, s3_registry: S3Registry, tmp_path: Path
) -> None:
    published.fetch(MODEL, "v1", tmp_path / "cache")
    obstore.put(bucket_of(s3_registry), f"registry/{MODEL}/v1/{HEAD_FILE}", b"tampered")

    with pytest.raises(CheckpointError, match="sha256"):
        promote(published, MODEL, "v1")
    assert published.current(MODEL).version == "v3"


def test_an_unreachable_store_is_a_store_error_within_seconds(
    published: Registry, s3_registry: S3Registry
) -> None:
    s3_registry.outage.down()
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match=r"s3://.*CURRENT"):
        published.current(MODEL)
    assert time.monotonic() - started < 20


def test_registry_commands_take_an_s3_uri(
    published: Registry, s3_registry: S3Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    where = ["--registry", s3_registry.uri]

    assert main(["registry", "promote", "v1", *where]) == 0
    assert main(["registry", "list", *where]) == 0
    assert main(["registry", "rollback", *where]) == 0
    lines = capsys.readouterr().out.splitlines()

    assert lines[0] == f"{MODEL} CURRENT -> v1"
    assert [line[:4] for line in lines[1:4]] == ["* v1", "  v2", "  v3"]
    assert lines[4] == f"{MODEL} CURRENT -> v3"


def test_promote_on_a_store_without_conditional_writes_is_refused_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, error = run_cli(capsys, "registry", "promote", "v1", "--registry", "hf://org/models")

    assert code == 1
    assert error.count("\n") == 1
    assert "cannot promote" in error and "read-only" in error


def test_an_unknown_scheme_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"unsupported scheme ftp://"):
        open_registry("ftp://host/registry")


def test_a_hub_uri_needs_an_org_and_a_repo() -> None:
    with pytest.raises(ConfigError, match=r"expected hf://org/repo or hf://org/repo@revision"):
        open_registry("hf://just-a-name")


def test_a_registry_flag_with_an_unknown_scheme_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, error = run_cli(capsys, "registry", "list", "--registry", "ftp://host/registry")

    assert code == 2
    assert error.count("\n") == 1 and "is not a registry" in error
