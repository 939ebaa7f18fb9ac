"""Keeping BENCHMARKS.md current: each benchmark owns one marked section."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path


def replace_section(path: Path, name: str, body: str) -> None:
    """Replaces (or appends) the text between this benchmark's markers."""
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = f"{begin}\n_Last run: {stamp}._\n\n{body}\n{end}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def record_result(path: Path, name: str, command: str, text: str) -> None:
    """Writes `text` with the exact command line that produced it."""
    invocation = " ".join([command, *sys.argv[1:]])
    replace_section(path, name, f"Command: `{invocation}`\n\n{text}")
