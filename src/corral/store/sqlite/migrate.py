"""The SQLite migrations shipped with corral, and how a migration file splits into statements."""

from __future__ import annotations

import sqlite3
from importlib import resources

from ...errors import DatabaseError


def migrations() -> list[tuple[int, str]]:
    """The numbered migrations shipped with corral, in order."""
    folder = resources.files("corral.store.sqlite").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text()))
    return sorted(found)


def latest_schema() -> str:
    """The schema a fresh migrate leaves (schema.sql, regenerated with each migration)."""
    return resources.files("corral.store.sqlite").joinpath("schema.sql").read_text()


def split_sql(script: str) -> list[str]:
    """Split a migration into statements, as SQLite itself sees where each one ends."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not all(
        part.strip().startswith("--") or not part.strip() for part in buffer.splitlines()
    ):
        raise DatabaseError(f"migration ends with an incomplete statement: {buffer.strip()!r}")
    return statements
