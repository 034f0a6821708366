"""Retention on SQLite: the retention settings and the prune batch (corral.retention's rule)."""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from typing import Any

from ...codec import dumps
from ...retention import PrunePlan, Retention, from_rows
from ..pruning import prune_batch, prune_fires
from . import retention_queries as rq

NO_LIMIT = 2**62
"""A cursor or id above any real one: no consumer, no event."""


class SQLiteRetention:
    """Mixed into SQLiteStore."""

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def _read(self, sql: str, params: Any = ()) -> list[Any]:
        raise NotImplementedError

    def retention_get(self) -> Retention:
        return from_rows({name: float(kept) for name, kept in self._read(rq.GET_RETENTION)})

    def retention_set(self, task_name: str, seconds: float | None) -> None:
        with self._write() as tx:
            if seconds is None:
                tx.execute(rq.UNSET_RETENTION, (task_name,))
            else:
                tx.execute(rq.SET_RETENTION, (task_name, seconds))

    def task_prune(self, plan: PrunePlan) -> int:
        with self._write() as tx:
            cursor = tx.execute(rq.SLOWEST_CURSOR).fetchone()[0]
            newest_task, newest_event = tx.execute(rq.NEWEST_IDS).fetchone()
            common = {
                "cursor": NO_LIMIT if cursor is None else cursor,
                "newest_task": 0 if newest_task is None else newest_task,
                "newest_event": NO_LIMIT if newest_event is None else newest_event,
            }
            return prune_batch(tx, rq, plan, common, dumps)

    def fire_prune(self, plan: PrunePlan) -> int:
        with self._write() as tx:
            return prune_fires(tx, rq, plan, dumps)
