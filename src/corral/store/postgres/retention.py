"""Retention on PostgreSQL: the retention settings, the prune batch (corral.retention's rule) and
the day partitions of the history (partitions.py): a prune run makes the days ahead, prunes one
batch of tasks (leaving their rows in the days to be dropped whole), then, once a batch comes
back short of its size (no backlog of prunable tasks left to hold a day), drops the days that
may go.

Task, event and workflow ids come from sequences, never handed out twice, so unlike SQLite the
newest rows need not be kept."""

from __future__ import annotations

import math
from contextlib import AbstractContextManager
from typing import Any

import psycopg

from ...retention import DAY, PrunePlan, Retention, from_rows
from ..pruning import prune_batch, prune_fires
from . import retention_queries as rq
from .partitions import days, drop_days, make_days_ahead


class PostgresRetention:
    """Mixed into PostgresStore."""

    def _tx(self, durable: bool = False) -> AbstractContextManager[psycopg.Connection[Any]]:
        raise NotImplementedError

    def _read(self, query: str, params: Any = None) -> list[Any]:
        raise NotImplementedError

    def retention_get(self) -> Retention:
        return from_rows({name: float(kept) for name, kept in self._read(rq.GET_RETENTION)})

    def retention_set(self, task_name: str, seconds: float | None) -> None:
        with self._tx(durable=True) as tx:
            if seconds is None:
                tx.execute(rq.UNSET_RETENTION, (task_name,))
            else:
                tx.execute(rq.SET_RETENTION, (task_name, seconds))

    def task_prune(self, plan: PrunePlan) -> int:
        with self._tx() as tx:
            existing = days(tx)
        make_days_ahead(self._tx, plan, existing)
        candidates = [d for d in existing if plan.may_drop(d.start)]
        with self._tx() as tx:
            slowest = tx.execute(rq.SLOWEST_CURSOR).fetchone()
            common = {
                "has_consumer": slowest is not None,
                "cursor_xid": slowest[0] if slowest else 0,
                "cursor_id": slowest[1] if slowest else 0,
                "line": max((d.start + DAY for d in candidates), default=-math.inf),
            }
            pruned = prune_batch(tx, rq, plan, common, list)
        if pruned < plan.batch:  # the backlog is pruned: only now may the old days be free
            cursor = (int(slowest[0]), int(slowest[1])) if slowest else None
            drop_days(self._tx, candidates, cursor)
        return pruned

    def fire_prune(self, plan: PrunePlan) -> int:
        with self._tx() as tx:
            return prune_fires(tx, rq, plan, list)
