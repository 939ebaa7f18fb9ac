import pytest
from pydantic import ValidationError

from prodcat.schemas.labels import LabelEvent


def test_a_numeric_id_is_kept_as_text_so_it_joins_the_raw_events() -> None:
    event = LabelEvent.model_validate({"id": 42, "title": "Bib", "label": "Baby", "source": "reviewer"})
    assert event.id == "42"


def test_unknown_fields_are_kept() -> None:
    event = LabelEvent.model_validate(
        {"id": "1", "title": "Bib", "label": "Baby", "source": "reviewer", "ticket": "R-7"}
    )
    assert event.model_dump()["ticket"] == "R-7"


@pytest.mark.parametrize("field", ["id", "title", "label", "source"])
def test_each_of_id_title_label_and_source_is_required(field: str) -> None:
    document = {"id": "1", "title": "Bib", "label": "Baby", "source": "reviewer"}
    del document[field]
    with pytest.raises(ValidationError, match=field):
        LabelEvent.model_validate(document)


@pytest.mark.parametrize("field", ["title", "label"])
def test_a_blank_title_or_label_is_refused(field: str) -> None:
    document = {"id": "1", "title": "Bib", "label": "Baby", "source": "reviewer", field: "   "}
    with pytest.raises(ValidationError, match="must not be blank"):
        LabelEvent.model_validate(document)
