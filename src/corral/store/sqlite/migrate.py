"""The SQLite migrations shipped with corral, and how a migration file splits into statements."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import DatabaseError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable


def _shipped(name: str) -> Traversable:
    """A file or folder shipped beside this module: read from the package's folder when it is
    one (importlib.resources and what it imports cost a worker's start a few ms), else through
    importlib.resources (a zipped install)."""
    here = Path(__file__).with_name(name)
    if here.exists():
        return here
    from importlib import resources

    return resources.files(__package__ or "corral.store.sqlite").joinpath(name)


def migration_files() -> list[tuple[int, Traversable]]:
    """The numbered migration files shipped with corral, in order, unread: opening a store reads
    only the ones its database lacks (none, on every start but the first)."""
    folder = _shipped("migrations")
    found = [(int(e.name.split("_", 1)[0]), e) for e in folder.iterdir() if e.name.endswith(".sql")]
    return sorted(found, key=lambda item: item[0])


def migrations() -> list[tuple[int, str]]:
    """The numbered migrations shipped with corral, in order."""
    return [(version, entry.read_text()) for version, entry in migration_files()]


def latest_schema() -> str:
    """The schema a fresh migrate leaves (schema.sql, regenerated with each migration)."""
    return _shipped("schema.sql").read_text()


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
