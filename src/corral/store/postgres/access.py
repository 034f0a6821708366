"""PostgreSQL's hook of the access store (written once in store/access.py): a durable write, so
a token made or revoked, or an audit entry, survives a server crash."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import psycopg

from ..access import NamedAccess
from . import access_queries


class PostgresAccess(NamedAccess):
    """Mixed into PostgresStore."""

    access_queries = access_queries

    def _tx(self, durable: bool = False) -> AbstractContextManager[psycopg.Connection[Any]]:
        raise NotImplementedError

    def _access_tx(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        return self._tx(durable=True)
