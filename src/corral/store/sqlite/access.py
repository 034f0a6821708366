"""SQLite's hook of the access store (written once in store/access.py): an immediate write."""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager

from ..access import NamedAccess
from . import access_queries


class SQLiteAccess(NamedAccess):
    """Mixed into SQLiteStore."""

    access_queries = access_queries

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def _access_tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._write()
