"""The README's install, run as a new user runs it: a clean venv, CPU torch, the wheel with the
test kit's extras and nothing else; then the command, the demo and an outside project's suite.

One venv for the module (about a minute and a half to build); `-m 'not outside'` skips it.
"""

from __future__ import annotations

import re
import shlex
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.outside.journey import (
    BUILD_WHEEL,
    INSTALL_KIT,
    INSTALL_TORCH,
    MAKE_VENV,
    REPOSITORY,
    RUN_SUITE,
    VERSION,
    copy_checkout,
    shell,
    succeeded,
)

pytestmark = pytest.mark.outside

INSTALL_TIMEOUT_S = 600
RUN_TIMEOUT_S = 300
# Small enough to train in seconds; 8 of the events are the demo's malformed set.
SMALL_DEMO = "--events 40 --per-class 40 --epochs 1 --device cpu"
DEMO_SUMMARY = re.compile(r"events in (\d+), enriched out (\d+), dead-lettered (\d+)")


@dataclass(frozen=True)
class Install:
    checkout: Path
    venv: Path


@pytest.fixture(scope="module")
def install(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Install]:
    checkout = copy_checkout(tmp_path_factory.mktemp("checkout"))
    venv = checkout / ".venv"
    try:
        # The interpreter running this suite stands for the user's `python`.
        make_venv = MAKE_VENV.replace("python", shlex.quote(sys.executable), 1)
        succeeded(shell(make_venv, cwd=checkout, timeout_s=INSTALL_TIMEOUT_S))
        for command in (INSTALL_TORCH, BUILD_WHEEL, INSTALL_KIT):
            succeeded(shell(command, cwd=checkout, venv=venv, timeout_s=INSTALL_TIMEOUT_S))
        yield Install(checkout, venv)
    finally:
        # Over a gigabyte: not kept for pytest's rotation of its last three runs.
        shutil.rmtree(venv, ignore_errors=True)


def test_the_command_and_the_package_come_from_the_wheel(install: Install) -> None:
    found = succeeded(
        shell(
            "command -v prodcat && python -c 'import prodcat; print(prodcat.__file__)'",
            cwd=install.checkout.parent,
            venv=install.venv,
            timeout_s=RUN_TIMEOUT_S,
        )
    ).split()

    assert found[0] == str(install.venv / "bin" / "prodcat")
    assert Path(found[1]).is_relative_to(install.venv / "lib")


def test_the_installed_requirements_are_consistent(install: Install) -> None:
    done = shell("pip check", cwd=install.checkout, venv=install.venv, timeout_s=RUN_TIMEOUT_S)
    assert done.returncode == 0, done.stdout


def test_version_names_the_built_release(install: Install) -> None:
    out = succeeded(
        shell("prodcat --version", cwd=install.checkout.parent, venv=install.venv, timeout_s=RUN_TIMEOUT_S)
    )
    assert out.strip() == f"prodcat {VERSION}"


def test_the_demo_accounts_for_every_event(install: Install, tmp_path: Path) -> None:
    out = succeeded(
        shell(
            f"prodcat demo --work-dir demo {SMALL_DEMO}",
            cwd=tmp_path,
            venv=install.venv,
            timeout_s=RUN_TIMEOUT_S,
        )
    )

    summary = DEMO_SUMMARY.search(out)
    assert summary is not None, out[-2000:]
    assert tuple(int(n) for n in summary.groups()) == (40, 32, 8)


def test_the_example_projects_suite_passes_under_warnings_as_errors(install: Install, tmp_path: Path) -> None:
    project = shutil.copytree(REPOSITORY / "examples" / "shop-pipeline", tmp_path / "shop-pipeline")
    # A cache of its own: the kit builds its checkpoint as on a user's first run.
    done = shell(
        RUN_SUITE,
        cwd=project,
        venv=install.venv,
        timeout_s=RUN_TIMEOUT_S,
        PRODCAT_TEST_CACHE=str(tmp_path / "kit-cache"),
    )

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert re.search(r"\b1 passed\b", done.stdout)
