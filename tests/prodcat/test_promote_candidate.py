"""`prodcat registry promote --candidate`: a candidate goes live only when its shadow summaries pass."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from prodcat.cli import main
from prodcat.consumer.shadow import write_summary
from prodcat.model.checkpoint import read_current
from prodcat.model.registry import open_registry
from prodcat.schemas.shadow import LiveJudgement, ShadowSummary
from tests.cli_runner import run_cli

MODEL = "product-categorizer"
NOON = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
GATE = ("--min-agreement", "0.8", "--min-live-accuracy-gain", "0.01", "--min-judged", "100")


@pytest.fixture
def registry(trained_registry: Path, tmp_path: Path) -> Path:
    """The session's registry, copied, with its one checkpoint also published as `v2`."""
    copy = Path(shutil.copytree(trained_registry, tmp_path / "registry"))
    model_dir = copy / MODEL
    shutil.copytree(model_dir / read_current(model_dir), model_dir / "v2")
    return copy


def report(registry: Path, *, member: str, agreed: int, candidate_correct: int) -> None:
    model_dir = registry / MODEL
    write_summary(
        open_registry(registry),
        MODEL,
        ShadowSummary(
            model_name=MODEL,
            serving_version=read_current(model_dir),
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
        ),
    )


def promote(capsys: pytest.CaptureFixture[str], registry: Path, *args: str) -> tuple[int, str]:
    return run_cli(capsys, "registry", "promote", "--registry", str(registry), *args)


def test_a_candidate_whose_members_pass_the_gate_becomes_current(
    registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report(registry, member="g.a.0", agreed=450, candidate_correct=90)
    report(registry, member="g.b.0", agreed=430, candidate_correct=85)
    code, err = promote(capsys, registry, "--candidate", "v2", *GATE)
    assert (code, err, read_current(registry / MODEL)) == (0, "", "v2")


def test_a_refused_candidate_is_one_line_and_current_stays(
    registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    serving = read_current(registry / MODEL)
    report(registry, member="g.a.0", agreed=300, candidate_correct=90)
    code, err = promote(capsys, registry, "--candidate", "v2", *GATE)
    assert (code, read_current(registry / MODEL)) == (1, serving)
    assert err == (
        "prodcat: error: v2 not promoted: agreement 0.6000 is below --min-agreement 0.8 on 500 events\n"
    )


def test_a_candidate_no_consumer_reported_on_is_refused(
    registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = promote(capsys, registry, "--candidate", "v2", *GATE)
    assert code == 1 and err.startswith("prodcat: error: v2 not promoted: no shadow summary of v2")


def test_a_dry_run_says_what_the_gate_decides_and_moves_nothing(
    registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    serving = read_current(registry / MODEL)
    report(registry, member="g.a.0", agreed=450, candidate_correct=90)
    code = main(["registry", "promote", "--registry", str(registry), "--candidate", "v2", "--dry-run", *GATE])
    out = capsys.readouterr().out
    assert (code, read_current(registry / MODEL)) == (0, serving)
    assert out.startswith("v2: would promote (agreement 0.9000 on 500 events; live accuracy 0.8000 -> 0.9000")


def test_a_dry_run_of_a_refused_candidate_names_the_refusals(
    registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report(registry, member="g.a.0", agreed=450, candidate_correct=80)
    code = main(["registry", "promote", "--registry", str(registry), "--candidate", "v2", "--dry-run", *GATE])
    assert (code, capsys.readouterr().out.split(" (")[0]) == (
        0,
        "v2: would refuse: live accuracy gain +0.0000",
    )


def test_the_decision_as_json_carries_the_evidence(
    registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report(registry, member="g.a.0", agreed=450, candidate_correct=90)
    report(registry, member="g.b.0", agreed=400, candidate_correct=70)
    args = ["registry", "promote", "--registry", str(registry), "--candidate", "v2", "--json", *GATE]
    code = main(args)
    decision = orjson.loads(capsys.readouterr().out)
    assert code == 1
    assert {k: decision[k] for k in ("passes", "promoted", "members", "compared", "judged")} == {
        "passes": False,
        "promoted": False,
        "members": 2,
        "compared": 1000,
        "judged": 200,
    }
    assert (decision["agreement"], decision["candidate_accuracy"]) == (0.85, 0.8)


def test_a_plain_promote_still_moves_current_without_a_gate(
    registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = promote(capsys, registry, "v2")
    assert (code, read_current(registry / MODEL)) == (0, "v2")


def test_a_version_and_a_candidate_together_are_refused(
    registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = promote(capsys, registry, "v2", "--candidate", "v2")
    assert code == 2 and "either as VERSION or as --candidate" in err


def test_gate_flags_without_a_candidate_are_refused(
    registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = promote(capsys, registry, "v2", "--dry-run")
    assert code == 2 and "go with --candidate" in err


def test_promote_without_a_version_says_what_to_name(
    registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = promote(capsys, registry)
    assert code == 2 and "name the version to promote" in err
