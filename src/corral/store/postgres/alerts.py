"""PostgreSQL's hook of the alert store (written once in store/alerts.py): a durable write, so a
notice queued, or a delivery recorded, survives a server crash."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import psycopg

from ..alerts import NamedAlerts
from . import alert_queries


class PostgresAlerts(NamedAlerts):
    """Mixed into PostgresStore."""

    alert_queries = alert_queries

    def _tx(self, durable: bool = False) -> AbstractContextManager[psycopg.Connection[Any]]:
        raise NotImplementedError

    def _alert_tx(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        return self._tx(durable=True)
