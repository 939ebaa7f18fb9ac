"""Service configuration: environment (`PRODCAT_*`, `KAFKA_BOOTSTRAP_SERVERS`) then flags."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from prodcat.consumer.batcher import BatchLimits


class ConsumerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PRODCAT_", frozen=True, extra="forbid")

    bootstrap_servers: str = Field(
        default="localhost:9092",
        validation_alias=AliasChoices(
            "bootstrap_servers", "PRODCAT_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"
        ),
        description="Kafka bootstrap servers (host:port,...).",
    )
    input_topic: str = Field(default="products.raw", min_length=1, description="Topic of raw product events.")
    output_topic: str = Field(
        default="products.categorized", min_length=1, description="Topic for enriched events."
    )
    dead_letter_topic: str = Field(
        default="products.dead-letter", min_length=1, description="Topic for events that cannot be processed."
    )
    group_id: str = Field(default="prodcat-categorizer", min_length=1, description="Kafka consumer group.")
    registry: Path = Field(
        default=Path("registry"),
        description="Model registry root, a model folder, or a checkpoint.",
    )
    model_name: str | None = Field(
        default=None, description="Model in the registry; needed when it holds several."
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="auto = CUDA (fp16) when available, else CPU (fp32)."
    )
    max_batch_size: int = Field(default=64, ge=1, le=4096, description="Most titles in one forward pass.")
    max_batch_tokens: int = Field(
        default=16384, ge=16, description="Most padded tokens (longest title x rows) in one forward pass."
    )
    max_wait_ms: float = Field(default=20.0, ge=0, description="Longest a title waits for its batch to fill.")
    top_k: int = Field(default=3, ge=1, description="Scores kept per enriched event.")
    window_size: int = Field(
        default=1024,
        ge=1,
        le=65_536,
        description="Titles gathered (for at most --max-wait-ms) and sorted by token count before "
        "batches are cut, so titles of similar length share a batch.",
    )
    commit_interval_ms: float = Field(
        default=0.0,
        ge=0,
        le=60_000,
        description="Least time between two asynchronous offset commits (0: commit as soon as "
        "acknowledged offsets advance).",
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
        default=False, description="Create the input, output and dead-letter topics when missing."
    )
    topic_partitions: int = Field(
        default=6, ge=1, le=10_000, description="Partitions of topics made by --create-topics."
    )
    topic_replication: int = Field(
        default=1, ge=1, le=32, description="Replication factor of topics made by --create-topics."
    )
    session_timeout_ms: int = Field(default=10_000, ge=1000, description="Kafka group session timeout.")
    heartbeat_interval_ms: int = Field(default=1000, ge=100, description="Kafka group heartbeat interval.")
    auto_offset_reset: Literal["earliest", "latest"] = Field(
        default="earliest", description="Where a new group starts reading."
    )
    shutdown_timeout_s: float = Field(
        default=30.0, gt=0, description="Longest wait for acknowledgements when draining."
    )
    metrics_port: int | None = Field(
        default=None, ge=0, le=65535, description="Serve Prometheus metrics on this port (off when unset)."
    )
    reload_interval_s: float = Field(
        default=10.0,
        ge=0,
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
        description="Titles that fail on their own with no success between before the service "
        "stops as broken, leaving them uncommitted, instead of dead-lettering the stream.",
    )
    health_stall_s: float = Field(
        default=120.0,
        gt=0,
        description="GET /healthz on the metrics port answers 503 once the main loop has not "
        "come round for this long.",
    )
    kafka: dict[str, str] = Field(
        default_factory=dict,
        description="Extra librdkafka settings for consumer and producer (e.g. security.protocol).",
    )

    @model_validator(mode="after")
    def _distinct_topics(self) -> ConsumerSettings:
        topics = {self.input_topic, self.output_topic, self.dead_letter_topic}
        if len(topics) != 3:
            raise ValueError("input, output and dead-letter topics must all differ")
        return self

    @property
    def batch_limits(self) -> BatchLimits:
        return BatchLimits(
            max_items=self.max_batch_size,
            max_tokens=self.max_batch_tokens,
            max_wait_s=self.max_wait_ms / 1000.0,
            window_items=self.window_size,
        )
