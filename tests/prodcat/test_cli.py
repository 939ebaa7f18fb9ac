"""The command line: bad input gets one clear line and an exit code, never a traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import huggingface_hub.constants
import orjson
import pytest

from prodcat.cli import main
from tests.cli_runner import run_cli

# The registry is judged with no broker at all: --timeout 0 skips the wait for one.
NO_BROKER_WAIT = ("--timeout", "0")


def test_an_invalid_flag_value_gets_one_line_and_exit_code_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_cli(capsys, "consume", "--max-batch-size", "many")
    assert code == 2
    assert err.strip().splitlines() == [
        "prodcat consume: error: argument --max-batch-size: invalid int value: 'many' "
        "(see 'prodcat consume --help')"
    ]


def test_an_unknown_subcommand_gets_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_cli(capsys, "categorise")
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "invalid choice: 'categorise'" in err


def test_an_invalid_environment_setting_gets_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRODCAT_TOP_K", "zero")
    code, err = run_cli(capsys, "consume")
    assert code == 2
    assert err.strip().splitlines() == [
        "prodcat: error: invalid settings: PRODCAT_TOP_K='zero': Input should be a valid integer, "
        "unable to parse string as an integer"
    ]


def test_a_librdkafka_option_without_a_value_is_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_cli(capsys, "consume", "--kafka", "security.protocol")
    assert code == 2
    assert "--kafka takes KEY=VALUE" in err


def test_a_missing_registry_gets_one_line_and_exit_code_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, err = run_cli(capsys, "consume", "--registry", str(tmp_path / "nowhere"), *NO_BROKER_WAIT)
    assert code == 1
    assert err.strip().splitlines() == [
        f"prodcat: error: no checkpoint at {tmp_path / 'nowhere'}: expected manifest.json or CURRENT"
    ]


def test_a_corrupt_checkpoint_gets_one_line_naming_the_bad_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, trained_registry: Path
) -> None:
    registry = tmp_path / "registry"
    shutil.copytree(trained_registry, registry)
    head = next(registry.glob("*/*/head.safetensors"))
    head.write_bytes(head.read_bytes()[:-16] + b"\0" * 16)

    code, err = run_cli(capsys, "consume", "--registry", str(registry), *NO_BROKER_WAIT)
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert "head.safetensors fails its sha256 check" in err


def test_a_checkpoint_that_disagrees_with_its_golden_set_gets_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, trained_registry: Path
) -> None:
    registry = tmp_path / "registry"
    shutil.copytree(trained_registry, registry)
    manifest_path = next(registry.glob("*/*/manifest.json"))
    manifest = orjson.loads(manifest_path.read_bytes())
    # Labels in the wrong order: every checksum still verifies, every answer is wrong.
    manifest_path.write_bytes(orjson.dumps({**manifest, "labels": manifest["labels"][::-1]}))

    code, err = run_cli(capsys, "consume", "--registry", str(registry), "--device", "cpu", *NO_BROKER_WAIT)
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert "agrees with its golden set on" in err


def test_replaying_an_unknown_error_kind_gets_one_line_and_exit_code_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, err = run_cli(capsys, "dead-letters", "replay", "--kind", "gremlins")
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "gremlins" in err


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in (
        "demo",
        "consume",
        "produce",
        "dead-letters",
        "base",
        "dataset",
        "train",
        "evaluate",
        "registry",
    ):
        assert command in out


def test_consume_help_documents_the_environment_variable_of_each_setting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["consume", "--help"])
    out = capsys.readouterr().out
    assert "PRODCAT_MAX_BATCH_SIZE" in out and "PRODCAT_INPUT_TOPIC" in out


def test_a_base_model_path_without_a_model_gets_one_line(
    capsys: pytest.CaptureFixture[str], corpus: Path, tmp_path: Path
) -> None:
    code, err = run_cli(
        capsys, "train", "--data", str(corpus), "--base-model", str(tmp_path), "--registry", str(tmp_path)
    )
    assert code == 2
    assert err.strip().splitlines() == [
        f"prodcat train: error: argument --base-model: {tmp_path} is not a model directory (no config.json) "
        "(see 'prodcat train --help')"
    ]


def test_an_unreachable_hub_model_gets_one_line(
    capsys: pytest.CaptureFixture[str], corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # Read once, when huggingface_hub is first imported (by an earlier test, in a full run).
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    code, err = run_cli(
        capsys,
        "train",
        "--data",
        str(corpus),
        "--base-model",
        "Qwen/Qwen3-Embedding-0.6B",
        "--registry",
        str(tmp_path),
    )
    assert code == 1
    assert err.strip().splitlines()[-1].startswith("prodcat: error: ")
    assert "Traceback" not in err


def test_an_archive_that_is_not_a_zip_gets_one_line_and_exit_code_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    archive = tmp_path / "lspcV2020.zip"
    archive.write_bytes(b"<html>download interrupted</html>")
    code, err = run_cli(capsys, "dataset", "build", "--lspc", str(archive), "--out", str(tmp_path / "out"))
    assert code == 1
    assert err.strip().splitlines() == ["prodcat: error: lspcV2020.zip is not a zip archive"]
