import pytest

from prodcat.schemas.generate import MODELS, render, schema_path


@pytest.mark.parametrize("name", sorted(MODELS))
def test_committed_json_schema_matches_the_model(name: str) -> None:
    committed = schema_path(name).read_text()
    assert committed == render(MODELS[name]), f"run `make schemas`: {schema_path(name).name} drifted"
