"""The registry's CANDIDATE: published beside CURRENT, judged through shadow summaries in the
registry (local and on S3, moto's server over HTTP), cleared when it is promoted."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from transformers import AutoTokenizer

from prodcat.consumer.shadow import write_summary
from prodcat.errors import CheckpointError
from prodcat.model.checkpoint import resolve
from prodcat.model.classifier import ProductClassifier
from prodcat.model.registry import Registry, open_registry
from prodcat.schemas.labels import DEFAULT_CATEGORIES
from prodcat.schemas.manifest import TrainingRecipe
from prodcat.schemas.shadow import LiveJudgement, ShadowSummary
from prodcat.trainer.promotion import read_summaries
from prodcat.trainer.publish import promote, publish
from prodcat.trainer.records import write_jsonl
from prodcat.trainer.sample_corpus import generate
from tests.cli_runner import run_cli, run_cli_output
from tests.s3 import S3Registry, upload_version

MODEL = "product-categorizer"
NOON = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
GATE = ("--min-agreement", "0.8", "--min-live-accuracy-gain", "0.01", "--min-judged", "100")
RECIPE = TrainingRecipe(
    method="full",
    learning_rate=1e-3,
    epochs=1.0,
    batch_size=32,
    seed=0,
    train_examples=20,
    validation_examples=4,
)


@pytest.fixture
def local(trained_registry: Path, tmp_path: Path) -> Registry:
    """A copy of the session's registry: its one version CURRENT, the same checkpoint also as `v2`."""
    copy = Path(shutil.copytree(trained_registry, tmp_path / "registry"))
    shutil.copytree(resolve(copy / MODEL), copy / MODEL / "v2")
    return open_registry(copy)


@pytest.fixture
def s3(s3_registry: S3Registry, trained_registry: Path, tmp_path: Path) -> Registry:
    """v1 CURRENT and v2 CANDIDATE on S3."""
    registry = s3_registry.open()
    for version in ("v1", "v2"):
        upload_version(registry, resolve(trained_registry), MODEL, version, tmp_path)
    registry.move(MODEL, ["v1"], read_as=None, action="promote")
    registry.set_candidate(MODEL, "v2")
    return registry


def summary(serving: str, *, member: str, agreed: int, candidate_correct: int) -> ShadowSummary:
    return ShadowSummary(
        model_name=MODEL,
        serving_version=serving,
        candidate_version="v2",
        member=member,
        started_at=NOON,
        updated_at=NOON,
        fraction=0.25,
        window=1000,
        batches_seen=40,
        batches_sampled=10,
        compared=500,
        agreed=agreed,
        confidence_shift_sum=5.0,
        live=LiveJudgement(judged=100, serving_correct=80, candidate_correct=candidate_correct),
    )


def test_publishing_as_candidate_leaves_current_and_points_candidate_at_the_new_version(
    local: Registry, tiny_base: Path
) -> None:
    serving = local.current(MODEL).version
    published = publish(
        ProductClassifier.from_base(tiny_base, len(DEFAULT_CATEGORIES)),
        AutoTokenizer.from_pretrained(tiny_base),
        registry=local,
        model_name=MODEL,
        base_model="tiny-base",
        labels=DEFAULT_CATEGORIES,
        max_length=64,
        instruction=None,
        recipe=RECIPE,
        metrics={"macro_f1": 0.5},
        version="v3",
        as_candidate=True,
    )
    pointer = local.candidate(MODEL)
    assert (published.name, local.current(MODEL).version, local.history(MODEL)[0]) == (
        "v3",
        serving,
        [serving],
    )
    assert pointer is not None and pointer.version == "v3"


def test_train_as_candidate_publishes_a_version_that_current_does_not_name(
    local: Registry, tiny_base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    serving = local.current(MODEL).version
    data = tmp_path / "titles.jsonl"
    write_jsonl(generate(per_class=8, seed=5), data)
    code, out, _ = run_cli_output(
        capsys,
        "train",
        "--data",
        str(data),
        "--base-model",
        str(tiny_base),
        "--registry",
        local.uri,
        "--full-finetune",
        "--candidate",
    )
    pointer = local.candidate(MODEL)
    assert (code, local.current(MODEL).version) == (0, serving)
    assert pointer is not None and pointer.version not in (serving, "v2")
    assert f"{pointer.version} as CANDIDATE (CURRENT unchanged)" in out


def test_a_registry_without_a_candidate_names_none(local: Registry) -> None:
    assert local.candidate(MODEL) is None


def test_a_candidate_must_be_a_published_version(local: Registry) -> None:
    with pytest.raises(CheckpointError, match="has no version 'v9'"):
        local.set_candidate(MODEL, "v9")


def test_promoting_the_candidate_clears_it(local: Registry) -> None:
    local.set_candidate(MODEL, "v2")
    promote(local, MODEL, "v2")
    assert (local.current(MODEL).version, local.candidate(MODEL)) == ("v2", None)


def test_promoting_another_version_leaves_the_candidate(local: Registry) -> None:
    serving = local.current(MODEL).version
    local.set_candidate(MODEL, "v2")
    promote(local, MODEL, serving)
    pointer = local.candidate(MODEL)
    assert pointer is not None and pointer.version == "v2"


def test_registry_list_marks_the_candidate(local: Registry, capsys: pytest.CaptureFixture[str]) -> None:
    serving = local.current(MODEL).version
    local.set_candidate(MODEL, "v2")
    code, out, _ = run_cli_output(capsys, "registry", "list", "--registry", local.uri)
    marks = {line[2:].split()[0]: line[0] for line in out.splitlines()}
    assert (code, marks) == (0, {serving: "*", "v2": "c"})


def test_registry_list_as_json_names_the_candidate(
    local: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    local.set_candidate(MODEL, "v2")
    code, out, _ = run_cli_output(capsys, "registry", "list", "--registry", local.uri, "--json")
    assert (code, orjson.loads(out)["candidate"]) == (0, "v2")


def test_summaries_of_two_members_on_s3_are_read_back(s3: Registry) -> None:
    for member in ("g.a.0", "g.b.0"):
        write_summary(s3, MODEL, summary("v1", member=member, agreed=450, candidate_correct=90))
    assert sorted(s.member for s in read_summaries(s3, MODEL, "v2")) == ["g.a.0", "g.b.0"]


def test_promote_candidate_on_s3_promotes_when_the_gate_passes_and_clears_candidate(
    s3: Registry, s3_registry: S3Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    write_summary(s3, MODEL, summary("v1", member="g.a.0", agreed=450, candidate_correct=90))
    write_summary(s3, MODEL, summary("v1", member="g.b.0", agreed=430, candidate_correct=85))
    code, err = run_cli(
        capsys, "registry", "promote", "--registry", s3_registry.uri, "--candidate", "v2", *GATE
    )
    assert (code, err, s3.current(MODEL).version, s3.candidate(MODEL)) == (0, "", "v2", None)


def test_promote_candidate_on_s3_refuses_with_one_line_when_the_gate_fails(
    s3: Registry, s3_registry: S3Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    write_summary(s3, MODEL, summary("v1", member="g.a.0", agreed=300, candidate_correct=90))
    code, err = run_cli(
        capsys, "registry", "promote", "--registry", s3_registry.uri, "--candidate", "v2", *GATE
    )
    pointer = s3.candidate(MODEL)
    assert (code, s3.current(MODEL).version) == (1, "v1")
    assert pointer is not None and pointer.version == "v2"
    assert err == (
        "prodcat: error: v2 not promoted: agreement 0.6000 is below --min-agreement 0.8 on 500 events\n"
    )
