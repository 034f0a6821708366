"""Describing a SQLite corral database from its catalog (see corral.store.schema)."""

from __future__ import annotations

import re
import sqlite3

from ..schema import Column, Schema, Table
from . import catalog_queries as q

WITHOUT_ROWID = re.compile(r"\)\s*WITHOUT\s+ROWID\s*$", re.IGNORECASE)


def describe(path: str) -> Schema:
    """The schema of the SQLite file at `path` (opened read-only)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        version = conn.execute(q.SCHEMA_VERSION).fetchone()[0]
        tables = tuple(_table(conn, name, sql) for name, sql in conn.execute(q.TABLES).fetchall())
    finally:
        conn.close()
    return Schema("sqlite", version, (), tables)


def _table(conn: sqlite3.Connection, name: str, sql: str) -> Table:
    rows = conn.execute(q.COLUMNS, (name,)).fetchall()
    columns = tuple(Column(n, t, bool(nn), d) for n, t, nn, d, _ in rows)
    primary_key = tuple(n for n, *_, pk in sorted(rows, key=lambda r: r[4]) if pk)
    constraints = [f"PRIMARY KEY ({', '.join(primary_key)})"] if primary_key else []
    for (index,) in conn.execute(q.UNIQUE_INDEXES, (name,)).fetchall():
        cols = [c for (c,) in conn.execute(q.INDEX_COLUMNS, (index,)).fetchall()]
        constraints.append(f"UNIQUE ({', '.join(cols)})")
    keys: dict[int, tuple[str, list[str], list[str]]] = {}
    for key_id, parent, src, dst in conn.execute(q.FOREIGN_KEYS, (name,)).fetchall():
        keys.setdefault(key_id, (parent, [], []))
        keys[key_id][1].append(src)
        keys[key_id][2].append(dst)
    constraints += sorted(
        f"FOREIGN KEY ({', '.join(src)}) REFERENCES {parent} ({', '.join(dst)})"
        for parent, src, dst in keys.values()
    )
    children = tuple(_canonical(s) for (s,) in conn.execute(q.CHILDREN, (name,)).fetchall())
    options = "WITHOUT ROWID" if WITHOUT_ROWID.search(sql) else ""
    return Table(name, columns, tuple(constraints), primary_key, options, children)


def _canonical(statement: str) -> str:
    """A CREATE INDEX / TRIGGER text as SQLite kept it, without its comments and with its
    whitespace normalised: an index on one line; a trigger line by line, indented by 4."""
    lines = [re.sub(r"--.*$", "", line).strip() for line in statement.splitlines()]
    lines = [" ".join(line.split()) for line in lines if line]
    if not statement.lstrip().upper().startswith("CREATE TRIGGER"):
        return " ".join(lines)
    body = [lines[0]] + [
        line if line.upper() in ("BEGIN", "END") else f"    {line}" for line in lines[1:]
    ]
    return "\n".join(body)
