"""The deploy files as data: YAML documents, Kubernetes objects by kind, Dockerfile stages."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
COMPOSE_GPU = ROOT / "docker-compose.gpu.yml"
PROMETHEUS = ROOT / "deploy" / "prometheus.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
K8S = ROOT / "deploy" / "k8s"
METRICS_PORT = 9100


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def kubernetes_files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")


def kustomizations() -> list[Path]:
    return sorted(K8S.rglob("kustomization.yaml"))


def kubernetes_objects() -> list[tuple[Path, dict[str, Any]]]:
    return [(path, doc) for path in kubernetes_files() for doc in yaml.safe_load_all(path.read_text()) if doc]


def one(kind: str, folder: str = "base") -> dict[str, Any]:
    found = [doc for path, doc in kubernetes_objects() if doc["kind"] == kind and path.parent.name == folder]
    assert len(found) == 1, f"expected one {kind} in deploy/k8s/{folder}, found {len(found)}"
    return found[0]


def config_data() -> dict[str, str]:
    data: dict[str, str] = one("ConfigMap")["data"]
    return data


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(only)


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


@dataclass(frozen=True)
class Stage:
    name: str
    parent: str
    instructions: tuple[Instruction, ...]


def dockerfile_stages() -> dict[str, Stage]:
    """Stages by name, each with its instructions (continuation lines joined, comments dropped)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: dict[str, Stage] = {}
    current: tuple[str, str] | None = None
    body: list[Instruction] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        keyword, _, arguments = line.strip().partition(" ")
        if keyword.upper() == "FROM":
            if current is not None:
                stages[current[0]] = Stage(current[0], current[1], tuple(body))
            image, _, name = arguments.partition(" AS ")
            current, body = (name.strip(), image.strip()), []
        elif current is not None:
            body.append(Instruction(keyword.upper(), arguments.strip()))
    if current is not None:
        stages[current[0]] = Stage(current[0], current[1], tuple(body))
    return stages


def stage_chain(name: str) -> list[Instruction]:
    """A stage's instructions after those of the stages it is built FROM, in build order."""
    stages = dockerfile_stages()
    chain: list[Instruction] = []
    while name in stages:
        chain = list(stages[name].instructions) + chain
        name = stages[name].parent
    return chain


def final_stage() -> str:
    return list(dockerfile_stages())[-1]
