"""The reorder buffer: outputs of one input partition leave in consume order.

Each partition keeps a queue of slots in the order its records were accepted; a batch's
outcomes fill slots in any order, and a partition's head is released only once it and
every slot before it has an outcome.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

from prodcat.consumer.engine.records import Outcome, Slot, Valid
from prodcat.consumer.offsets import TopicPartitionKey


class ReorderBuffer:
    def __init__(self, release: Callable[[list[tuple[Valid, Outcome]]], None]) -> None:
        """`release` gets the finished heads of one partition, in consume order."""
        self._release = release
        self._queues: dict[TopicPartitionKey, deque[Slot]] = {}

    def reserve(self, valid: Valid) -> Slot:
        tp = valid.record.tp
        queue = self._queues.get(tp)
        if queue is None:
            queue = self._queues[tp] = deque()
        slot = Slot(valid)
        queue.append(slot)
        return slot

    def finish(self, finished: Iterable[tuple[Slot, Outcome]]) -> None:
        """Records outcomes, then releases what became ready in each partition touched."""
        partitions = set()
        for slot, outcome in finished:
            slot.outcome = outcome
            partitions.add(slot.valid.record.tp)
        for tp in partitions:
            self._release_ready(tp)

    def _release_ready(self, tp: TopicPartitionKey) -> None:
        queue = self._queues.get(tp)
        ready: list[tuple[Valid, Outcome]] = []
        while queue and queue[0].outcome is not None:
            slot = queue.popleft()
            assert slot.outcome is not None
            ready.append((slot.valid, slot.outcome))
        if ready:
            self._release(ready)

    def forget(self, partitions: Iterable[TopicPartitionKey]) -> None:
        """Drops revoked or lost partitions' queues: nothing of theirs is released after this."""
        for tp in partitions:
            self._queues.pop(tp, None)
