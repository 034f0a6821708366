"""Bulk cancel and retry on SQLite (the contract: store/contract/bulk.py): one immediate
transaction a batch, the states read inside it, the same statements as one task's cancel and
retry. Mixed into SQLiteStore."""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager

from ...codec import dumps
from ...errors import TransitionRefused
from ...lifecycle import State
from ...moves import plan_cancel, plan_retry
from ..contract.bulk import BulkOutcome, BulkParams
from ..rows import NO_AGING
from . import queries as q


class SQLiteBulk:
    """Mixed into SQLiteStore."""

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def task_cancel_many(self, params: BulkParams) -> BulkOutcome:
        out = BulkOutcome([], [], [])
        with self._write() as tx:
            found = _states(tx, params)
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
                    tx.execute(q.REQUEST_CANCEL, {"id": task_id})
                    out.requested.append(task_id)
                else:
                    args = {"id": task_id, "now": params.now, "expected": str(plan.before)}
                    tx.execute(q.CANCEL_NOW, args)
                    out.changed.append(task_id)
                tx.execute(q.INSERT_EVENT, plan.event)
        return out

    def task_retry_many(self, params: BulkParams) -> BulkOutcome:
        out = BulkOutcome([], [], [])
        with self._write() as tx:
            found = _states(tx, params)
            for task_id in params.ids:
                state, attempt = found.get(task_id, (None, 0))
                if state is None or state not in params.states:
                    out.skipped.append(task_id)
                    continue
                try:
                    event = plan_retry(task_id, state, attempt, params.now)
                    args = {"id": task_id, "now": params.now, "expected": str(state),
                            "no_aging": NO_AGING}  # fmt: skip
                    tx.execute(q.RETRY, args)  # a failed statement is undone alone
                except (TransitionRefused, sqlite3.IntegrityError):
                    out.skipped.append(task_id)  # not retryable, or its dedup key is held
                    continue
                tx.execute(q.INSERT_EVENT, event)
                out.changed.append(task_id)
        return out


def _states(tx: sqlite3.Connection, params: BulkParams) -> dict[int, tuple[State, int]]:
    rows = tx.execute(q.TASK_STATES_ATTEMPTS, {"ids": dumps(list(params.ids))}).fetchall()
    return {int(i): (State(s), int(a)) for i, s, a in rows}
