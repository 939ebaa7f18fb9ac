"""Edges a newcomer hits: no broker at the address given, one command's variable exported for
another, a malformed variable. Each gets one line, soon, and no command reads another's settings."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson
import pytest

from prodcat.cli import build_parser
from prodcat.consumer.config import ConsumerSettings
from prodcat.consumer.logs import LogSettings
from prodcat.flags import COMMAND_ENV_PREFIXES, env_names
from tests.cli_runner import run_cli

# What `prodcat` imported by the time it exited, beside its exit code: a bad setting must be
# told before torch is, so it costs a fraction of a second, not the seconds torch takes.
HARNESS = textwrap.dedent(
    """
    import json
    import sys

    from prodcat.cli import main

    try:
        code = main(sys.argv[1:])
    except SystemExit as exit_:
        code = exit_.code
    print(json.dumps({"code": code, "imported": sorted({"torch", "transformers"} & set(sys.modules))}))
    """
)
CATEGORIES = ("Automotive", "Baby", "Books", "Clothing", "Jewelry", "Shoes")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(
    "command",
    [
        ["produce", __file__],
        ["consume", "--registry", "nowhere"],
        ["consume", "--processes", "2"],
        ["dead-letters", "replay"],
    ],
    ids=["produce", "consume", "consume-processes", "replay"],
)
def test_a_command_with_no_broker_to_talk_to_fails_with_one_line_naming_the_servers(
    capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    servers = f"127.0.0.1:{closed_port()}"
    code, err = run_cli(capsys, *command, "--bootstrap-servers", servers, "--timeout", "1")

    assert code == 1
    assert one_line(err).startswith(f"prodcat: error: no Kafka broker answered at {servers} within 1s ")


def test_the_demo_on_a_cluster_that_does_not_answer_fails_with_one_line_naming_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    servers = f"127.0.0.1:{closed_port()}"
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", servers)
    code, err = run_cli(capsys, "demo", "--work-dir", str(tmp_path), "--timeout", "1")

    assert code == 1
    assert one_line(err).startswith(f"prodcat: error: no Kafka broker answered at {servers} within 1s ")


def test_a_produce_that_fails_drops_the_queued_records_instead_of_waiting_for_them() -> None:
    # Closing a producer with unacknowledged records waits librdkafka's message timeout
    # (five minutes); a failed produce must end when its own timeout says.
    script = textwrap.dedent(
        f"""
        from prodcat.consumer.config import ConsumerSettings
        from prodcat.errors import DeliveryError
        from prodcat.produce import produce_values

        settings = ConsumerSettings(bootstrap_servers="127.0.0.1:{closed_port()}")
        try:
            produce_values([b"{{}}"], settings, timeout_s=1)
        except DeliveryError as exc:
            print(exc)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)

    # Unconfigured, structlog logs to stdout too: the verdict is the last line.
    verdict = done.stdout.strip().splitlines()[-1]
    assert verdict == "1 records still unacknowledged after 1s", done.stderr[-2000:]


def test_produce_reads_no_consumer_setting_it_does_not_use(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, kafka_bootstrap: str, tmp_path: Path
) -> None:
    monkeypatch.setenv("PRODCAT_TOP_K", "zero")
    monkeypatch.setenv("PRODCAT_PROCESSES", "many")
    events = tmp_path / "events.jsonl"
    events.write_bytes(orjson.dumps({"id": "1", "title": "Silk Scarf"}) + b"\n")
    topic = f"edges-{closed_port()}"

    code, err = run_cli(
        capsys, "produce", str(events), "--bootstrap-servers", kafka_bootstrap, "--input-topic", topic
    )

    assert (code, err) == (0, "")


def test_the_consumers_top_k_does_not_reach_dataset_build(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    catalogue = tmp_path / "catalogue.jsonl"
    catalogue.write_text(
        "".join(
            json.dumps({"title": f"{category} item {n}", "category": category}) + "\n"
            for category in CATEGORIES
            for n in range(6 - CATEGORIES.index(category))
        )
    )
    monkeypatch.setenv("PRODCAT_TOP_K", "5")

    code, _ = run_cli(capsys, "dataset", "build", "--jsonl", str(catalogue), "--out", str(tmp_path / "data"))

    report = json.loads((tmp_path / "data" / "dataset.json").read_text())
    assert code == 0
    assert sorted(report["splits"]["train"]["per_class"]) == sorted(CATEGORIES)


@pytest.mark.parametrize(
    ("variable", "command", "dest"),
    [
        (
            "PRODCAT_MODEL_NAME",
            ["train", "--data", __file__, "--base-model", "org/m", "--registry", "r"],
            "model_name",
        ),
        ("PRODCAT_DEVICE", ["evaluate", "--checkpoint", "c", "--data", __file__], "device"),
        ("PRODCAT_REGISTRY", ["registry", "list"], "registry"),
        ("PRODCAT_SEED", ["base", "tiny", "--corpus", __file__, "--out", "o"], "seed"),
    ],
)
def test_a_variable_without_the_commands_prefix_leaves_its_option_alone(
    monkeypatch: pytest.MonkeyPatch, variable: str, command: list[str], dest: str
) -> None:
    default = vars(build_parser().parse_args(command))[dest]
    monkeypatch.setenv(variable, "cpu" if dest == "device" else "7")

    assert vars(build_parser().parse_args(command))[dest] == default


@pytest.mark.parametrize(
    ("variable", "command", "dest", "value"),
    [
        ("PRODCAT_DATASET_TOP_K", ["dataset", "build", "--jsonl", __file__, "--out", "o"], "top_k", 5),
        (
            "PRODCAT_TRAIN_EPOCHS",
            ["train", "--data", __file__, "--base-model", "org/m", "--registry", "r"],
            "epochs",
            5.0,
        ),
        (
            "PRODCAT_EVALUATE_BATCH_SIZE",
            ["evaluate", "--checkpoint", "c", "--data", __file__],
            "batch_size",
            5,
        ),
        ("PRODCAT_REGISTRY_MODEL_NAME", ["registry", "list"], "model_name", "5"),
        ("PRODCAT_BASE_SEED", ["base", "tiny", "--corpus", __file__, "--out", "o"], "seed", 5),
    ],
)
def test_a_commands_option_reads_the_variable_under_its_prefix(
    monkeypatch: pytest.MonkeyPatch, variable: str, command: list[str], dest: str, value: object
) -> None:
    monkeypatch.setenv(variable, "5")
    assert vars(build_parser().parse_args(command))[dest] == value


def test_no_command_prefix_can_name_a_service_or_logging_variable() -> None:
    service = [
        name for names in (env_names(ConsumerSettings), env_names(LogSettings)) for name in names.values()
    ]
    clashes = [
        (variable, prefix)
        for variable in (v for names in service for v in names)
        for prefix in COMMAND_ENV_PREFIXES.values()
        if variable.startswith(prefix)
    ]
    assert clashes == []


@pytest.mark.parametrize(
    ("variable", "value", "command", "expected"),
    [
        (
            "PRODCAT_KAFKA",
            "security.protocol=SSL",
            ["consume"],
            "PRODCAT_KAFKA='security.protocol=SSL': not a JSON object",
        ),
        ("PRODCAT_TOP_K", "zero", ["consume"], "PRODCAT_TOP_K='zero': Input should be a valid integer"),
        (
            "KAFKA_BOOTSTRAP_SERVERS",
            "",
            ["produce", __file__],
            "KAFKA_BOOTSTRAP_SERVERS='': String should have at least 1",
        ),
        (
            "PRODCAT_TIMEOUT",
            "-1",
            ["dead-letters", "replay"],
            "PRODCAT_TIMEOUT='-1': Input should be greater than or equal to 0",
        ),
        (
            "PRODCAT_LOG_LEVEL",
            "loud",
            ["produce", __file__],
            "PRODCAT_LOG_LEVEL='loud': Input should be 'DEBUG'",
        ),
        (
            "PRODCAT_DATASET_TOP_K",
            "five",
            ["dataset", "build", "--jsonl", __file__, "--out", "o"],
            "from PRODCAT_DATASET_TOP_K: not a number",
        ),
    ],
    ids=["kafka-not-json", "top-k", "bootstrap-empty", "timeout-negative", "log-level", "dataset-top-k"],
)
def test_a_bad_environment_value_gets_one_line_naming_it_before_torch_is_imported(
    variable: str, value: str, command: list[str], expected: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRODCAT_")}
    done = subprocess.run(
        [sys.executable, "-c", HARNESS, *command],
        env={**env, variable: value},
        capture_output=True,
        text=True,
        timeout=60,
    )
    result = json.loads(done.stdout)

    assert result == {"code": 2, "imported": []}
    assert expected in one_line(done.stderr)
