"""The README's configuration table is the settings model's, not a copy that drifts."""

import re
from pathlib import Path

import pytest

from prodcat.consumer.config import ConsumerSettings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


@pytest.mark.parametrize("name", list(ConsumerSettings.model_fields))
def test_every_service_setting_is_in_the_readme_configuration_table(name: str) -> None:
    assert f"| `--{name.replace('_', '-')}` |" in README


@pytest.mark.parametrize("name", list(ConsumerSettings.model_fields))
def test_the_readme_states_each_settings_default_and_description(name: str) -> None:
    field = ConsumerSettings.model_fields[name]
    default = field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
    row = re.search(rf"^\| `--{name.replace('_', '-')}` \| `[^`]*` \| `([^`]*)` \| (.*) \|$", README, re.M)
    assert row is not None and field.description is not None
    # The row may add a note after the description (e.g. what is not yet acted on).
    assert row.group(1) == str(default) and row.group(2).startswith(field.description)
