"""PostgreSQL's hooks of the bulk transitions (written once in store/bulk.py): a durable
transaction a batch, its rows locked in id order (two bulks over the same tasks can't deadlock),
a retry whose dedup key another unfinished task holds undone alone (a savepoint), and the
wake-ups: a cancel request to the workers, new ready tasks to the scheduler."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

import psycopg

from ...lifecycle import State
from ..bulk import NamedBulk
from . import queries as q


class PostgresBulk(NamedBulk):
    """Mixed into PostgresStore."""

    def _tx(self, durable: bool = False) -> AbstractContextManager[psycopg.Connection[Any]]:
        raise NotImplementedError

    def _bulk_tx(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        return self._tx(durable=True)

    def _bulk_states(self, tx: psycopg.Connection[Any], ids: Sequence[int]
                     ) -> dict[int, tuple[State, int]]:  # fmt: skip
        rows = tx.execute(q.TASK_STATES_FOR_UPDATE, {"ids": list(ids)}).fetchall()
        return {int(i): (State(s), int(a)) for i, s, a in rows}

    def _bulk_retry_one(self, tx: psycopg.Connection[Any], args: dict[str, Any]) -> bool:
        try:
            with tx.transaction():  # a savepoint: a conflict undoes this task alone
                tx.execute(q.RETRY, args)
        except psycopg.errors.UniqueViolation:
            return False
        return True

    def _bulk_cancel_requested(self, tx: psycopg.Connection[Any], task_id: int) -> None:
        tx.execute(q.NOTIFY, (q.CHANNEL_WORKERS, f"cancel:{task_id}"))

    def _bulk_made_ready(self, tx: psycopg.Connection[Any]) -> None:
        tx.execute(q.NOTIFY, (q.CHANNEL_SCHEDULER, ""))
