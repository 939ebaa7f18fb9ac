"""Environment lookups shared by the demo and the test fixtures."""

from __future__ import annotations

import os


def kafka_bootstrap_from_env() -> str | None:
    value = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    return value or None
