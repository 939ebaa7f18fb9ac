"""`prodcat.testing`: what a user's own integration test uses to run against the categorizer."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import orjson
import pytest

from prodcat.consumer.client_config import kafka_client_config
from prodcat.consumer.source import read_topic
from prodcat.errors import InferenceUnavailable
from prodcat.model.loading import load_model
from prodcat.produce import produce_values
from prodcat.scratch import scratch_settings
from prodcat.testing import running_categorizer
from tests.faults import BrokenDeviceModel

pytest_plugins = ["pytester"]


def test_a_running_categorizer_enriches_what_the_test_produces(
    kafka_bootstrap: str, trained_registry: Path
) -> None:
    settings = scratch_settings(kafka_bootstrap, "user", registry=trained_registry, device="cpu")
    events = [orjson.dumps({"id": f"mine-{n}", "title": "Pampers Baby Wipes 12 Pack"}) for n in range(10)]

    with running_categorizer(settings):
        produce_values(events, settings)
        enriched = read_topic(kafka_client_config(settings), settings.output_topic, expected=10)

    documents = [orjson.loads(r.value or b"") for r in enriched]
    assert sorted(d["id"] for d in documents) == sorted(f"mine-{n}" for n in range(10))
    assert all(d["classification"]["label"] for d in documents)


def test_an_error_inside_the_running_categorizer_is_raised_by_the_with_block(
    kafka_bootstrap: str, trained_registry: Path
) -> None:
    settings = scratch_settings(
        kafka_bootstrap, "user", registry=trained_registry, device="cpu", max_failed_in_a_row=1
    )
    broken = BrokenDeviceModel(load_model(trained_registry, device="cpu", min_agreement=0.9))

    with pytest.raises(InferenceUnavailable), running_categorizer(settings, broken) as service:
        produce_values([orjson.dumps({"id": "x", "title": "Silk Scarf"})], settings)
        deadline = time.monotonic() + 60
        while service.metrics.consumed_total == 0 and time.monotonic() < deadline:
            time.sleep(0.05)


def test_the_pytest_plugin_gives_a_users_test_suite_a_broker(
    pytester: pytest.Pytester, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    pytester.makeconftest('pytest_plugins = ["prodcat.testing"]')
    pytester.makepyfile(
        textwrap.dedent(
            """
            from confluent_kafka.admin import AdminClient

            def test_the_broker_answers(prodcat_kafka):
                metadata = AdminClient({"bootstrap.servers": prodcat_kafka}).list_topics(timeout=10)
                assert metadata.brokers
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
