"""Labelled titles and the JSONL format they travel in: `{"title": ..., "category": ...}` a line."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import orjson


@dataclass(frozen=True)
class LabeledTitle:
    title: str
    category: str


def write_jsonl(records: Iterable[LabeledTitle], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        for record in records:
            handle.write(orjson.dumps({"title": record.title, "category": record.category}))
            handle.write(b"\n")


def read_jsonl(path: Path) -> list[LabeledTitle]:
    """Reads every record; extra fields (such as `source`) are ignored, blank lines skipped."""
    records = []
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            records.append(_parse_line(line, path, number))
    return records


def _parse_line(line: bytes, path: Path, number: int) -> LabeledTitle:
    try:
        document = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{path}:{number}: not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise ValueError(f"{path}:{number}: expected a JSON object")
    fields = {}
    for name in ("title", "category"):
        value = document.get(name)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{path}:{number}: field {name!r} is missing or not a non-empty string")
        fields[name] = value
    return LabeledTitle(**fields)
