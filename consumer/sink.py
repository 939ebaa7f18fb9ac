"""Kafka output: produce records, tell record-level refusals from a broken broker.

A record the producer refuses on its own account (larger than `message.max.bytes`)
comes back from `produce` as its error code, so the caller can dead-letter that record
and move on. A full local queue (a slow or stalled broker) is waited out for at most
`stall_limit_s`; the service's main loop does not come round meanwhile, so its liveness
probe reports the stall. Anything else is the broker's problem and surfaces as
DeliveryError.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import structlog
from confluent_kafka import KafkaError, KafkaException, Message, Producer, TopicPartition

from prodcat.errors import DeliveryError

log = structlog.get_logger(__name__)

Headers = list[tuple[str, bytes]]
DeliveryCallback = Callable[[KafkaError | None, Message], None]

# librdkafka's default; what a record may weigh unless the user configures otherwise.
DEFAULT_MESSAGE_MAX_BYTES = 1_000_000
# Refusals that concern one record, not the connection: the record is dead-lettered.
RECORD_LEVEL_ERRORS = frozenset(
    {KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.INVALID_RECORD, KafkaError.INVALID_MSG}
)


class KafkaSink:
    def __init__(
        self,
        config: Mapping[str, object],
        *,
        transactional_id: str | None = None,
        stall_limit_s: float = 120.0,
    ) -> None:
        # Idempotence: librdkafka's retries then neither duplicate nor reorder a partition's records.
        settings: dict[str, Any] = {"linger.ms": 5, "enable.idempotence": True, **config}
        if transactional_id is not None:
            settings["transactional.id"] = transactional_id
        self._producer = Producer(settings)
        self.message_max_bytes = int(str(settings.get("message.max.bytes", DEFAULT_MESSAGE_MAX_BYTES)))
        self._stall_limit_s = stall_limit_s

    def produce(
        self,
        topic: str,
        value: bytes,
        key: bytes | None,
        headers: Headers | None,
        on_delivery: DeliveryCallback,
    ) -> int | None:
        """Queues one record; returns the error code when the producer refuses this record itself."""
        waited_since: float | None = None
        while True:
            try:
                self._producer.produce(topic, value, key, headers=headers, on_delivery=on_delivery)  # type: ignore[arg-type]
                return None
            except BufferError:
                # The local queue is full (a slow or stalled broker): serve acknowledgements
                # until room frees up, for a bounded time.
                now = time.monotonic()
                waited_since = waited_since or now
                if now - waited_since > self._stall_limit_s:
                    raise DeliveryError(
                        f"the producer queue stayed full for {self._stall_limit_s:.0f}s; "
                        "the broker is not taking records",
                        code=KafkaError._QUEUE_FULL,
                        retriable=True,
                    ) from None
                self.poll(0.05)
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                if error.code() in RECORD_LEVEL_ERRORS:
                    return error.code()
                raise DeliveryError(
                    f"producing to {topic} failed: {error.str()}",
                    code=error.code(),
                    retriable=error.retriable(),
                ) from None

    def poll(self, timeout_s: float = 0.0) -> None:
        try:
            self._producer.poll(timeout_s)
        except KafkaException as exc:
            # A fatal producer error (e.g. fenced by a newer instance of this transactional id).
            raise _delivery_error("the producer failed", exc) from None

    def flush(self, timeout_s: float) -> None:
        try:
            remaining = self._producer.flush(timeout_s)
        except KafkaException as exc:
            raise _delivery_error("the producer failed", exc) from None
        if remaining:
            raise DeliveryError(
                f"{remaining} records still unacknowledged after {timeout_s:.0f}s", retriable=True
            )

    def init_transactions(self, timeout_s: float) -> None:
        self._transaction_call(lambda: self._producer.init_transactions(timeout_s), "init")

    def begin_transaction(self) -> None:
        self._transaction_call(self._producer.begin_transaction, "begin")

    def commit_transaction(
        self, offsets: Mapping[tuple[str, int], int], group_metadata: object, timeout_s: float
    ) -> None:
        """Sends the next-offsets into the open transaction and commits both atomically."""
        request = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        if request:
            self._transaction_call(
                lambda: self._producer.send_offsets_to_transaction(request, group_metadata, timeout_s),
                "send offsets of",
            )
        self._transaction_call(lambda: self._producer.commit_transaction(timeout_s), "commit")

    def abort_transaction(self, timeout_s: float) -> None:
        self._transaction_call(lambda: self._producer.abort_transaction(timeout_s), "abort")

    @staticmethod
    def _transaction_call(call: Callable[[], object], what: str) -> None:
        try:
            call()
        except KafkaException as exc:
            raise _delivery_error(f"could not {what} the transaction", exc) from None

    def close(self, *, discard: bool = False) -> None:
        """Shuts the producer down; `discard` drops unsent records instead of waiting for them."""
        if discard:
            self._producer.purge()
        with warnings.catch_warnings(record=True) as caught:
            # A fenced transactional producer warns that its abort failed, already logged by then.
            warnings.simplefilter("always")
            self._producer.close()
        for warning in caught:
            log.warning("producer_close", message=str(warning.message))


def _delivery_error(what: str, exc: KafkaException) -> DeliveryError:
    error: KafkaError = exc.args[0]
    return DeliveryError(f"{what}: {error.str()}", code=error.code(), retriable=error.retriable())
