"""The pipeline benchmark starts and finishes on a tiny input; no figure is checked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.pipeline import main

EVENTS = 120


@pytest.fixture
def on_session_broker(kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)


def section_commands(output: str) -> dict[str, str]:
    """Each printed section's number and the command it says reproduces it."""
    found = re.findall(
        r"^### (\d)\. .*?\n\nCommand: `(python -m bench\.pipeline [^`]+)`", output, re.M | re.S
    )
    return dict(found)


@pytest.mark.usefixtures("on_session_broker")
def test_in_process_sections_finish_and_print_their_commands(
    corpus: Path, tiny_base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "--sections=overlap,padding,kafka,shape",
            f"--events={EVENTS}",
            "--rates=50000",
            "--repeats=1",
            "--partitions=2",
            f"--data={corpus}",
            f"--shape-model={tiny_base}",
            "--shape-titles=16",
            "--device=cpu",
        ]
    )
    commands = section_commands(capsys.readouterr().out)
    assert code == 0
    assert sorted(commands) == ["1", "2", "3", "5"]
    assert "--sections overlap" in commands["1"]


@pytest.mark.usefixtures("on_session_broker")
def test_latency_section_finishes_and_prints_its_percentiles(
    corpus: Path, trained_registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "--sections=latency",
            f"--events={EVENTS}",
            "--latency-events=20",
            "--latency-rates=50,200",
            "--partitions=2",
            f"--data={corpus}",
            f"--registry={trained_registry}",
        ]
    )
    output = capsys.readouterr().out
    assert code == 0
    assert list(section_commands(output)) == ["6"]
    assert re.search(r"^\| 50 \| \*\*[\d.]+\*\* \| [\d.]+ \|$", output, re.M)
    assert re.search(r"^\| 200 \| ", output, re.M)


@pytest.mark.usefixtures("on_session_broker")
def test_processes_section_runs_the_consume_command_and_finishes(
    corpus: Path, trained_registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "--sections=processes",
            f"--events={EVENTS}",
            "--partitions=2",
            f"--data={corpus}",
            f"--registry={trained_registry}",
            "--process-timeout-s=120",
        ]
    )
    output = capsys.readouterr().out
    assert code == 0
    assert list(section_commands(output)) == ["4"]
    assert output.count("prodcat.cli consume") == 2
