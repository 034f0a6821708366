"""The clean-ups on SQLite (corral.cleanup, the contract in store/contract/cleanups.py): their
rows written with a bad end's report, claimed, ended. Mixed into SQLiteStore."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from ...codec import dumps
from ...model import AttemptReport, ClaimedCleanup, CleanupRecord
from ..contract import SCHEDULER_CHANNEL
from ..contract.cleanups import CleanupClaimParams, CleanupEndParams
from ..rows import claimed_cleanup, cleanup_end_event
from . import cleanup_queries as cq


def write_cleanups(tx: sqlite3.Connection, reports: Sequence[AttemptReport], now: float) -> None:
    """In a report's transaction: the clean-up rows of the recorded reports that carry a
    reason (none, and no statement, for task types without a clean-up)."""
    rows = [
        {"id": r.task_id, "attempt": r.attempt, "reason": r.cleanup, "release_at": r.retry_at,
         "now": now}
        for r in reports
        if r.cleanup is not None
    ]  # fmt: skip
    if rows:
        tx.executemany(cq.INSERT_CLEANUP, rows)
        tx.executemany(cq.CLEAR_SHARED, rows)


class SQLiteCleanups:
    """Mixed into SQLiteStore."""

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def _notice(self, channel: str, payload: str = "") -> None:
        raise NotImplementedError

    def _read(self, sql: str, params: Any = ()) -> list[Any]:
        raise NotImplementedError

    def cleanup_claim(self, params: CleanupClaimParams) -> list[ClaimedCleanup]:
        if not params.task_names or params.limit < 1:
            return []
        args = {"worker": params.worker_id, "lease": params.lease_until, "now": params.now,
                "names": dumps(list(params.task_names)), "limit": params.limit}  # fmt: skip
        if not self._read(cq.ANY_DUE, args):
            return []  # the common answer, without the write lock
        with self._write() as tx:
            rows = tx.execute(cq.CLAIM_CLEANUPS, args).fetchall()
            if not rows:
                return []
            ids = dumps(sorted({r[1] for r in rows}))
            tasks = {t[0]: t[1:] for t in tx.execute(cq.CLEANUP_TASKS, {"ids": ids})}
        return [claimed_cleanup(r, tasks.get(r[1])) for r in sorted(rows)]

    def cleanup_end(self, params: CleanupEndParams) -> bool:
        args = {"id": params.cleanup_id, "worker": params.worker_id, "error": params.error,
                "now": params.now}  # fmt: skip
        with self._write() as tx:
            if params.state == "pending":
                retry = args | {"next_try_at": params.next_try_at}
                return tx.execute(cq.RETRY_CLEANUP, retry).rowcount == 1
            row = tx.execute(cq.END_CLEANUP, args | {"state": params.state}).fetchone()
            if row is None:
                return False
            release = {"id": row[0], "attempt": row[1], "release_at": row[4], "now": params.now}
            if tx.execute(cq.RELEASE_HELD, release).rowcount:
                self._notice(SCHEDULER_CHANNEL)  # a held retry is due: the resolver releases it
            event = cleanup_end_event(params.state, params.error, params.now, row)
            tx.execute(cq.CLEANUP_EVENT, event)
            return True

    def cleanup_unfinished(self, limit: int) -> list[CleanupRecord]:
        return [CleanupRecord(*row) for row in self._read(cq.UNFINISHED_CLEANUPS, (limit,))]

    def cleanup_list(self, task_id: int) -> list[CleanupRecord]:
        return [CleanupRecord(*row) for row in self._read(cq.LIST_CLEANUPS, (task_id,))]
