"""The clean-ups on PostgreSQL (corral.cleanup, the contract in store/contract/cleanups.py): their
rows written with a bad end's report, claimed, ended. Mixed into PostgresStore."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

import psycopg

from ...model import AttemptReport, ClaimedCleanup, CleanupRecord
from ..contract.cleanups import CleanupClaimParams, CleanupEndParams
from ..rows import claimed_cleanup, cleanup_end_event
from . import cleanup_queries as cq
from . import queries as q


def write_cleanups(
    conn: psycopg.Connection[Any], reports: Sequence[AttemptReport], recorded: Sequence[int],
    now: float,
) -> None:  # fmt: skip
    """In the reports' transaction: the clean-up rows of the recorded reports that carry a
    reason (none, and no statement, for task types without a clean-up)."""
    done = set(recorded)
    rows = [r for r in reports if r.cleanup is not None and r.task_id in done]
    if not rows:
        return
    conn.execute(cq.INSERT_CLEANUPS, {
        "ids": [r.task_id for r in rows], "attempts": [r.attempt for r in rows],
        "reasons": [r.cleanup for r in rows], "release_at": [r.retry_at for r in rows],
        "now": now,
    })  # fmt: skip


class PostgresCleanups:
    """Mixed into PostgresStore."""

    def _tx(self, durable: bool = False) -> AbstractContextManager[psycopg.Connection[Any]]:
        raise NotImplementedError

    def _read(self, query: str, params: Any = None) -> list[Any]:
        raise NotImplementedError

    def cleanup_claim(self, params: CleanupClaimParams) -> list[ClaimedCleanup]:
        if not params.task_names or params.limit < 1:
            return []
        args = {"worker": params.worker_id, "lease": params.lease_until, "now": params.now,
                "names": list(params.task_names), "limit": params.limit}  # fmt: skip
        with self._tx(durable=True) as conn:
            rows = conn.execute(cq.CLAIM_CLEANUPS, args).fetchall()
        return [claimed_cleanup(r[:7], None if r[7] is None else r[7:]) for r in rows]

    def cleanup_end(self, params: CleanupEndParams) -> bool:
        args = {"id": params.cleanup_id, "worker": params.worker_id, "error": params.error,
                "now": params.now}  # fmt: skip
        with self._tx(durable=True) as conn:
            if params.state == "pending":
                retry = args | {"next_try_at": params.next_try_at}
                return conn.execute(cq.RETRY_CLEANUP, retry).rowcount == 1
            row = conn.execute(cq.END_CLEANUP, args | {"state": params.state}).fetchone()
            if row is None:
                return False
            conn.execute(cq.CLEANUP_EVENT, cleanup_end_event(params.state, params.error,
                                                             params.now, row))  # fmt: skip
            if row[4]:  # a held retry is due: the resolver releases it
                conn.execute(q.NOTIFY, (q.CHANNEL_SCHEDULER, ""))
            return True

    def cleanup_unfinished(self, limit: int) -> list[CleanupRecord]:
        return [CleanupRecord(*row) for row in self._read(cq.UNFINISHED_CLEANUPS, (limit,))]

    def cleanup_list(self, task_id: int) -> list[CleanupRecord]:
        return [CleanupRecord(*row) for row in self._read(cq.LIST_CLEANUPS, (task_id,))]
