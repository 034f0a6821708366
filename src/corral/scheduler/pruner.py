"""Pruner: a leader service that deletes finished history older than its retention.

Which rows may go is corral.retention's rule; the store executes it in one transaction of at
most `batch` tasks (with their attempts, events, logs, links, submit ids and emptied workflows),
the oldest first. Cost per run follows the batch, never the history: the candidates come from an
index on (finished_at) of finished tasks, and every "still needed" check is an index probe per
candidate. A backlog of old history drains one batch per interval, so pruning never holds the
store's write lock for long. Schedule fires and ended backfills are pruned the same way, in a
transaction of their own (candidates from an index on when a fire was made). On PostgreSQL a run
also makes the day partitions of the history ahead of their rows and drops whole days that the
rule lets go (store/postgres/partitions.py).
"""

from __future__ import annotations

from ..retention import DEFAULT_BATCH, plan
from ..store import Store

DEFAULT_INTERVAL = 60.0


class Pruner:
    name = "prune"

    def __init__(
        self, store: Store, *, interval: float = DEFAULT_INTERVAL, batch: int = DEFAULT_BATCH
    ) -> None:
        self.store = store
        self.interval = interval
        self.batch = batch

    def run(self, now: float) -> int:
        """Prune one batch of tasks and one of schedule fires (and ended backfills) at `now`;
        return how many rows went."""
        rule = plan(self.store.retention_get(), now, self.batch)
        return self.store.task_prune(rule) + self.store.fire_prune(rule)
