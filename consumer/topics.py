"""The service's topics: waiting for them to appear, and creating them where asked to."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import TimeoutError as FutureTimeout

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from prodcat.errors import BrokerError


def wait_for_topics(
    config: Mapping[str, object],
    topics: Sequence[str],
    *,
    stop: threading.Event,
    on_wait: Callable[[list[str]], None],
    poll_s: float = 2.0,
) -> bool:
    """True once every topic exists (metadata without error); False if `stop` is set first.

    Each round some are still missing calls `on_wait` with them; a round the broker does
    not answer counts every topic as missing. Broker errors are not fatal here: a cluster
    still starting is what this waits through.
    """
    admin = _admin(config)
    while not stop.is_set():
        missing = _missing(admin, topics, timeout_s=poll_s)
        # Serves the client's callbacks: its error_cb is how a caller learns no broker answers.
        admin.poll(0)
        if not missing:
            return True
        on_wait(missing)
        stop.wait(poll_s)
    return False


def create_topics(
    config: Mapping[str, object],
    topics: Sequence[str],
    *,
    partitions: int,
    replication: int,
    timeout_s: float = 15.0,
) -> list[str]:
    """Creates those of `topics` that do not exist; returns the names this call created."""
    return _create(config, {name: partitions for name in topics}, replication, timeout_s)


def ensure_topics(
    config: Mapping[str, object], topics: Mapping[str, int], *, timeout_s: float = 15.0
) -> None:
    """Creates each missing topic with its own partition count, unreplicated (scratch topics)."""
    _create(config, topics, 1, timeout_s)


def _admin(config: Mapping[str, object]) -> AdminClient:
    return AdminClient(dict(config))  # type: ignore[arg-type]


def _missing(admin: AdminClient, topics: Sequence[str], *, timeout_s: float) -> list[str]:
    try:
        # All topics, not the wanted ones by name: a metadata request naming a topic can
        # make a broker with auto-creation on create it, with its default partitions.
        known = admin.list_topics(timeout=timeout_s).topics
    except KafkaException:
        return list(topics)
    return [name for name in topics if name not in known or known[name].error is not None]


def _create(
    config: Mapping[str, object], topics: Mapping[str, int], replication: int, timeout_s: float
) -> list[str]:
    admin = _admin(config)
    try:
        existing = admin.list_topics(timeout=timeout_s).topics
    except KafkaException as exc:
        raise BrokerError(
            f"cannot reach Kafka at {config.get('bootstrap.servers')}: {exc.args[0].str()}"
        ) from None
    # Listing first: with ACLs, asking to create a topic that exists can fail on authorization
    # (for a client allowed to use but not to create it) instead of answering "already exists".
    wanted = [NewTopic(name, n, replication) for name, n in topics.items() if name not in existing]
    if not wanted:
        return []
    created = []
    for name, future in admin.create_topics(wanted, operation_timeout=timeout_s).items():
        try:
            future.result(timeout=timeout_s)
        except FutureTimeout:
            raise BrokerError(f"cannot create topic {name}: no answer within {timeout_s:g}s") from None
        except KafkaException as exc:
            # Another member created it between our listing and our request.
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise BrokerError(f"cannot create topic {name}: {exc.args[0].str()}") from None
            continue
        created.append(name)
    return created
