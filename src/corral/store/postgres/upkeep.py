"""PostgreSQL's table upkeep (store/contract/upkeep.py): read the server's counters, then VACUUM
(ANALYZE) or ANALYZE each table corral.upkeep finds due, on a connection of its own (a VACUUM
can't run in a transaction, and may take seconds: no pooled connection is held meanwhile)."""

from __future__ import annotations

import logging

import psycopg
from psycopg import sql

from ...upkeep import TableCounts, TableWork, due
from . import upkeep_queries as uq

log = logging.getLogger("corral.store.postgres")

VACUUM = sql.SQL("VACUUM (ANALYZE, SKIP_LOCKED) {}")
ANALYZE = sql.SQL("ANALYZE (SKIP_LOCKED) {}")


class PostgresUpkeep:
    """Mixed into PostgresStore."""

    url: str

    def table_upkeep(self) -> list[TableWork]:
        with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
            autovacuum = conn.execute(uq.AUTOVACUUM_ON).fetchone()
            rows = conn.execute(uq.TABLE_COUNTERS).fetchall()
            tables = [TableCounts(str(r[0]), *(int(v or 0) for v in r[1:])) for r in rows]
            work = due(tables, bool(autovacuum and autovacuum[0]))
            for item in work:
                statement = VACUUM if item.vacuum else ANALYZE
                conn.execute(statement.format(sql.Identifier(item.name)))
        if work:
            log.info("table upkeep: %s", ", ".join(
                f"{w.name} ({'vacuum' if w.vacuum else 'analyze'})" for w in work
            ))  # fmt: skip
        return work
