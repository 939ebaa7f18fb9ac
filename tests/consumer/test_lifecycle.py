"""What the service holds and changes, and when: threads, the GIL switch interval, deadlines.

Against the real broker, with the strict stand-in model (tests/faults.py) where the model's
answers do not matter.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from prodcat.consumer.classify.device import DeviceFailure
from prodcat.consumer.classify.provider import FixedModel
from prodcat.consumer.config import ConsumerSettings
from prodcat.consumer.service import CategorizerService, RunSummary
from prodcat.produce import produce_values
from prodcat.scratch import scratch_settings
from prodcat.testing import running_categorizer
from tests.faults import StandInModel

WAIT_S = 30.0
# Not CPython's default nor the service's, so a value left behind by anyone is seen.
OUR_INTERVAL_S = 0.003


@pytest.fixture(autouse=True)
def switch_interval() -> Iterator[None]:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(OUR_INTERVAL_S)
    yield
    sys.setswitchinterval(previous)


def settings_for(bootstrap: str, tmp_path: Path, **overrides: Any) -> ConsumerSettings:
    return scratch_settings(bootstrap, "life", registry=tmp_path, device="cpu", **overrides)


def events(count: int) -> list[bytes]:
    return [orjson.dumps({"id": f"l-{n}", "title": f"{n} Silk Scarf"}) for n in range(count)]


def device_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "device" and t.is_alive()]


def run_in_thread(service: CategorizerService, **kwargs: int) -> tuple[threading.Thread, list[object]]:
    """The service's run on a thread; its summary or the error it raised lands in the list."""
    results: list[object] = []

    def run() -> None:
        try:
            results.append(service.run(**kwargs))
        except Exception as exc:
            results.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, results


def test_constructing_the_service_starts_no_thread(kafka_bootstrap: str, tmp_path: Path) -> None:
    before = device_threads()

    CategorizerService(settings_for(kafka_bootstrap, tmp_path), FixedModel(StandInModel()))

    assert device_threads() == before


def test_the_gil_switch_interval_is_restored_when_the_service_returns(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    service = CategorizerService(settings_for(kafka_bootstrap, tmp_path), FixedModel(StandInModel()))
    service.stop()

    service.run()

    assert sys.getswitchinterval() == pytest.approx(OUR_INTERVAL_S)


def test_a_failing_service_restores_the_switch_interval_and_stops_its_device_thread(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = settings_for(kafka_bootstrap, tmp_path)
    produce_values(events(1), settings)
    before = device_threads()

    with pytest.raises(DeviceFailure):
        CategorizerService(settings, FixedModel(StandInModel(device_error=True))).run(until_records=1)

    assert sys.getswitchinterval() == pytest.approx(OUR_INTERVAL_S)
    assert device_threads() == before


def test_running_categorizer_leaves_the_switch_interval_as_it_found_it(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with running_categorizer(settings_for(kafka_bootstrap, tmp_path), StandInModel()):
        pass

    assert sys.getswitchinterval() == pytest.approx(OUR_INTERVAL_S)


def test_an_idle_device_takes_a_lone_title_without_waiting_for_its_window(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # A window that would hold the title a minute: only an idle device taking it at once ends the run.
    settings = settings_for(kafka_bootstrap, tmp_path, max_wait_ms=60_000)
    produce_values(events(1), settings)
    service = CategorizerService(settings, FixedModel(StandInModel()))

    thread, results = run_in_thread(service, until_records=1)
    thread.join(WAIT_S)
    finished_alone = not thread.is_alive()
    service.stop()
    thread.join(WAIT_S)

    assert finished_alone, "the title waited for its window with the device idle"
    assert isinstance(results[0], RunSummary) and results[0].enriched == 1


def test_a_hung_device_does_not_hold_the_stop_past_its_deadline_and_nothing_is_committed(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = settings_for(kafka_bootstrap, tmp_path, shutdown_timeout_s=1.0)
    produce_values(events(10), settings)
    hang = threading.Event()
    hung = StandInModel(hang=hang)
    service = CategorizerService(settings, FixedModel(hung))
    thread, results = run_in_thread(service)
    try:
        deadline = time.monotonic() + WAIT_S
        while not hung.passes and time.monotonic() < deadline:
            time.sleep(0.01)
        service.stop()
        thread.join(WAIT_S / 2)
        stopped = not thread.is_alive()
    finally:
        hang.set()
        thread.join(WAIT_S)

    assert stopped, "the stop waited on the hung device"
    assert isinstance(results[0], DeviceFailure) and "hung" in str(results[0])
    # Nothing was committed: a healthy member gets all ten again.
    again = CategorizerService(settings, FixedModel(StandInModel())).run(until_records=10)
    assert again.consumed == 10
