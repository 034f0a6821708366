"""SQLite's hooks of the bulk transitions (written once in store/bulk.py): an immediate
transaction; a retry whose dedup key is held fails alone (a failed statement is undone by
itself); the wake-ups queued to go once it commits: a cancel request to the workers, new ready
tasks to the scheduler."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from ...codec import dumps
from ...lifecycle import State
from ..bulk import NamedBulk
from ..contract import SCHEDULER_CHANNEL, WORKERS_CHANNEL
from . import queries as q


class SQLiteBulk(NamedBulk):
    """Mixed into SQLiteStore."""

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def _notice(self, channel: str, payload: str = "") -> None:
        raise NotImplementedError

    def _bulk_tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._write()

    def _bulk_states(self, tx: sqlite3.Connection, ids: Sequence[int]
                     ) -> dict[int, tuple[State, int]]:  # fmt: skip
        rows = tx.execute(q.TASK_STATES_ATTEMPTS, {"ids": dumps(list(ids))}).fetchall()
        return {int(i): (State(s), int(a)) for i, s, a in rows}

    def _bulk_retry_one(self, tx: sqlite3.Connection, args: dict[str, Any]) -> bool:
        try:
            tx.execute(q.RETRY, args)
        except sqlite3.IntegrityError:
            return False
        return True

    def _bulk_cancel_requested(self, tx: sqlite3.Connection, task_id: int) -> None:
        self._notice(WORKERS_CHANNEL, f"cancel:{task_id}")

    def _bulk_made_ready(self, tx: sqlite3.Connection) -> None:
        self._notice(SCHEDULER_CHANNEL)
