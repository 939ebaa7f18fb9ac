"""The poll scheduler: one round of the Kafka thread, and the drain before revoke and close.

A round collects what the device finished, hands it batches while it has room, polls as
many records as there is room for (waiting in the poll only as long as nothing else is
due), lets delivery serve acknowledgements and commit, and swaps in a newly loaded model.
Records polled and not yet acknowledged are bounded, so a broker slow to acknowledge
slows the poll, and a crash re-emits at most about that many. The grouper's window only
waits while the device is busy: an idle device takes what is there at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prodcat.consumer.batcher import Batch, LengthGrouper
from prodcat.consumer.classify.device import BatchWorker, DeviceBatch, DeviceFailure
from prodcat.consumer.classify.provider import ModelSource
from prodcat.consumer.delivery import Delivery
from prodcat.consumer.engine.dead_letters import Ref
from prodcat.consumer.engine.intake import Intake
from prodcat.consumer.engine.records import Encoded
from prodcat.consumer.engine.release import Completions
from prodcat.consumer.engine.shadowing import ShadowStage
from prodcat.consumer.source import KafkaSource

IDLE_POLL_S = 0.1
# While batches are on the device the loop comes round at least this often to collect them.
BUSY_POLL_S = 0.001
# Records taken per poll, in batches: small enough that batches reach the device between polls.
POLL_BATCHES = 2
# Records polled but not yet acknowledged, in windows: one gathering, one cut, one in flight.
UNACKNOWLEDGED_WINDOWS = 3


class Scheduler:
    def __init__(
        self,
        *,
        source: KafkaSource,
        delivery: Delivery[Ref],
        worker: BatchWorker[Encoded],
        grouper: LengthGrouper[Encoded],
        intake: Intake,
        completions: Completions,
        models: ModelSource,
        on_model: Callable[[], None],
        on_records: Callable[[int], None],
        max_batch_size: int,
        window_size: int,
        shadow: ShadowStage | None = None,
    ) -> None:
        """`on_model` hears of a swapped-in model; `on_records` of each non-empty poll's size;
        `shadow` (only when shadowing is on) samples batches for the candidate and judges them."""
        self._source = source
        self._delivery = delivery
        self._worker = worker
        self._grouper = grouper
        self._intake = intake
        self._completions = completions
        self._models = models
        self._on_model = on_model
        self._on_records = on_records
        self._poll_records = max_batch_size * POLL_BATCHES
        self._max_pending = UNACKNOWLEDGED_WINDOWS * window_size
        self._shadow = shadow

    def round(self) -> None:
        worker, grouper, intake = self._worker, self._grouper, self._intake
        intake.collect(0.0)
        # With no room the only thing to wait for is the device; otherwise wait in poll.
        self._collect(IDLE_POLL_S if grouper.room() == 0 else 0.0)
        self._dispatch()
        room = min(grouper.room() - intake.tokenizing, self._max_pending - self._delivery.pending())
        if room > 0:
            if worker.outstanding or intake.tokenizing:
                timeout = BUSY_POLL_S
            else:
                due = grouper.seconds_until_due()
                timeout = IDLE_POLL_S if due is None else min(IDLE_POLL_S, due)
            messages = self._source.poll(min(room, self._poll_records), timeout)
            if messages:
                self._on_records(len(messages))
                intake.admit(messages)
                intake.collect(0.0)
                self._dispatch()
        else:
            # No room to poll: wait a moment for acknowledgements (which free room), not in a spin.
            self._delivery.poll(BUSY_POLL_S)
        self._delivery.service()
        if self._models.poll() is not None:
            self._on_model()
            intake.reencode()

    def drain(self, timeout_s: float) -> None:
        """Runs and releases everything held, within `timeout_s`: before revoke and at close.

        Raises `DeviceFailure` when the device does not finish in time; what it held stays
        uncommitted.
        """
        deadline = time.monotonic() + timeout_s
        worker, intake = self._worker, self._intake
        batches: list[Batch[Encoded]] = []
        while True:
            left = deadline - time.monotonic()
            intake.collect(min(IDLE_POLL_S, max(0.0, left)) if intake.tokenizing else 0.0)
            batches += self._grouper.flush()
            if not (batches or worker.outstanding or intake.tokenizing):
                return
            if left <= 0:
                raise DeviceFailure(
                    f"the device did not finish its batches within {timeout_s:g}s; it is hung"
                )
            while batches and worker.has_room():
                self._submit(batches.pop(0))
            self._collect(min(IDLE_POLL_S, left))
            self._delivery.poll(0)

    def _collect(self, timeout_s: float) -> None:
        for completion in self._worker.collect(timeout_s):
            self._completions.complete(completion)
            if self._shadow is not None:
                self._shadow.complete(completion)

    def _dispatch(self) -> None:
        worker, grouper = self._worker, self._grouper
        while worker.has_room():
            batch = grouper.next_batch(idle=worker.outstanding == 0)
            if batch is None:
                return
            self._submit(batch)

    def _submit(self, batch: Batch[Encoded]) -> None:
        device_batch = DeviceBatch(
            model=self._models.current,
            rows=[encoded.ids for encoded in batch.items],
            items=batch.items,
            padded_tokens=batch.padded_tokens,
            real_tokens=batch.real_tokens,
        )
        if self._shadow is not None:
            self._shadow.prepare(device_batch)
        self._worker.submit(device_batch)
