"""Describing a PostgreSQL corral database from its catalog (see corral.store.schema)."""

from __future__ import annotations

from typing import Any

import psycopg

from ...errors import DatabaseError
from ..schema import Column, Schema, Table
from . import catalog_queries as q


def describe(url: str) -> Schema:
    """The schema of corral's objects in the database behind `url`."""
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            version = _one(conn, q.SCHEMA_VERSION)[0][0]
            sequences = [f"CREATE SEQUENCE {n} AS {t}" for n, t in _one(conn, q.SEQUENCES)]
            functions = [_function(text) for (text,) in _one(conn, q.FUNCTIONS)]
            tables = tuple(_table(conn, *row) for row in _one(conn, q.TABLES))
    except psycopg.Error as exc:
        raise DatabaseError(f"can't read the corral schema: {exc}") from None
    return Schema("postgres", version, (*sequences, *functions), tables)


def _one(conn: psycopg.Connection[Any], query: str, params: Any = None) -> list[Any]:
    return conn.execute(query, params).fetchall()


def _table(
    conn: psycopg.Connection[Any],
    oid: int,
    name: str,
    options: list[str] | None,
    partition_key: str | None,
) -> Table:
    columns = tuple(Column(*row) for row in _one(conn, q.COLUMNS, (oid,)))
    primary_key = tuple(n for (n,) in _one(conn, q.PRIMARY_KEY, (oid,)))
    constraints = tuple(c for (c,) in _one(conn, q.CONSTRAINTS, (oid,)))
    children = tuple(
        s
        for (s,) in _one(conn, q.DEFAULT_PARTITIONS, (oid,))
        + _one(conn, q.INDEXES, (oid,))
        + _one(conn, q.TRIGGERS, (oid,))
    )
    after = []
    if partition_key:
        after.append(f"PARTITION BY {partition_key}")
    if options:
        after.append(f"WITH ({', '.join(options)})")
    return Table(name, columns, constraints, primary_key, " ".join(after), children)


def _function(definition: str) -> str:
    """pg_get_functiondef's text, without the trailing newline (render adds the `;`)."""
    return "\n".join(line.rstrip() for line in definition.strip().splitlines())
