"""The embedded broker's client workaround stays with the embedded broker."""

from __future__ import annotations

from prodcat.broker import EmbeddedBroker, consumer_settings_for
from prodcat.consumer.client_config import group_consumer_config
from prodcat.consumer.config import ConsumerSettings


def test_consumers_of_an_embedded_broker_ask_for_short_fetch_waits() -> None:
    with EmbeddedBroker() as broker:
        settings = ConsumerSettings(
            bootstrap_servers=broker.bootstrap_servers,
            kafka_consumer=consumer_settings_for(broker.bootstrap_servers),
        )

        config = group_consumer_config(settings, group_id="g", auto_offset_reset="earliest")

    assert config["fetch.wait.max.ms"] == "10"


def test_other_brokers_and_production_defaults_keep_librdkafkas_fetch_wait() -> None:
    settings = ConsumerSettings(bootstrap_servers="kafka.example:9092")

    config = group_consumer_config(settings, group_id="g", auto_offset_reset="earliest")

    assert consumer_settings_for("kafka.example:9092") == {}
    assert "fetch.wait.max.ms" not in config
