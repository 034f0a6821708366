"""SQLite's hook of the alert store (written once in store/alerts.py): an immediate write."""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager

from ..alerts import NamedAlerts
from . import alert_queries


class SQLiteAlerts(NamedAlerts):
    """Mixed into SQLiteStore."""

    alert_queries = alert_queries

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def _alert_tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._write()
