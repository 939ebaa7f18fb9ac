"""`prodcat.testing`: what a user's own integration test uses to run against the categorizer."""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import sys
import textwrap
import time
import uuid
import warnings
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, Producer

from prodcat.consumer.client_config import kafka_client_config
from prodcat.consumer.source import read_topic
from prodcat.consumer.topics import ensure_topics
from prodcat.errors import InferenceUnavailable
from prodcat.model.loading import load_model
from prodcat.produce import produce_values
from prodcat.scratch import scratch_settings
from prodcat.testing import (
    CACHE_ENV,
    TinyRecipe,
    cached_directory,
    consumer_config,
    docker_engine_answers,
    registry_name,
    running_categorizer,
)
from tests.faults import BrokenDeviceModel

EXAMPLE_PROJECT = Path(__file__).parents[2] / "examples" / "shop-pipeline"

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


def test_loading_the_plugin_and_its_broker_fixture_imports_no_torch(
    pytester: pytest.Pytester, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    pytester.makeconftest('pytest_plugins = ["prodcat.testing"]')
    pytester.makepyfile(
        textwrap.dedent(
            """
            import sys

            def test_no_model_library_was_imported(prodcat_kafka):
                assert not {"torch", "transformers"} & set(sys.modules)
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_the_docker_probe_leaves_no_socket_open_when_nothing_listens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'docker.sock'}")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        answered = docker_engine_answers()
        # What the probe left unclosed is collected (and warned about) here, not later.
        gc.collect()

    assert not answered
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_a_cached_directory_is_built_once_and_then_reused(tmp_path: Path) -> None:
    builds: list[Path] = []

    def build(out: Path) -> None:
        builds.append(out)
        (out / "built").write_text("once")

    first = cached_directory(tmp_path, "thing", build)
    again = cached_directory(tmp_path, "thing", build)

    assert (again, len(builds)) == (first, 1)
    assert (again / "built").read_text() == "once"


def test_a_build_that_finishes_second_uses_the_first_ones_directory(tmp_path: Path) -> None:
    def build_while_another_run_finishes_first(out: Path) -> None:
        (out / "by").write_text("second")
        winner = tmp_path / "thing"
        winner.mkdir()
        (winner / "by").write_text("first")

    result = cached_directory(tmp_path, "thing", build_while_another_run_finishes_first)

    assert (result / "by").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thing"]


def test_a_failed_build_leaves_nothing_that_a_later_run_would_reuse(tmp_path: Path) -> None:
    def failing(out: Path) -> None:
        (out / "half").write_text("done")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        cached_directory(tmp_path, "thing", failing)

    assert list(tmp_path.iterdir()) == []


def test_a_changed_recipe_is_cached_under_another_name() -> None:
    assert registry_name(TinyRecipe()) != registry_name(TinyRecipe(epochs=2 * TinyRecipe().epochs))


def test_a_kit_consumer_reads_its_subscribed_topic_from_the_start(kafka_bootstrap: str) -> None:
    topic = f"kit-{uuid.uuid4().hex[:8]}"
    ensure_topics({"bootstrap.servers": kafka_bootstrap}, {topic: 1})
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for value in (b"one", b"two"):
        producer.produce(topic, value)
    producer.flush(30)

    consumer = Consumer(consumer_config(kafka_bootstrap))
    consumer.subscribe([topic])
    values: list[bytes | None] = []
    deadline = time.monotonic() + 60
    try:
        while len(values) < 2 and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                values.append(message.value())
    finally:
        consumer.close()

    assert values == [b"one", b"two"]


def test_the_example_project_passes_as_an_outside_users_suite(trained_registry: Path, tmp_path: Path) -> None:
    # The checkpoint this session trained is the kit's recipe, so it seeds the kit's cache
    # like an earlier run would have (one training per session, not two).
    cache = tmp_path / "cache"
    cached_directory(
        cache,
        registry_name(TinyRecipe()),
        lambda out: shutil.copytree(trained_registry, out, dirs_exist_ok=True),
    )
    # Its own broker too: nothing here tells it about this session's.
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-W", "error", "-p", "no:cacheprovider"],
        cwd=EXAMPLE_PROJECT,
        env={**env, CACHE_ENV: str(cache)},
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "1 passed" in done.stdout
