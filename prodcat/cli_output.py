"""What subcommands print on stdout for programs: one JSON object per summary."""

from __future__ import annotations

from typing import Any

import orjson


def print_json(summary: dict[str, Any]) -> None:
    print(orjson.dumps(summary).decode())
