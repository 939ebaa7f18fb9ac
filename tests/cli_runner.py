"""`prodcat` run in-process, as a test sees it: its exit code and what it wrote to stderr."""

import pytest

from prodcat.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    return code, capsys.readouterr().err


def run_cli_output(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """As `run_cli`, with what the command wrote to stdout too: (exit code, stdout, stderr)."""
    try:
        code = main(list(argv))
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err
