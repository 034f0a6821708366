"""Event consumers' own rows on SQLite: created at the head of the feed, listed, retired. (Their
leases and cursors: store.py's consumer_acquire, consumer_advance, consumer_release.)"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from typing import Any

from ...model import ConsumerRecord
from . import consumer_queries as cq
from . import queries as q


class SQLiteConsumers:
    """Mixed into SQLiteStore."""

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def _read(self, sql: str, params: Any = ()) -> list[Any]:
        raise NotImplementedError

    def consumer_create(self, name: str, at_head: bool) -> None:
        if self._read(cq.CONSUMER_EXISTS, (name,)):
            return  # the common case, without a write
        with self._write() as tx:
            tx.execute(cq.ADD_CONSUMER_AT_HEAD if at_head else q.ADD_CONSUMER, {"name": name})

    def consumer_list(self) -> list[ConsumerRecord]:
        return [
            ConsumerRecord(name, holder, float(lease), (int(xid), int(cursor)))
            for name, holder, lease, xid, cursor in self._read(cq.LIST_CONSUMERS)
        ]

    def consumer_retire(self, name: str, now: float) -> bool:
        with self._write() as tx:
            return tx.execute(cq.RETIRE_CONSUMER, {"name": name, "now": now}).rowcount == 1
