"""Which offsets are safe to commit.

Offsets are tracked per partition in consume order; an offset becomes committable only
when it and every earlier tracked offset of its partition have been acknowledged by the
broker, so a crash can re-emit work but never skip it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

TopicPartitionKey = tuple[str, int]


@dataclass(slots=True)
class _PartitionState:
    in_flight: deque[int] = field(default_factory=deque)
    done: set[int] = field(default_factory=set)
    committable: int | None = None
    committed: int | None = None


class OffsetTracker:
    def __init__(self) -> None:
        self._partitions: dict[TopicPartitionKey, _PartitionState] = {}

    def track(self, tp: TopicPartitionKey, offset: int) -> None:
        self._partitions.setdefault(tp, _PartitionState()).in_flight.append(offset)

    def mark_done(self, tp: TopicPartitionKey, offset: int) -> None:
        state = self._partitions.get(tp)
        if state is None:
            # The partition was revoked while the record was in flight; its new owner redoes it.
            return
        state.done.add(offset)
        while state.in_flight and state.in_flight[0] in state.done:
            head = state.in_flight.popleft()
            state.done.discard(head)
            state.committable = head + 1

    def pending(self) -> int:
        return sum(len(s.in_flight) for s in self._partitions.values())

    def to_commit(self, partitions: set[TopicPartitionKey] | None = None) -> dict[TopicPartitionKey, int]:
        """Next offsets to commit (Kafka's convention: last done + 1) that moved since the last commit."""
        return {
            tp: s.committable
            for tp, s in self._partitions.items()
            if s.committable is not None
            and s.committable != s.committed
            and (partitions is None or tp in partitions)
        }

    def committed(self, offsets: dict[TopicPartitionKey, int]) -> None:
        for tp, offset in offsets.items():
            if tp in self._partitions:
                self._partitions[tp].committed = offset

    def forget(self, partitions: set[TopicPartitionKey]) -> None:
        for tp in partitions:
            self._partitions.pop(tp, None)
