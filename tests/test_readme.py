"""The README's configuration table is the settings model's, not a copy that drifts."""

from pathlib import Path

import pytest

from prodcat.consumer.config import ConsumerSettings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


@pytest.mark.parametrize("name", list(ConsumerSettings.model_fields))
def test_every_service_setting_is_in_the_readme_configuration_table(name: str) -> None:
    assert f"| `--{name.replace('_', '-')}` |" in README
