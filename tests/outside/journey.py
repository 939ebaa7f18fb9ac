"""The README's install journey, as commands a new user types and the outside tests run.

README.md quotes these lines; `test_readme_install.py` keeps the two in step.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
VERSION: str = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]["version"]
WHEEL = f"dist/prodcat-{VERSION}-py3-none-any.whl"

MAKE_VENV = "python -m venv .venv"
ACTIVATE = ". .venv/bin/activate"
# The build `make setup` installs; torch first, so resolving prodcat's requirements picks no other.
INSTALL_TORCH = "pip install torch==2.13.0"
BUILD_WHEEL = "pip wheel --no-deps -w dist ."
INSTALL_KIT = f"pip install '{WHEEL}[testing,embedded]'"
# The example project's suite, as the test-kit section runs it.
RUN_SUITE = "pytest -W error"

# Settings of the operator's shell that would reach into the clean install.
_LEAKS = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "KAFKA_BOOTSTRAP_SERVERS")


def copy_checkout(destination: Path) -> Path:
    """The files a checkout of this repository has (tracked and not ignored), symlinks kept.

    A copy, so the wheel is built from what a fresh clone holds and not from a stale
    build/ or egg-info left by an editable install.
    """
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPOSITORY,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = REPOSITORY / os.fsdecode(name)
        target = destination / os.fsdecode(name)
        if not source.is_symlink() and not source.exists():
            continue  # deleted in the work tree, not yet in the index
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        elif source.is_file():
            shutil.copy2(source, target)
    return destination


def clean_env(**extra: str) -> dict[str, str]:
    """A user's shell: this environment less what would reach into the clean install."""
    env = {k: v for k, v in os.environ.items() if k not in _LEAKS and not k.startswith("PRODCAT_")}
    return {**env, **extra}


def shell(
    command: str, *, cwd: Path, timeout_s: float, venv: Path | None = None, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    """Runs one README line with bash, in `venv` activated when given."""
    if venv is not None:
        command = f"{ACTIVATE.replace('.venv', shlex.quote(str(venv)))} && {command}"
    return subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=clean_env(**extra_env),
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def succeeded(done: subprocess.CompletedProcess[str]) -> str:
    """Its stdout; else an AssertionError with the command and the end of its output."""
    if done.returncode != 0:
        raise AssertionError(
            f"{done.args[-1]!r} exited {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
        )
    return done.stdout
