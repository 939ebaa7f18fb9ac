"""deploy/pyproject_requirements.py: what an image installs before its source, read from pyproject.toml."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from tests.deploy.deploy_files import ROOT

SCRIPT = ROOT / "deploy" / "pyproject_requirements.py"
PYPROJECT = ROOT / "pyproject.toml"


def run(pyproject: Path, *extras: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(pyproject), *extras], capture_output=True, text=True, check=False
    )


def listed(pyproject: Path, *extras: str) -> list[str]:
    result = run(pyproject, *extras)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def write_pyproject(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "pyproject.toml"
    path.write_text(body)
    return path


def test_without_extras_it_lists_exactly_the_project_dependencies() -> None:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    assert listed(PYPROJECT) == project["dependencies"]


def test_an_extra_adds_its_requirements_after_the_dependencies() -> None:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    assert listed(PYPROJECT, "train") == project["dependencies"] + project["optional-dependencies"]["train"]


def test_an_extra_naming_the_project_expands_to_the_extras_it_names(tmp_path: Path) -> None:
    pyproject = write_pyproject(
        tmp_path,
        '[project]\nname = "demo"\ndependencies = ["a"]\n'
        '[project.optional-dependencies]\nx = ["b"]\ny = ["c"]\nall = ["demo[x, y]", "d"]\n',
    )
    assert sorted(listed(pyproject, "all")) == ["a", "b", "c", "d"]


def test_a_requirement_named_twice_is_listed_once(tmp_path: Path) -> None:
    pyproject = write_pyproject(
        tmp_path,
        '[project]\nname = "demo"\ndependencies = ["a"]\n[project.optional-dependencies]\nx = ["a"]\n',
    )
    assert listed(pyproject, "x") == ["a"]


def test_an_unknown_extra_is_a_one_line_error(tmp_path: Path) -> None:
    pyproject = write_pyproject(tmp_path, '[project]\nname = "demo"\ndependencies = []\n')
    result = run(pyproject, "gpu")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"pyproject_requirements: error: no extra 'gpu' in {pyproject}"
    ]
