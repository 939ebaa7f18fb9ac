"""The Compose specification's JSON Schema, as check-jsonschema ships it (vendor/compose-spec.json,
Apache-2.0, from github.com/compose-spec/compose-spec), so validation needs no network and no Docker."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

from jsonschema.protocols import Validator
from jsonschema.validators import validator_for


@cache
def compose_validator() -> Validator:
    schema = json.loads((files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json").read_text())
    validator: Validator = validator_for(schema)(schema)
    return validator


def compose_errors(document: Any) -> list[str]:
    return sorted(
        f"{'/'.join(map(str, error.absolute_path)) or '<top>'}: {error.message}"
        for error in compose_validator().iter_errors(document)
    )
