"""SQLite's table upkeep (store/contract/upkeep.py): nothing to do. A deleted or rewritten row's
pages go to the file's free list and are reused by the next writes (no dead row versions wait
for a vacuum), and corral's statements are written for a planner that works from its indexes'
shapes, without statistics (a few name their index), so none are gathered."""

from __future__ import annotations

from ...upkeep import TableWork


class SQLiteUpkeep:
    """Mixed into SQLiteStore."""

    def table_upkeep(self) -> list[TableWork]:
        return []
