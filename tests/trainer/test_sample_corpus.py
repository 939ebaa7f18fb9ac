from __future__ import annotations

import itertools
from collections import defaultdict
from pathlib import Path

import pytest

from prodcat.schemas.labels import DEFAULT_CATEGORIES
from prodcat.trainer.sample_corpus import LabeledTitle, generate, read_jsonl, write_jsonl


def test_default_corpus_has_at_least_400_distinct_titles_per_category() -> None:
    titles = defaultdict(set)
    for record in generate():
        titles[record.category].add(record.title)
    too_few = {c: len(titles[c]) for c in DEFAULT_CATEGORIES if len(titles[c]) < 400}
    assert too_few == {}


def test_corpus_has_no_categories_beyond_the_reference_labels() -> None:
    assert {record.category for record in generate(per_class=20)} == set(DEFAULT_CATEGORIES)


def test_same_seed_gives_the_same_corpus() -> None:
    assert generate(per_class=50, seed=7) == generate(per_class=50, seed=7)


def test_different_seeds_give_different_corpora() -> None:
    assert generate(per_class=50, seed=1) != generate(per_class=50, seed=2)


def test_corpus_is_shuffled_across_categories() -> None:
    categories = [record.category for record in generate(per_class=50)]
    # Grouped by category there would be 5 changes; shuffled, most neighbours differ.
    changes = sum(a != b for a, b in itertools.pairwise(categories))
    assert changes > len(categories) // 2


def test_jsonl_round_trip_preserves_records(tmp_path: Path) -> None:
    records = generate(per_class=10)
    write_jsonl(records, tmp_path / "titles.jsonl")
    assert read_jsonl(tmp_path / "titles.jsonl") == records


def test_read_jsonl_ignores_extra_fields_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "titles.jsonl"
    path.write_text('{"title": "Gone Girl", "category": "Books", "source": "x"}\n\n')
    assert read_jsonl(path) == [LabeledTitle("Gone Girl", "Books")]


def test_read_jsonl_names_the_line_of_invalid_json(tmp_path: Path) -> None:
    path = tmp_path / "titles.jsonl"
    path.write_text('{"title": "Gone Girl", "category": "Books"}\n{"title": oops}\n')
    with pytest.raises(ValueError, match=r"titles\.jsonl:2: not valid JSON"):
        read_jsonl(path)


def test_read_jsonl_names_the_line_and_field_of_a_missing_field(tmp_path: Path) -> None:
    path = tmp_path / "titles.jsonl"
    path.write_text(
        '{"title": "Gone Girl", "category": "Books"}\n'
        '{"title": "Circe", "category": "Books"}\n'
        '{"title": "Crocs Classic Clog"}\n'
    )
    with pytest.raises(ValueError, match=r"titles\.jsonl:3: field 'category'"):
        read_jsonl(path)
