"""librdkafka client configuration: built from the settings, judged by librdkafka, logged through structlog.

librdkafka's own log lines and errors otherwise go straight to stderr, many per second
while no broker answers; here they become throttled structured events instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from prodcat.consumer.config import ConsumerSettings
from prodcat.errors import BrokerError, ConfigError

log = structlog.get_logger(__name__)

Clock = Callable[[], float]

# Errors meaning no broker can be talked to: refused or dropped connections, names that do
# not resolve, and librdkafka's summary once every known broker is down.
UNREACHABLE_CODES = frozenset({KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT, KafkaError._RESOLVE})

THROTTLE_S = 15.0

# The keys that carry Python objects, not librdkafka properties.
_CALLBACK_KEYS = ("logger", "error_cb")


@dataclass(slots=True)
class Throttle:
    """At most one event per key and interval; how many were held back is told with the next one."""

    interval_s: float = THROTTLE_S
    clock: Clock = time.monotonic
    _last: dict[object, float] = field(default_factory=dict)
    _held: dict[object, int] = field(default_factory=dict)

    def admit(self, key: object) -> int | None:
        """None while `key` is throttled; else the count of events suppressed since its last one."""
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            self._held[key] = self._held.get(key, 0) + 1
            return None
        self._last[key] = now
        return self._held.pop(key, 0)


class KafkaLogAdapter:
    """Given as `logger` to a client: librdkafka's log lines become `kafka_log` events.

    confluent-kafka calls `log(level, "%s [%s] %s", facility, client, message)` with the
    syslog level already mapped to a `logging` level. Lines repeat many times a second
    while a broker is down, so each (client, facility) pair is throttled.
    """

    def __init__(self, throttle: Throttle | None = None) -> None:
        self._throttle = throttle or Throttle()
        self._lock = threading.Lock()

    def log(self, level: int, _format: str, *args: object) -> None:
        facility, client, message = (*(str(a) for a in args), "", "", "")[:3]
        with self._lock:
            suppressed = self._throttle.admit((client, facility))
        if suppressed is None:
            return
        log.log(
            level,
            "kafka_log",
            facility=facility,
            client=client,
            message=message.strip(),
            **({"suppressed": suppressed} if suppressed else {}),
        )


class BrokerHealth:
    """Whether the cluster answers, fed by the clients' `error_cb` and by `mark_reachable`.

    Callbacks run on whichever thread polls a client while the HTTP thread reads
    `reachable`, so state changes under a lock.
    """

    def __init__(self, *, throttle: Throttle | None = None, clock: Clock = time.monotonic) -> None:
        self._throttle = throttle or Throttle(clock=clock)
        self._clock = clock
        self._lock = threading.Lock()
        self._reachable = True
        self._since = clock()

    @property
    def reachable(self) -> bool:
        with self._lock:
            return self._reachable

    @property
    def since(self) -> float:
        """When the current state (reachable or not) began, on the health's clock."""
        with self._lock:
            return self._since

    def error_cb(self, error: KafkaError) -> None:
        unreachable = error.code() in UNREACHABLE_CODES
        with self._lock:
            if unreachable and self._reachable:
                self._reachable, self._since = False, self._clock()
            suppressed = self._throttle.admit("unreachable" if unreachable else error.code())
        if suppressed is None:
            return
        extra = {"suppressed": suppressed} if suppressed else {}
        if unreachable:
            log.warning("broker_unreachable", error=error.str(), code=error.name(), **extra)
        else:
            log.warning("kafka_error", error=error.str(), code=error.name(), fatal=error.fatal(), **extra)

    def mark_reachable(self) -> None:
        """Called when a poll returns data or metadata arrives: the cluster answered."""
        with self._lock:
            if self._reachable:
                return
            self._reachable, self._since = True, self._clock()
        log.info("broker_reachable")


# One adapter for every client of the process, so their throttles are shared.
_KAFKA_LOG = KafkaLogAdapter()


def kafka_client_config(
    settings: ConsumerSettings, *, health: BrokerHealth | None = None
) -> dict[str, object]:
    """Producer, consumer and admin configuration: the settings' servers and extra properties,
    librdkafka's log lines routed through structlog, errors into `health` when given."""
    config: dict[str, object] = {
        "bootstrap.servers": settings.bootstrap_servers,
        **settings.kafka,
        "logger": _KAFKA_LOG,
    }
    if health is not None:
        config["error_cb"] = health.error_cb
    return config


def group_consumer_config(
    settings: ConsumerSettings,
    *,
    group_id: str,
    auto_offset_reset: str,
    health: BrokerHealth | None = None,
) -> dict[str, object]:
    """A consumer-group member's configuration: the client settings plus group membership."""
    return {
        **kafka_client_config(settings, health=health),
        "group.id": group_id,
        "auto.offset.reset": auto_offset_reset,
        "session.timeout.ms": settings.session_timeout_ms,
        "heartbeat.interval.ms": settings.heartbeat_interval_ms,
        **settings.kafka_consumer,
    }


def validate_client_config(config: Mapping[str, object]) -> None:
    """Lets librdkafka judge the properties by building (and closing) a client with them.

    A consumer is built when the configuration names a group, a producer otherwise. No
    connection is attempted: the throwaway client is given no bootstrap servers. Raises
    ConfigError with librdkafka's message, naming the `--kafka` property at fault when one is.
    """
    properties = {k: v for k, v in config.items() if k not in (*_CALLBACK_KEYS, "bootstrap.servers")}
    problem = _rejection(properties)
    if problem is None:
        return
    for key, value in properties.items():
        if key != "group.id" and _rejection(_alone(properties, key)) is not None:
            raise ConfigError(f"Kafka property {key}={value}: {problem}")
    raise ConfigError(f"Kafka properties rejected: {problem}")


def require_broker(config: Mapping[str, object], timeout_s: float) -> None:
    """Returns once a broker answers a metadata request; raises BrokerError naming the bootstrap
    servers when none does within `timeout_s`.

    Without it a command given a wrong address waits on librdkafka's own timeouts (five
    minutes for a produced record). The probe's log lines are dropped: the error says it all.
    """
    properties = {**{k: v for k, v in config.items() if k not in _CALLBACK_KEYS}, "logger": _DISCARD}
    # confluent-kafka's stubs allow only scalar values; `logger` is an object by design.
    admin = AdminClient(properties)  # type: ignore[arg-type]
    try:
        admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        error = exc.args[0]
        reason = error.str() if isinstance(error, KafkaError) else str(error)
        raise BrokerError(
            f"no Kafka broker answered at {config.get('bootstrap.servers')} within {timeout_s:g}s "
            f"(--timeout): {reason}"
        ) from None


def _alone(properties: Mapping[str, object], key: str) -> dict[str, object]:
    kept = {key: properties[key]}
    if "group.id" in properties:
        kept["group.id"] = properties["group.id"]
    return kept


def _rejection(properties: Mapping[str, object]) -> str | None:
    # Its lines discarded: with no servers librdkafka warns that it cannot connect, which is the point.
    quiet = {**properties, "logger": _DISCARD}
    try:
        if "group.id" in properties:
            Consumer(quiet).close()
        else:
            Producer(quiet).flush(0)
    except KafkaException as exc:
        error = exc.args[0]
        return (error.str() if isinstance(error, KafkaError) else str(error)).strip()
    return None


class _Discard:
    def log(self, *_args: object) -> None:
        """Drops the throwaway client's lines."""


_DISCARD = _Discard()
