"""The serving image installs no `train` extra, so nothing `prodcat consume` imports may need it."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, packages_distributions, requires

from packaging.requirements import Requirement

from tests.deploy.deploy_files import ROOT

# Modules outside the serving path: training, and the demo that trains.
TRAINING_MODULES = ("prodcat.trainer", "prodcat.demo")

IMPORT_ALL_BUT_TRAINING = """
import importlib, pkgutil, sys
blocked = set(sys.argv[1].split(","))
training = tuple(sys.argv[2].split(","))

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in blocked:
            raise ImportError(f"{name} is training-only")
        return None

sys.meta_path.insert(0, Block())
import prodcat
for module in pkgutil.walk_packages(prodcat.__path__, "prodcat."):
    if not module.name.startswith(training):
        importlib.import_module(module.name)
"""


def distributions_needed(requirements: list[str]) -> set[str]:
    """Installed distributions these requirements pull in, transitively (extras of theirs left out)."""
    needed: set[str] = set()
    pending = [Requirement(r) for r in requirements]
    while pending:
        requirement = pending.pop()
        name = requirement.name.lower().replace("_", "-")
        if name in needed:
            continue
        needed.add(name)
        try:
            pending.extend(
                r
                for r in map(Requirement, requires(name) or [])
                if r.marker is None or r.marker.evaluate({"extra": ""})
            )
        except PackageNotFoundError:
            continue
    return needed


def training_only_modules() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    serving = distributions_needed(project["dependencies"])
    train_only = {Requirement(r).name.lower() for r in project["optional-dependencies"]["train"]} - serving
    return {
        module
        for module, dists in packages_distributions().items()
        if any(d.lower().replace("_", "-") in train_only for d in dists)
    }


def test_serving_modules_import_without_the_train_extra() -> None:
    blocked = training_only_modules()
    assert blocked
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            IMPORT_ALL_BUT_TRAINING,
            ",".join(sorted(blocked)),
            ",".join(TRAINING_MODULES),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr.strip().splitlines()[-1:]
