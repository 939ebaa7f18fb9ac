"""Service configuration: environment (`PRODCAT_*`, `KAFKA_BOOTSTRAP_SERVERS`) then flags."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, AliasChoices, BeforeValidator, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from prodcat.consumer.batcher import BatchLimits

# Kafka's own rule (kafka.common.internals.Topic): these characters, at most 249 of them.
_TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]{1,249}")


def _legal_topic(name: str) -> str:
    if not _TOPIC_NAME.fullmatch(name) or name in (".", ".."):
        raise ValueError(
            f"{name!r} is not a legal Kafka topic name (1 to 249 of a-z A-Z 0-9 . _ -, and not '.' or '..')"
        )
    return name


TopicName = Annotated[str, AfterValidator(_legal_topic)]
# A URI is not a path (Path("s3://b") is "s3:/b"), so the registry is text; callers may pass a Path.
RegistryLocation = Annotated[
    str, BeforeValidator(lambda v: os.fspath(v) if isinstance(v, os.PathLike) else v)
]

# librdkafka's allowed range for session.timeout.ms and heartbeat.interval.ms; brokers by
# default accept sessions of 6 s to 5 min (group.min/max.session.timeout.ms).
_MAX_GROUP_TIMEOUT_MS = 3_600_000
_DAY_S = 86_400.0


class ConsumerSettings(BaseSettings):
    # Every float also has bounds; allow_inf_nan=False makes the refusal say "finite".
    model_config = SettingsConfigDict(env_prefix="PRODCAT_", frozen=True, extra="forbid", allow_inf_nan=False)

    bootstrap_servers: str = Field(
        default="localhost:9092",
        validation_alias=AliasChoices(
            "bootstrap_servers", "PRODCAT_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"
        ),
        min_length=1,
        description="Kafka bootstrap servers (host:port,...).",
    )
    input_topic: TopicName = Field(default="products.raw", description="Topic of raw product events.")
    output_topic: TopicName = Field(default="products.categorized", description="Topic for enriched events.")
    dead_letter_topic: TopicName = Field(
        default="products.dead-letter", description="Topic for events that cannot be processed."
    )
    group_id: str = Field(default="prodcat-categorizer", min_length=1, description="Kafka consumer group.")
    registry: RegistryLocation = Field(
        default="registry",
        description="Model registry: a local registry root, model folder or checkpoint, or "
        "s3://bucket/prefix, gs://bucket/prefix, az://container/prefix, hf://org/repo[@revision].",
    )
    cache_dir: Path | None = Field(
        default=None,
        description="Where checkpoints of an object-store registry are downloaded (the serving "
        "and the previous version); default ~/.cache/prodcat/registry/<hash of the registry>.",
    )
    model_name: str | None = Field(
        default=None, description="Model in the registry; needed when it holds several."
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="auto = CUDA (fp16) when available, else CPU (fp32)."
    )
    max_batch_size: int = Field(default=64, ge=1, le=4096, description="Most titles in one forward pass.")
    max_batch_tokens: int = Field(
        default=16384,
        ge=16,
        le=1_048_576,
        description="Most padded tokens (longest title x rows) in one forward pass.",
    )
    max_wait_ms: float = Field(
        default=20.0,
        ge=0,
        le=60_000,
        description="Longest a title waits for its batch to fill while the device is busy; an idle "
        "device takes what is waiting at once.",
    )
    top_k: int = Field(default=3, ge=1, le=1000, description="Scores kept per enriched event.")
    review_threshold: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Flag events whose top-1 confidence is below this for review (with --review-topic).",
    )
    review_margin: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Flag events whose top-1 confidence leads the second's by less than this for review "
        "(with --review-topic; needs --top-k 2 or more).",
    )
    # Plain str, checked below: the flag builder takes a bare type, not an Annotated one in a union.
    review_topic: str | None = Field(
        default=None,
        description="Topic that events flagged for review are also written to (off when unset).",
    )
    shadow_fraction: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Share of batches the registry's candidate also runs on, judged beside the serving "
        "model (0: off).",
    )
    labels_topic: str | None = Field(
        default=None,
        description="Topic of true labels the shadow judge scores both models on (followed from its end).",
    )
    emit_embeddings: bool = Field(
        default=False,
        description="Add each title's pooled embedding (float16, base64) to its enriched event.",
    )
    window_size: int = Field(
        default=1024,
        ge=1,
        le=65_536,
        description="Titles gathered (for at most --max-wait-ms) and sorted by token count before "
        "batches are cut, so titles of similar length share a batch.",
    )
    tokenizer_threads: int | None = Field(
        default=None,
        ge=0,
        le=256,
        description="Threads that tokenize titles off the Kafka thread (0: on the Kafka thread); "
        "default: the cores free beside the Kafka thread and the device worker, at least 1.",
    )
    commit_interval_ms: float = Field(
        default=1000.0,
        ge=0,
        le=60_000,
        description="Least time between two asynchronous offset commits, or transactions with "
        "exactly-once (at least 100 ms there). Revoke and shutdown always commit; a crash re-emits "
        "about this long's outputs more.",
    )
    delivery: Literal["at-least-once", "exactly-once"] = Field(
        default="at-least-once",
        description="exactly-once: transactional producer with the offsets in each transaction; "
        "subscribers must read with isolation.level=read_committed.",
    )
    transactional_id: str | None = Field(
        default=None,
        min_length=1,
        description="Transactional id for exactly-once (stable per member, so a restarted member "
        "fences its zombie); default: <group-id>.<hostname>.<member index>.",
    )
    processes: int = Field(
        default=1, ge=1, le=64, description="Consumer-group members run by this command, one process each."
    )
    create_topics: bool = Field(
        default=False, description="Create the input, output, dead-letter (and review) topics when missing."
    )
    topic_partitions: int = Field(
        default=6, ge=1, le=10_000, description="Partitions of topics made by --create-topics."
    )
    topic_replication: int = Field(
        default=1, ge=1, le=32, description="Replication factor of topics made by --create-topics."
    )
    session_timeout_ms: int = Field(
        default=10_000, ge=1000, le=_MAX_GROUP_TIMEOUT_MS, description="Kafka group session timeout."
    )
    heartbeat_interval_ms: int = Field(
        default=1000,
        ge=100,
        le=_MAX_GROUP_TIMEOUT_MS,
        description="Kafka group heartbeat interval; must be shorter than the session timeout.",
    )
    auto_offset_reset: Literal["earliest", "latest"] = Field(
        default="earliest", description="Where a new group starts reading."
    )
    shutdown_timeout_s: float = Field(
        default=30.0, gt=0, le=3600, description="Longest wait for acknowledgements when draining."
    )
    timeout: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="Longest wait at start for a Kafka broker to answer before exiting with one "
        "line naming the bootstrap servers (0: wait as long as it takes).",
    )
    metrics_port: int | None = Field(
        default=None, ge=0, le=65535, description="Serve Prometheus metrics on this port (off when unset)."
    )
    reload_interval_s: float = Field(
        default=10.0,
        ge=0,
        le=_DAY_S,
        description="How often the registry's CURRENT pointer is re-read; a newly promoted "
        "checkpoint is loaded and swapped in without stopping (0 turns hot reload off).",
    )
    min_golden_agreement: float = Field(
        default=0.9,
        ge=0,
        le=1,
        description="A checkpoint whose predictions match its golden set on fewer titles than "
        "this share is refused, at start and on reload.",
    )
    max_failed_in_a_row: int = Field(
        default=16,
        ge=1,
        le=1_000_000,
        description="Titles that fail on their own with no success between before the service "
        "stops as broken, leaving them uncommitted, instead of dead-lettering the stream.",
    )
    health_stall_s: float = Field(
        default=120.0,
        gt=0,
        le=_DAY_S,
        description="GET /healthz on the metrics port answers 503 once the main loop has not "
        "come round for this long.",
    )
    kafka: dict[str, str] = Field(
        default_factory=dict,
        description="Extra librdkafka settings for consumer and producer (e.g. security.protocol).",
    )
    kafka_consumer: dict[str, str] = Field(
        default_factory=dict,
        description="Extra librdkafka settings for the consumer alone (e.g. fetch.wait.max.ms), "
        "which a producer would warn about.",
    )

    @model_validator(mode="after")
    def _distinct_topics(self) -> ConsumerSettings:
        topics = {self.input_topic, self.output_topic, self.dead_letter_topic}
        if len(topics) != 3:
            raise ValueError("input, output and dead-letter topics must all differ")
        return self

    @field_validator("review_topic", "labels_topic")
    @classmethod
    def _legal_side_topic(cls, name: str | None) -> str | None:
        return None if name is None else _legal_topic(name)

    @model_validator(mode="after")
    def _review_routing(self) -> ConsumerSettings:
        flagging = self.review_threshold is not None or self.review_margin is not None
        if flagging and self.review_topic is None:
            raise ValueError("--review-threshold and --review-margin need a --review-topic")
        if self.review_topic is not None and not flagging:
            raise ValueError("--review-topic needs --review-threshold or --review-margin")
        if self.review_margin is not None and self.top_k < 2:
            raise ValueError("--review-margin compares the two best labels: it needs --top-k 2 or more")
        if self.review_topic in (self.input_topic, self.output_topic, self.dead_letter_topic):
            raise ValueError("the review topic must differ from the input, output and dead-letter topics")
        return self

    @model_validator(mode="after")
    def _shadow_labels(self) -> ConsumerSettings:
        if self.labels_topic is not None and self.labels_topic in (
            self.input_topic,
            self.output_topic,
            self.dead_letter_topic,
            self.review_topic,
        ):
            raise ValueError(
                "the labels topic must differ from the input, output, dead-letter and review topics"
            )
        return self

    @model_validator(mode="after")
    def _heartbeat_within_session(self) -> ConsumerSettings:
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            raise ValueError(
                f"heartbeat_interval_ms ({self.heartbeat_interval_ms}) must be shorter than "
                f"session_timeout_ms ({self.session_timeout_ms})"
            )
        return self

    @property
    def batch_limits(self) -> BatchLimits:
        return BatchLimits(
            max_items=self.max_batch_size,
            max_tokens=self.max_batch_tokens,
            max_wait_s=self.max_wait_ms / 1000.0,
            window_items=self.window_size,
        )
