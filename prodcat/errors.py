"""One root error for the project; each names what a user must fix."""

from __future__ import annotations


class ProdcatError(Exception):
    """Root of every error the project raises on purpose."""


class ConfigError(ProdcatError):
    """Configuration is missing or inconsistent."""


class CheckpointError(ProdcatError):
    """A checkpoint or registry entry is missing, corrupt, or does not verify."""


class KafkaFailure(ProdcatError):
    """A Kafka operation failed.

    `code` is librdkafka's error code and `retriable` its verdict, so callers can tell a
    passing condition from a fatal one.
    """

    def __init__(self, message: str, *, code: int | None = None, retriable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.retriable = retriable


class DeliveryError(KafkaFailure):
    """The broker did not acknowledge an output record; its offset must not be committed."""


class BrokerError(KafkaFailure):
    """The Kafka cluster could not be reached or refused an operation."""


class InferenceUnavailable(ProdcatError):
    """The model fails on every title, not on a few: the device or the checkpoint is broken."""
