"""The README's install and test-kit sections give exactly the commands the outside test runs."""

from __future__ import annotations

import re

import pytest

from tests.outside.journey import (
    ACTIVATE,
    BUILD_WHEEL,
    INSTALL_KIT,
    INSTALL_TORCH,
    MAKE_VENV,
    REPOSITORY,
    RUN_SUITE,
    WHEEL,
)

README = (REPOSITORY / "README.md").read_text()


def section(heading: str) -> str:
    """The text under `heading` up to the next heading of the same or a higher level."""
    level = heading.split(" ", 1)[0]
    start = README.index(f"\n{heading}\n")
    following = re.compile(rf"\n#{{1,{len(level)}}} ")
    end = following.search(README, start + len(heading) + 2)
    return README[start : end.start() if end else len(README)]


def command_lines(text: str) -> list[str]:
    """The shell lines of the section's code blocks, comments cut off."""
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)
    lines = (line.split("  #", 1)[0].strip() for block in blocks for line in block.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


@pytest.mark.parametrize("command", [MAKE_VENV, ACTIVATE, INSTALL_TORCH, BUILD_WHEEL])
def test_the_install_section_gives_each_setup_command_the_outside_test_runs(command: str) -> None:
    assert command in command_lines(section("## Installing"))


def test_the_test_kit_section_installs_the_wheel_with_the_extras_the_outside_test_installs() -> None:
    assert command_lines(section("### Testing your own pipeline"))[0] == INSTALL_KIT


def test_the_test_kit_section_runs_the_suite_as_the_outside_test_does() -> None:
    assert f"`{RUN_SUITE}`" in section("### Testing your own pipeline")


def test_every_install_line_names_the_wheel_the_build_makes() -> None:
    installs = [line for line in command_lines(README) if line.startswith("pip install ")]
    from_wheel = [line for line in installs if line.startswith(f"pip install '{WHEEL}")]
    assert installs and [line for line in installs if "torch" not in line] == from_wheel


def test_no_line_installs_prodcat_from_a_package_index() -> None:
    assert not re.search(r"pip install '?prodcat\b", README)
