"""The rebalance handler: what assignment, revocation and loss of partitions do to the engine.

Revoked partitions are drained (within the deadline) and committed through delivery's
commit sequence before they are let go. Lost ones are forgotten without a commit: their
queued outputs are never produced. After a failure nothing more is committed: a revoke
is then treated as a loss.
"""

from __future__ import annotations

from collections.abc import Callable

from prodcat.consumer.client_config import BrokerHealth
from prodcat.consumer.delivery import Delivery
from prodcat.consumer.engine.dead_letters import Ref
from prodcat.consumer.engine.reorder import ReorderBuffer
from prodcat.consumer.health import Readiness
from prodcat.consumer.offsets import TopicPartitionKey


class RebalanceHandler:
    def __init__(
        self,
        *,
        delivery: Delivery[Ref],
        reorder: ReorderBuffer,
        drain: Callable[[], None],
        assigned: Callable[[], int],
        readiness: Readiness,
        broker: BrokerHealth,
    ) -> None:
        self._delivery = delivery
        self._reorder = reorder
        self._drain = drain
        self._assigned = assigned
        self._readiness = readiness
        self._broker = broker
        self._joined = False
        self.failing = False
        """Set once the engine failed: committing now could record offsets whose output never went out."""

    def on_assign(self, partitions: set[TopicPartitionKey]) -> None:
        self._joined = True
        self._broker.mark_reachable()
        self._changed()

    def on_revoke(self, partitions: set[TopicPartitionKey]) -> None:
        if self.failing:
            self.on_lost(partitions)
            return
        self._drain()
        self._delivery.revoke(partitions)
        self._reorder.forget(partitions)
        self._changed()

    def on_lost(self, partitions: set[TopicPartitionKey]) -> None:
        # Their outputs may still be produced (a duplicate the new owner also makes), never committed.
        self._reorder.forget(partitions)
        self._changed()
        self._delivery.lose(partitions)

    def _changed(self) -> None:
        assigned = self._assigned()
        self._readiness.assigned_partitions = assigned
        self._readiness.group_idle = self._joined and assigned == 0
