"""Kafka output: produces records and reports each acknowledgement back to its owner.

A delivery failure is stored by the callback and raised at the next call, so it can
never vanish inside librdkafka's thread of callbacks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from confluent_kafka import KafkaError, Message, Producer

from prodcat.errors import DeliveryError

Headers = list[tuple[str, bytes]]


class KafkaSink:
    def __init__(self, config: Mapping[str, object]) -> None:
        self._producer = Producer({"linger.ms": 5, **config})
        self._failure: DeliveryError | None = None

    def produce(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None,
        headers: Headers | None,
        on_ack: Callable[[], None],
    ) -> None:
        def delivered(error: KafkaError | None, message: Message) -> None:
            if error is not None:
                if self._failure is None:
                    self._failure = DeliveryError(f"delivery to {message.topic()} failed: {error.str()}")
                return
            on_ack()

        while True:
            try:
                self._producer.produce(
                    topic,
                    value,
                    key,
                    headers=headers,  # type: ignore[arg-type]
                    on_delivery=delivered,
                )
                break
            except BufferError:
                # librdkafka's queue is full: serve acknowledgements until room frees up.
                self._producer.poll(0.05)
        self._raise_failure()

    def poll(self, timeout_s: float = 0.0) -> None:
        self._producer.poll(timeout_s)
        self._raise_failure()

    def flush(self, timeout_s: float) -> None:
        remaining = self._producer.flush(timeout_s)
        self._raise_failure()
        if remaining:
            raise DeliveryError(f"{remaining} records still unacknowledged after {timeout_s:.0f}s")

    def close(self, *, discard: bool = False) -> None:
        """Shuts the producer down; `discard` drops unsent records instead of waiting for them."""
        if discard:
            self._producer.purge()
        self._producer.close()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure
