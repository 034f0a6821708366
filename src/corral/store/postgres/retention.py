"""Retention on PostgreSQL: the retention settings and the prune batch (corral.retention's rule).

Task, event and workflow ids come from sequences, never handed out twice, so unlike SQLite the
newest rows need not be kept."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import psycopg

from ...retention import PrunePlan, Retention, from_rows
from . import retention_queries as rq


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
            slowest = tx.execute(rq.SLOWEST_CURSOR).fetchone()
            common = {
                "has_consumer": slowest is not None,
                "cursor_xid": slowest[0] if slowest else 0,
                "cursor_id": slowest[1] if slowest else 0,
            }
            rows: list[Any] = []
            for name, cutoff in plan.per_type.items():
                left = plan.batch - len(rows)
                if left <= 0:
                    break
                params = {**common, "name": name, "cutoff": cutoff, "limit": left}
                rows += tx.execute(rq.PRUNABLE_OF_TYPE, params).fetchall()
            left = plan.batch - len(rows)
            if left > 0:
                params = {
                    **common,
                    "own": sorted(plan.per_type),
                    "cutoff": plan.default_cutoff,
                    "limit": left,
                }
                rows += tx.execute(rq.PRUNABLE_DEFAULT, params).fetchall()
            if not rows:
                return 0
            ids = [r[0] for r in rows]
            linked = [r[0] for r in tx.execute(rq.LINKED_WORKFLOWS, {"ids": ids}).fetchall()]
            for statement in (
                rq.PRUNE_LOGS,
                rq.PRUNE_EVENTS,
                rq.PRUNE_ATTEMPTS,
                rq.PRUNE_DEPS,
                rq.PRUNE_DEPENDENTS,
                rq.PRUNE_LINKS,
                rq.PRUNE_TASKS,
            ):
                tx.execute(statement, {"ids": ids})
            tx.execute(rq.PRUNE_SUBMITS, {"times": sorted({r[2] for r in rows})})
            workflows = sorted({r[1] for r in rows if r[1] is not None} | set(linked))
            tx.execute(rq.PRUNE_EMPTY_WORKFLOW_LINKS, {"ids": workflows})
            tx.execute(rq.PRUNE_EMPTY_WORKFLOWS, {"ids": workflows})
            return len(rows)
