"""Event consumers' own rows on PostgreSQL: created at the head of the feed, listed, retired.
(Their leases and cursors: store.py's consumer_acquire, consumer_advance, consumer_release.)"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import psycopg

from ...model import ConsumerRecord
from . import consumer_queries as cq
from . import queries as q


class PostgresConsumers:
    """Mixed into PostgresStore."""

    def _tx(self, durable: bool = False) -> AbstractContextManager[psycopg.Connection[Any]]:
        raise NotImplementedError

    def _read(self, query: str, params: Any = None) -> list[Any]:
        raise NotImplementedError

    def consumer_create(self, name: str, at_head: bool) -> None:
        if self._read(cq.CONSUMER_EXISTS, (name,)):
            return  # the common case, without a write
        with self._tx() as tx:
            if not at_head:
                tx.execute(q.ADD_CONSUMER, {"name": name})
                return
            # The head is read before this transaction writes (it then has no xid of its own).
            head = tx.execute(cq.FEED_HEAD, {}).fetchone()
            assert head is not None
            tx.execute(cq.ADD_CONSUMER_AT, {"name": name, "xid": int(head[0])})

    def consumer_list(self) -> list[ConsumerRecord]:
        return [
            ConsumerRecord(name, holder, float(lease), (int(xid), int(cursor)))
            for name, holder, lease, xid, cursor in self._read(cq.LIST_CONSUMERS)
        ]

    def consumer_retire(self, name: str, now: float) -> bool:
        with self._tx() as tx:
            return tx.execute(cq.RETIRE_CONSUMER, {"name": name, "now": now}).fetchone() is not None
