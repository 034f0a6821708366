"""SQLite's fast lanes (store/contract/lanes.py): the leader's writes. The file's one write lock
orders them with the submits that take a slot."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from . import lane_queries as lq


class SQLiteLanes:
    """Mixed into SQLiteStore."""

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def _read(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        raise NotImplementedError

    def lane_close(self) -> None:
        with self._write() as tx:
            tx.execute(lq.CLOSE)

    def lane_open(self, slots: Mapping[str, int], until: float) -> None:
        with self._write() as tx:
            tx.executemany(lq.OPEN, [(pool, slots[pool], until) for pool in sorted(slots)])

    def lane_slots(self, now: float) -> dict[str, int]:
        return {pool: int(slots) for pool, slots in self._read(lq.SLOTS, {"now": now})}
