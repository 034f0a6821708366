"""Joining a caller's transaction: the one typed adapter through which a caller's own connection
reaches a store (`submit(connection=...)`), checked once where it is made."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ...errors import ConfigError

if TYPE_CHECKING:
    import psycopg

Backend = Literal["sqlite", "postgresql"]


@dataclass(frozen=True, slots=True)
class JoinedTransaction:
    """A caller's open transaction on the store's database; a store writes in it and never
    commits it. Made by `join`, which checks what it wraps."""

    backend: Backend
    connection: Any

    def sqlite(self) -> sqlite3.Connection:
        """The SQLite connection, for the SQLite store."""
        if self.backend != "sqlite":
            raise ConfigError("connection= must be a sqlite3 connection on a SQLite store")
        conn: sqlite3.Connection = self.connection
        if not conn.in_transaction:
            raise ConfigError("submit with connection= needs a transaction open on it")
        return conn

    def postgres(self) -> psycopg.Connection[Any]:
        """The psycopg connection, for the PostgreSQL store."""
        if self.backend != "postgresql":
            raise ConfigError("connection= must be a psycopg connection on a PostgreSQL store")
        conn: psycopg.Connection[Any] = self.connection
        if conn.closed:
            raise ConfigError("connection= is closed")
        return conn


def join(connection: object) -> JoinedTransaction | None:
    """The adapter of a caller's `connection` (None: none given): a sqlite3.Connection or a
    psycopg.Connection; anything else is refused, naming the field."""
    if connection is None:
        return None
    if isinstance(connection, sqlite3.Connection):
        return JoinedTransaction("sqlite", connection)
    if type(connection).__module__.startswith("psycopg"):
        import psycopg

        if isinstance(connection, psycopg.Connection):
            return JoinedTransaction("postgresql", connection)
    raise ConfigError(
        "connection= must be a sqlite3.Connection or a psycopg.Connection in an open "
        f"transaction, got {type(connection).__name__}"
    )
