"""The device worker alone, with a strict stand-in for the serving model: what a failing or
hung device does to it."""

from __future__ import annotations

import threading

import pytest

from prodcat.consumer.classify.device import DeviceBatch, DeviceFailure, DeviceWorker
from prodcat.model.runtime import ServingModel
from tests.faults import POISON_ID as POISON
from tests.faults import StandInModel

WAIT_S = 30.0


def batch(model: ServingModel, rows: list[list[int]]) -> DeviceBatch[int]:
    return DeviceBatch(
        model=model, rows=rows, items=list(range(len(rows))), padded_tokens=len(rows), real_tokens=len(rows)
    )


def collect_one(worker: DeviceWorker[int]) -> object:
    """The first completion, or the error the worker raised instead."""
    try:
        (completion,) = worker.collect(WAIT_S)
    except DeviceFailure as exc:
        return exc
    return completion


def test_a_failing_batch_on_a_healthy_device_is_halved_down_to_the_failing_row() -> None:
    model = StandInModel()
    worker: DeviceWorker[int] = DeviceWorker(top_k=1)
    rows = [[1]] * 8
    rows[5] = [POISON]

    worker.submit(batch(model, rows))
    (completion,) = worker.collect(WAIT_S)
    worker.close(WAIT_S)

    assert list(completion.failures) == [5]
    assert completion.indices[4] == [0]


def test_a_device_error_stops_the_worker_without_halving() -> None:
    model = StandInModel(device_error=True)
    worker: DeviceWorker[int] = DeviceWorker(top_k=1)

    worker.submit(batch(model, [[1]] * 8))
    outcome = collect_one(worker)
    worker.close(WAIT_S)

    assert isinstance(outcome, DeviceFailure)
    assert model.passes == [8]


def test_a_failing_batch_on_a_device_that_fails_its_health_check_is_not_halved() -> None:
    model = StandInModel(healthy=False)
    worker: DeviceWorker[int] = DeviceWorker(top_k=1)
    rows = [[1]] * 8
    rows[0] = [POISON]

    worker.submit(batch(model, rows))
    outcome = collect_one(worker)
    worker.close(WAIT_S)

    assert isinstance(outcome, DeviceFailure) and "health check" in str(outcome)
    assert model.passes == [8]


def test_close_gives_up_on_a_hung_device_at_its_deadline() -> None:
    hang = threading.Event()
    model = StandInModel(hang=hang)
    worker: DeviceWorker[int] = DeviceWorker(top_k=1)
    # One batch running, one waiting in the slot: close cannot even hand over its stop.
    worker.submit(batch(model, [[1]]))
    worker.submit(batch(model, [[1]]))
    closed: list[bool] = []
    closing = threading.Thread(target=lambda: closed.append(worker.close(0.2)))

    closing.start()
    closing.join(WAIT_S / 2)
    hang.set()

    assert not closing.is_alive(), "close() waited past its deadline"
    assert closed == [False]


def test_close_after_the_batches_ran_stops_the_thread() -> None:
    worker: DeviceWorker[int] = DeviceWorker(top_k=1)
    worker.submit(batch(StandInModel(), [[1]]))
    worker.collect(WAIT_S)

    assert worker.close(WAIT_S) is True


@pytest.mark.parametrize("text", ["CUDA error: misaligned address", "device-side assert triggered"])
def test_errors_that_name_the_device_are_device_errors(text: str) -> None:
    from prodcat.consumer.classify.device import is_device_error

    assert is_device_error(RuntimeError(text))
    assert not is_device_error(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"))
