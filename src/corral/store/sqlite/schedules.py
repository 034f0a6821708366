"""SQLite's hooks of the schedule store (written once in store/schedules.py): every write is an
immediate transaction, a list parameter is JSON text for json_each, a link is a row each."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager

from ...codec import dumps
from ..schedules import NamedSchedules
from . import queries as q
from . import schedule_queries


class SQLiteSchedules(NamedSchedules[sqlite3.Connection]):
    """Mixed into SQLiteStore."""

    schedule_queries = schedule_queries

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def _schedule_tx(self, durable: bool = False) -> AbstractContextManager[sqlite3.Connection]:
        return self._write()  # one kind of write transaction: `durable` changes nothing here

    def _list_param(self, values: Sequence[str]) -> str:
        return dumps(list(values))

    def _link_workflow(self, tx: sqlite3.Connection, workflow_id: int, task_ids: list[int]) -> None:
        tx.executemany(q.INSERT_WORKFLOW_LINK, [(workflow_id, i) for i in task_ids])
