"""Bulk cancel and retry on PostgreSQL (the contract: store/contract/bulk.py): one durable
transaction a batch, its rows locked in id order (two bulks over the same tasks can't deadlock),
the same statements as one task's cancel and retry; a retry whose dedup key another unfinished
task holds is undone alone (a savepoint) and skipped. Mixed into PostgresStore."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import psycopg

from ...errors import TransitionRefused
from ...lifecycle import State
from ...moves import plan_cancel, plan_retry
from ..contract.bulk import BulkOutcome, BulkParams
from ..rows import NO_AGING
from . import queries as q


class PostgresBulk:
    """Mixed into PostgresStore."""

    def _tx(self, durable: bool = False) -> AbstractContextManager[psycopg.Connection[Any]]:
        raise NotImplementedError

    def task_cancel_many(self, params: BulkParams) -> BulkOutcome:
        out = BulkOutcome([], [], [])
        with self._tx(durable=True) as conn:
            found = _states(conn, params)
            for task_id in params.ids:
                state, attempt = found.get(task_id, (None, 0))
                if state is None or state not in params.states:
                    out.skipped.append(task_id)
                    continue
                try:
                    plan = plan_cancel(task_id, state, attempt, params.now)
                except TransitionRefused:
                    out.skipped.append(task_id)
                    continue
                if plan.after is None:
                    conn.execute(q.REQUEST_CANCEL, {"id": task_id})
                    conn.execute(q.NOTIFY, (q.CHANNEL_WORKERS, f"cancel:{task_id}"))
                    out.requested.append(task_id)
                else:
                    args = {"id": task_id, "now": params.now, "expected": str(plan.before)}
                    conn.execute(q.CANCEL_NOW, args)
                    out.changed.append(task_id)
                conn.execute(q.INSERT_EVENT, plan.event)
        return out

    def task_retry_many(self, params: BulkParams) -> BulkOutcome:
        out = BulkOutcome([], [], [])
        with self._tx(durable=True) as conn:
            found = _states(conn, params)
            for task_id in params.ids:
                state, attempt = found.get(task_id, (None, 0))
                if state is None or state not in params.states:
                    out.skipped.append(task_id)
                    continue
                try:
                    event = plan_retry(task_id, state, attempt, params.now)
                    args = {"id": task_id, "now": params.now, "expected": str(state),
                            "no_aging": NO_AGING}  # fmt: skip
                    with conn.transaction():  # a savepoint: a conflict undoes this task alone
                        conn.execute(q.RETRY, args)
                except (TransitionRefused, psycopg.errors.UniqueViolation):
                    out.skipped.append(task_id)
                    continue
                conn.execute(q.INSERT_EVENT, event)
                out.changed.append(task_id)
            if out.changed:
                conn.execute(q.NOTIFY, (q.CHANNEL_SCHEDULER, ""))
        return out


def _states(conn: psycopg.Connection[Any], params: BulkParams) -> dict[int, tuple[State, int]]:
    rows = conn.execute(q.TASK_STATES_FOR_UPDATE, {"ids": list(params.ids)}).fetchall()
    return {int(i): (State(s), int(a)) for i, s, a in rows}
