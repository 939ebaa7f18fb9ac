"""The environment an operator gives `prodcat consume`, from the settings a test made."""

from __future__ import annotations

import os
from pathlib import Path

from prodcat.consumer.config import ConsumerSettings


def consume_env(settings: ConsumerSettings, registry: Path | str, **extra: str) -> dict[str, str]:
    """`os.environ` plus the PRODCAT_* variables naming the settings' broker, topics and group."""
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "PRODCAT_INPUT_TOPIC": settings.input_topic,
        "PRODCAT_OUTPUT_TOPIC": settings.output_topic,
        "PRODCAT_DEAD_LETTER_TOPIC": settings.dead_letter_topic,
        "PRODCAT_GROUP_ID": settings.group_id,
        "PRODCAT_REGISTRY": str(registry),
        "PRODCAT_DEVICE": "cpu",
        "PRODCAT_SESSION_TIMEOUT_MS": str(settings.session_timeout_ms),
        "PRODCAT_HEARTBEAT_INTERVAL_MS": str(settings.heartbeat_interval_ms),
        **extra,
    }
