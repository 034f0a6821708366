"""Table upkeep, in the store contract: VACUUM and ANALYZE where the server doesn't (corral.upkeep
says when)."""

from __future__ import annotations

from typing import Protocol

from ...upkeep import TableWork


class TableUpkeep(Protocol):
    def table_upkeep(self) -> list[TableWork]:
        """Vacuum (with ANALYZE) or analyze each of corral's tables that corral.upkeep finds due
        on the server's counters, on a connection of its own, skipping a table another session
        holds (a VACUUM never waits on a lock); the work done, in order. PostgreSQL with
        autovacuum on, and SQLite (its freed pages are reused from the file's free list, and its
        planner is left to its indexes' shapes, as corral's statements are written for), do
        nothing. It may take seconds on a big table: the leader runs it off its round."""
        ...
