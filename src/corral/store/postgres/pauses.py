"""PostgreSQL's hook of the paused-groups store (written once in store/pauses.py): a durable
write, and a resume wakes the scheduler when it commits."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import psycopg

from ..pauses import NamedPauses
from . import pause_queries
from . import queries as q


class PostgresPauses(NamedPauses):
    """Mixed into PostgresStore."""

    pause_queries = pause_queries

    def _tx(self, durable: bool = False) -> AbstractContextManager[psycopg.Connection[Any]]:
        raise NotImplementedError

    def _pause_tx(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        return self._tx(durable=True)

    def _resumed(self, tx: Any) -> None:
        tx.execute(q.NOTIFY, (q.CHANNEL_SCHEDULER, ""))
