"""Creating the service's topics where they do not exist yet."""

from __future__ import annotations

from collections.abc import Mapping

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from prodcat.errors import BrokerError


def ensure_topics(
    config: Mapping[str, object], topics: Mapping[str, int], *, timeout_s: float = 15.0
) -> None:
    """Creates each missing topic with its partition count; existing topics are left alone."""
    admin = AdminClient(dict(config))  # type: ignore[arg-type]
    try:
        existing = admin.list_topics(timeout=timeout_s).topics
    except KafkaException as exc:
        raise BrokerError(f"cannot reach Kafka at {config.get('bootstrap.servers')}: {exc}") from None
    wanted = [NewTopic(name, partitions, 1) for name, partitions in topics.items() if name not in existing]
    if not wanted:
        return
    for name, future in admin.create_topics(wanted, operation_timeout=timeout_s).items():
        try:
            future.result(timeout=timeout_s)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise BrokerError(f"cannot create topic {name}: {exc.args[0].str()}") from None
