"""Prints the requirements pyproject.toml declares, so an image installs them before the source arrives.

Usage: python pyproject_requirements.py PYPROJECT [EXTRA ...]
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path


def requirements(pyproject: Path, extras: list[str]) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    declared: dict[str, list[str]] = project.get("optional-dependencies", {})
    # An extra may name others as `<project>[a,b]`; those expand here instead of asking an index for us.
    self_reference = re.compile(rf"^{re.escape(project['name'])}\[([^\]]+)\]$")
    wanted: list[str] = []
    pending = [list(project["dependencies"])]
    pending.extend(_extra(declared, extra, pyproject) for extra in extras)
    seen = set(extras)
    while pending:
        for requirement in pending.pop(0):
            match = self_reference.match(requirement.replace(" ", ""))
            if match is None:
                if requirement not in wanted:
                    wanted.append(requirement)
                continue
            for extra in match.group(1).split(","):
                if extra not in seen:
                    seen.add(extra)
                    pending.append(_extra(declared, extra, pyproject))
    return wanted


def _extra(declared: dict[str, list[str]], extra: str, pyproject: Path) -> list[str]:
    if extra not in declared:
        raise SystemExit(f"pyproject_requirements: error: no extra {extra!r} in {pyproject}")
    return declared[extra]


if __name__ == "__main__":
    print("\n".join(requirements(Path(sys.argv[1]), sys.argv[2:])))
