"""deploy/Dockerfile and .dockerignore, read as text: no Docker engine is needed to check them."""

from __future__ import annotations

import fnmatch
import shlex
from itertools import takewhile

import pytest

from tests.deploy.deploy_files import (
    DOCKERIGNORE,
    METRICS_PORT,
    ROOT,
    Instruction,
    dockerfile_stages,
    final_stage,
    one,
    stage_chain,
)

IMAGES = ("serving", "trainer")
LOCAL_STATE = (".git", ".venv", ".cache", "registry", "consumer/__pycache__")


def arguments(chain: list[Instruction], keyword: str) -> list[str]:
    return [i.arguments for i in chain if i.keyword == keyword]


def source_copies() -> list[str]:
    """Paths the build context gives to COPY (those without --from)."""
    return [
        source
        for stage in dockerfile_stages().values()
        for i in stage.instructions
        if i.keyword == "COPY" and not i.arguments.startswith("--from")
        for source in shlex.split(i.arguments)[:-1]
    ]


def requested_extras(image: str) -> set[str]:
    """Extras named to deploy/pyproject_requirements.py (the words after its pyproject path) in a build."""
    extras: set[str] = set()
    for run in arguments(stage_chain(image), "RUN"):
        words = shlex.split(run)
        for n, word in enumerate(words):
            if word.endswith("pyproject_requirements.py"):
                extras.update(takewhile(lambda w: not w.startswith((">", "&", "|", ";")), words[n + 2 :]))
    return extras


def dockerignored(path: str) -> bool:
    """Docker's matching for the patterns .dockerignore uses: globs, `**/` prefixes, no `!` exceptions."""
    patterns = [
        line.strip().strip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip()[:1] not in ("", "#")
    ]
    assert not any(p.startswith("!") for p in patterns)
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    for pattern in patterns:
        if pattern.startswith("**/"):
            if any(fnmatch.fnmatchcase(part, pattern[3:]) for part in parts):
                return True
        elif any(fnmatch.fnmatchcase(prefix, pattern) for prefix in prefixes):
            return True
    return False


def test_a_build_without_target_gives_the_serving_image() -> None:
    assert final_stage() == "serving"


def test_serving_image_exposes_the_metrics_port() -> None:
    assert arguments(stage_chain("serving"), "EXPOSE") == [str(METRICS_PORT)]


@pytest.mark.parametrize("image", IMAGES)
def test_images_run_as_a_numeric_user(image: str) -> None:
    user = arguments(stage_chain(image), "USER")[-1]
    assert all(part.isdigit() and int(part) > 0 for part in user.split(":"))


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
def test_image_user_is_the_one_kubernetes_runs_as(variant: str) -> None:
    uid = arguments(stage_chain("serving"), "USER")[-1].split(":")[0]
    pod = one("Deployment", variant)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == int(uid)


@pytest.mark.parametrize("image", IMAGES)
def test_dependencies_are_installed_before_the_source_arrives(image: str) -> None:
    chain = stage_chain(image)
    first_dependencies = next(
        n for n, i in enumerate(chain) if i.keyword == "RUN" and "pip install -r" in i.arguments
    )
    first_source = next(
        n for n, i in enumerate(chain) if i.keyword == "COPY" and "--from=wheel" in i.arguments
    )
    assert first_dependencies < first_source


def test_serving_image_leaves_out_the_train_extra() -> None:
    assert "train" not in requested_extras("serving")


def test_trainer_image_installs_the_train_extra() -> None:
    assert "train" in requested_extras("trainer")


@pytest.mark.parametrize("image", IMAGES)
def test_images_install_the_object_store_client_the_kubernetes_registry_needs(image: str) -> None:
    assert {"s3", "gcs", "azure"} <= requested_extras(image)


def test_cpu_variant_takes_torch_from_the_pytorch_cpu_index() -> None:
    (torch_install,) = [r for r in arguments(stage_chain("serving"), "RUN") if '"torch==' in r]
    assert "cpu) set -- --index-url https://download.pytorch.org/whl/cpu" in torch_install


def test_serving_image_health_check_asks_healthz_on_the_metrics_port() -> None:
    (check,) = arguments(stage_chain("serving"), "HEALTHCHECK")
    assert "/healthz" in check
    assert ("ENV", f"PRODCAT_METRICS_PORT={METRICS_PORT}") in [
        (i.keyword, i.arguments) for i in stage_chain("serving")
    ]


def test_wheel_build_copies_every_folder_linked_into_the_package() -> None:
    linked = {
        p.resolve().relative_to(ROOT).as_posix() for p in (ROOT / "prodcat").iterdir() if p.is_symlink()
    }
    assert linked
    assert linked | {"prodcat"} <= set(source_copies())


@pytest.mark.parametrize("path", LOCAL_STATE)
def test_dockerignore_keeps_local_state_out_of_the_build_context(path: str) -> None:
    assert dockerignored(path)


def test_dockerignore_lets_in_everything_the_dockerfile_copies() -> None:
    assert [source for source in source_copies() if dockerignored(source)] == []
