"""Throwaway topics and groups for one run of the demo, a benchmark or a test."""

from __future__ import annotations

import uuid
from typing import Any

from prodcat.broker import consumer_settings_for
from prodcat.consumer.client_config import kafka_client_config
from prodcat.consumer.config import ConsumerSettings
from prodcat.consumer.topics import ensure_topics


def scratch_settings(
    bootstrap: str, prefix: str, *, partitions: int = 3, **overrides: Any
) -> ConsumerSettings:
    """Settings naming fresh topics (created here) and a fresh consumer group.

    Fresh names make counting what arrived trivial, and keep a group that Tansu jammed
    in one run (closed mid-rebalance) from affecting the next. Short sessions and
    heartbeats because every group join waits half a session on Tansu, and short fetch waits
    on an embedded broker (`prodcat.broker.consumer_settings_for`).
    """
    run = f"{prefix}-{uuid.uuid4().hex[:8]}"
    settings = ConsumerSettings(
        **{
            "bootstrap_servers": bootstrap,
            "input_topic": f"{run}.products.raw",
            "output_topic": f"{run}.products.categorized",
            "dead_letter_topic": f"{run}.products.dead-letter",
            "group_id": run,
            "session_timeout_ms": 6000,
            "heartbeat_interval_ms": 500,
            "kafka_consumer": consumer_settings_for(bootstrap),
            **overrides,
        }
    )
    ensure_topics(
        kafka_client_config(settings),
        {settings.input_topic: partitions, settings.output_topic: partitions, settings.dead_letter_topic: 1},
    )
    return settings
