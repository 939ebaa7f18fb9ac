"""Which offsets are safe to commit.

Offsets are tracked per partition in consume order; an offset becomes committable only
when it and every earlier tracked offset of its partition are done (their output
acknowledged by the broker; for an offset given more than one output, all of them), so a
crash can re-emit work but never skip it. Whoever
produces an output holds its partition's `PartitionOffsets` directly: an acknowledgement
that arrives after the partition was forgotten marks a detached object and changes
nothing that will ever be committed.
"""

from __future__ import annotations

from collections import deque

TopicPartitionKey = tuple[str, int]


class PartitionOffsets:
    __slots__ = ("awaiting", "committable", "committed", "done", "in_flight")

    def __init__(self) -> None:
        self.in_flight: deque[int] = deque()
        self.done: set[int] = set()
        self.awaiting: dict[int, int] = {}
        """Offsets with more than one output: how many acknowledgements each still needs before its last."""
        self.committable: int | None = None
        self.committed: int | None = None

    def track(self, offset: int) -> None:
        self.in_flight.append(offset)

    def expect(self, offset: int, outputs: int) -> None:
        """The offset is done only once `outputs` of its outputs are acknowledged (default: one)."""
        if outputs > 1:
            self.awaiting[offset] = outputs - 1

    def mark_done(self, offset: int) -> None:
        if self.awaiting:
            left = self.awaiting.get(offset)
            if left is not None:
                if left > 1:
                    self.awaiting[offset] = left - 1
                else:
                    del self.awaiting[offset]
                return
        in_flight = self.in_flight
        if not in_flight or offset < in_flight[0]:
            # Done already (exactly-once: a refused record's dead letter goes out after its
            # first output was counted); keeping it would leave `done` a stale entry.
            return
        if in_flight[0] == offset and not self.done:
            # The common case, outputs acknowledged in consume order.
            in_flight.popleft()
            self.committable = offset + 1
            return
        self.done.add(offset)
        while in_flight and in_flight[0] in self.done:
            head = in_flight.popleft()
            self.done.discard(head)
            self.committable = head + 1


class OffsetTracker:
    def __init__(self) -> None:
        self._partitions: dict[TopicPartitionKey, PartitionOffsets] = {}

    def partition(self, tp: TopicPartitionKey) -> PartitionOffsets:
        state = self._partitions.get(tp)
        if state is None:
            state = self._partitions[tp] = PartitionOffsets()
        return state

    def track(self, tp: TopicPartitionKey, offset: int) -> PartitionOffsets:
        state = self.partition(tp)
        state.track(offset)
        return state

    def pending(self) -> int:
        return sum(len(s.in_flight) for s in self._partitions.values())

    def to_commit(
        self, partitions: set[TopicPartitionKey] | None = None, *, again: bool = False
    ) -> dict[TopicPartitionKey, int]:
        """Next offsets to commit (Kafka's convention: last done + 1) that moved since the last commit.

        `again` includes those already committed: an asynchronous commit may have failed unseen.
        """
        return {
            tp: s.committable
            for tp, s in self._partitions.items()
            if s.committable is not None
            and (again or s.committable != s.committed)
            and (partitions is None or tp in partitions)
        }

    def committed(self, offsets: dict[TopicPartitionKey, int]) -> None:
        for tp, offset in offsets.items():
            state = self._partitions.get(tp)
            if state is not None:
                state.committed = offset

    def commit_again(self, partitions: set[TopicPartitionKey]) -> None:
        """The last commit of these partitions did not take: offer their offsets again."""
        for tp in partitions:
            state = self._partitions.get(tp)
            if state is not None:
                state.committed = None

    def committed_offsets(self) -> dict[TopicPartitionKey, int]:
        return {tp: s.committed for tp, s in self._partitions.items() if s.committed is not None}

    def forget(self, partitions: set[TopicPartitionKey]) -> None:
        for tp in partitions:
            self._partitions.pop(tp, None)
