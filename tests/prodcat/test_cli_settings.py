"""The command line's settings: bad values get one line and exit code 2; env vars back every option."""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import orjson
import pytest
import structlog

from prodcat.cli import main
from prodcat.cli_service import print_run_summary
from prodcat.consumer.service import RunSummary
from prodcat.scratch import scratch_settings

# The registry is judged with no broker at all: --timeout 0 skips the wait for one.
NO_BROKER_WAIT = ["--timeout", "0"]


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def help_of(capsys: pytest.CaptureFixture[str], *command: str) -> str:
    return run_cli(capsys, *command, "--help")[1]


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(("key", "value"), [("no.such.property", "1"), ("linger.ms", "banana")])
@pytest.mark.parametrize("command", [["consume"], ["produce", __file__], ["dead-letters", "replay"]])
def test_a_kafka_property_librdkafka_rejects_gets_one_line_and_exit_code_2(
    capsys: pytest.CaptureFixture[str], command: list[str], key: str, value: str
) -> None:
    code, _, err = run_cli(capsys, *command, "--kafka", f"{key}={value}")
    assert code == 2
    assert one_line(err).startswith(f"prodcat: error: Kafka property {key}={value}: ")


def test_an_illegal_topic_name_gets_one_line_and_exit_code_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRODCAT_OUTPUT_TOPIC", "enriched products")
    code, _, err = run_cli(capsys, "consume")
    assert code == 2
    assert one_line(err).startswith(
        "prodcat: error: invalid settings: PRODCAT_OUTPUT_TOPIC='enriched products': 'enriched products' "
    )


def test_a_heartbeat_as_long_as_the_session_gets_one_line_and_exit_code_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run_cli(
        capsys, "consume", "--session-timeout-ms", "6000", "--heartbeat-interval-ms", "6000"
    )
    assert code == 2
    assert "must be shorter than session_timeout_ms" in one_line(err)


@pytest.mark.parametrize(
    "argv",
    [
        ["consume", "--max-wait-ms", "inf"],
        ["consume", "--shutdown-timeout-s", "nan"],
        ["dead-letters", "replay", "--idle-s", "inf"],
        ["dataset", "sample", "--out", "x", "--per-class", "inf"],
        ["train", "--data", __file__, "--base-model", "org/model", "--registry", "r", "--epochs", "inf"],
        [
            "train",
            "--data",
            __file__,
            "--base-model",
            "org/model",
            "--registry",
            "r",
            "--lora-dropout",
            "nan",
        ],
    ],
)
def test_a_number_that_is_not_finite_gets_one_line_and_exit_code_2(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    one_line(err)


def test_version_is_the_installed_distributions(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--version")
    assert (code, out.strip()) == (0, f"prodcat {version('prodcat')}")


@pytest.mark.parametrize(
    ("command", "listed", "unused"),
    [
        (["produce"], "--input-topic", "--max-batch-size"),
        (["produce"], "--kafka", "--group-id"),
        (["dead-letters", "replay"], "--dead-letter-topic", "--input-topic"),
        (["dead-letters", "replay"], "--session-timeout-ms", "--registry"),
    ],
)
def test_a_command_lists_the_settings_it_reads_and_no_others(
    capsys: pytest.CaptureFixture[str], command: list[str], listed: str, unused: str
) -> None:
    text = help_of(capsys, *command)
    assert listed in text and unused not in text


@pytest.mark.parametrize("before", [True, False], ids=["before", "after"])
def test_the_log_level_is_accepted_before_or_after_the_subcommand(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, before: bool
) -> None:
    flag = ["--log-level", "ERROR"]
    command = ["consume", "--registry", str(tmp_path), *NO_BROKER_WAIT]
    # Exit code 1: the settings were taken and the empty registry refused.
    assert run_cli(capsys, *(flag + command if before else command + flag))[0] == 1
    structlog.get_logger("test").warning("filtered")
    assert "filtered" not in capsys.readouterr().err


def test_the_log_level_is_read_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PRODCAT_LOG_LEVEL", "error")
    # Exit code 1: the settings were taken and the empty registry refused.
    assert run_cli(capsys, "consume", "--registry", str(tmp_path), *NO_BROKER_WAIT)[0] == 1
    structlog.get_logger("test").warning("filtered")
    assert "filtered" not in capsys.readouterr().err


def test_the_log_level_flag_wins_over_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PRODCAT_LOG_LEVEL", "ERROR")
    # Exit code 1: the settings were taken and the empty registry refused.
    assert (
        run_cli(capsys, "consume", "--registry", str(tmp_path), "--log-level", "INFO", *NO_BROKER_WAIT)[0]
        == 1
    )
    structlog.get_logger("test").warning("kept")
    assert "kept" in capsys.readouterr().err


def test_an_invalid_log_level_in_the_environment_gets_one_line_and_exit_code_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRODCAT_LOG_LEVEL", "loud")
    code, _, err = run_cli(capsys, "consume")
    assert code == 2
    assert one_line(err).startswith("prodcat: error: invalid settings: PRODCAT_LOG_LEVEL='loud': ")


def test_a_training_option_is_read_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PRODCAT_DATASET_PER_CLASS", "2")
    monkeypatch.setenv("PRODCAT_DATASET_OUT", str(tmp_path / "sample.jsonl"))
    assert run_cli(capsys, "dataset", "sample")[0] == 0
    per_class = [
        orjson.loads(line)["category"] for line in (tmp_path / "sample.jsonl").read_text().splitlines()
    ]
    assert {per_class.count(c) for c in per_class} == {2}


def test_a_training_flag_wins_over_its_environment_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PRODCAT_DATASET_PER_CLASS", "2")
    out = tmp_path / "sample.jsonl"
    assert run_cli(capsys, "dataset", "sample", "--out", str(out), "--per-class", "3")[0] == 0
    categories = [orjson.loads(line)["category"] for line in out.read_text().splitlines()]
    assert {categories.count(c) for c in categories} == {3}


@pytest.mark.parametrize(
    ("variable", "value", "command"),
    [
        ("PRODCAT_DATASET_PER_CLASS", "0", ["dataset", "sample", "--out", "x"]),
        ("PRODCAT_DATASET_TEXT", "bogus", ["dataset", "build", "--jsonl", __file__, "--out", "x"]),
        (
            "PRODCAT_TRAIN_RESUME",
            "maybe",
            ["train", "--data", __file__, "--base-model", "org/m", "--registry", "r"],
        ),
    ],
)
def test_a_bad_training_environment_variable_gets_one_line_naming_it(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    command: list[str],
) -> None:
    monkeypatch.setenv(variable, value)
    code, _, err = run_cli(capsys, *command)
    assert code == 2
    assert f"from {variable}: " in one_line(err)


def test_the_run_summary_as_json_is_one_object_of_counts(capsys: pytest.CaptureFixture[str]) -> None:
    print_run_summary(RunSummary(consumed=5, enriched=4, dead_lettered=1, seconds=2.5), as_json=True)
    assert orjson.loads(capsys.readouterr().out) == {
        "consumed": 5,
        "enriched": 4,
        "dead_lettered": 1,
        "seconds": 2.5,
    }


def test_registry_list_as_json_names_every_version_and_the_current_one(
    capsys: pytest.CaptureFixture[str], trained_registry: Path
) -> None:
    model = next(p for p in trained_registry.iterdir() if p.is_dir())
    versions = sorted(p.name for p in model.iterdir() if p.is_dir() and not p.name.startswith("."))
    code, out, _ = run_cli(
        capsys, "registry", "list", "--registry", str(trained_registry), "--model-name", model.name, "--json"
    )
    listing = orjson.loads(out)
    assert code == 0
    assert [v["version"] for v in listing["versions"]] == versions
    assert listing["current"] == (model / "CURRENT").read_text().strip()


def test_evaluate_as_json_reports_the_headline_scores(
    capsys: pytest.CaptureFixture[str], trained_registry: Path, corpus: Path, tmp_path: Path
) -> None:
    data = tmp_path / "few.jsonl"
    data.write_text("".join(corpus.read_text().splitlines(keepends=True)[:24]))
    code, out, _ = run_cli(
        capsys,
        "evaluate",
        "--checkpoint",
        str(trained_registry),
        "--data",
        str(data),
        "--out",
        str(tmp_path / "report"),
        "--device",
        "cpu",
        "--json",
    )
    summary = orjson.loads(out)
    assert code == 0
    assert summary["examples"] == 24 and 0 <= summary["accuracy"] <= 1


def test_replay_as_json_reports_the_counts_by_kind(
    capsys: pytest.CaptureFixture[str], kafka_bootstrap: str
) -> None:
    settings = scratch_settings(kafka_bootstrap, "replay-json")
    code, out, _ = run_cli(
        capsys,
        "dead-letters",
        "replay",
        "--bootstrap-servers",
        kafka_bootstrap,
        "--dead-letter-topic",
        settings.dead_letter_topic,
        "--group-id",
        settings.group_id,
        "--session-timeout-ms",
        "6000",
        "--heartbeat-interval-ms",
        "500",
        "--idle-s",
        "1",
        "--dry-run",
        "--json",
    )
    assert code == 0
    assert orjson.loads(out) == {"dry_run": True, "replayed": {}, "skipped": {}, "unreadable": 0}
