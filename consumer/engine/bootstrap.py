"""Topic bootstrap: before subscribing, wait for the service's topics (creating them when asked to):
input, output, dead letters, the review topic when review routing is on, and the labels
topic when the shadow follows one."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

import structlog

from prodcat.consumer.client_config import BrokerHealth
from prodcat.consumer.config import ConsumerSettings
from prodcat.consumer.health import Readiness
from prodcat.consumer.topics import create_topics, wait_for_topics
from prodcat.errors import BrokerError

log = structlog.get_logger(__name__)

# How often start-up says, in the log, that it is still waiting for its topics.
WAITING_LOG_EVERY_S = 30.0
CREATE_RETRY_S = 2.0


def await_topics(
    settings: ConsumerSettings,
    config: Mapping[str, object],
    *,
    readiness: Readiness,
    broker: BrokerHealth,
    stop: threading.Event,
) -> None:
    """Until the service's topics exist (creating them first when asked to), or until stopped."""
    topics = [settings.input_topic, settings.output_topic, settings.dead_letter_topic]
    if settings.review_topic is not None:
        topics.append(settings.review_topic)
    if settings.shadow_fraction > 0 and settings.labels_topic is not None:
        topics.append(settings.labels_topic)
    next_log = 0.0

    def waiting(missing: list[str]) -> None:
        nonlocal next_log
        readiness.waiting_for = "topics " + ", ".join(missing)
        readiness.broker_reachable = broker.reachable
        if time.monotonic() >= next_log:
            next_log = time.monotonic() + WAITING_LOG_EVERY_S
            log.warning("waiting_for_topics", missing=missing, create=settings.create_topics)

    while settings.create_topics and not stop.is_set():
        try:
            created = create_topics(
                config, topics, partitions=settings.topic_partitions, replication=settings.topic_replication
            )
        except BrokerError as exc:
            waiting(topics)
            log.debug("create_topics_failed", error=str(exc))
            stop.wait(CREATE_RETRY_S)
            continue
        if created:
            log.info("topics_created", topics=created, partitions=settings.topic_partitions)
        break
    if wait_for_topics(config, topics, stop=stop, on_wait=waiting):
        readiness.waiting_for = None
        broker.mark_reachable()
