"""Table upkeep: which of corral's tables need a VACUUM or an ANALYZE, where the database server
doesn't see to it (PostgreSQL with autovacuum off, as this project's packaged configuration has
it: corral must not depend on autovacuum).

Without it, nothing ever refreshes the planner's statistics of the hot tables or marks their
dead row versions reusable: every claim and report updates a task row, so the tasks table and
its indexes grow with the transitions ever made, and the plans are made from whatever the
statistics said when someone last ran ANALYZE (a stale count of running tasks makes PostgreSQL
walk a whole index for a claim's "does this worker run anything" check). The rule is
autovacuum's own default thresholds, on the server's own counters (pg_stat_user_tables), so a
table is vacuumed about as often as autovacuum would have: never a scan to decide.

Pure: the store reads the counters and runs the statements (store/contract/upkeep.py); the
leader's `Upkeep` service (scheduler/upkeep.py) runs it off its round.
"""

from __future__ import annotations

from dataclasses import dataclass

VACUUM_THRESHOLD = 50
VACUUM_SCALE = 0.2
"""A table is vacuumed once its dead rows pass 50 + 20% of its live ones
(autovacuum_vacuum_threshold and _scale_factor's defaults)."""
INSERT_THRESHOLD = 1000
INSERT_SCALE = 0.2
"""... or its rows inserted since the last vacuum pass 1000 + 20% of its live ones
(autovacuum_vacuum_insert_threshold and _scale_factor: the visibility map that index-only scans
use)."""
ANALYZE_THRESHOLD = 50
ANALYZE_SCALE = 0.1
"""A table is analyzed once its rows changed since the last analyze pass 50 + 10% of its live
ones (autovacuum_analyze_threshold and _scale_factor)."""


@dataclass(frozen=True)
class TableCounts:
    """A table's counters as the server keeps them (pg_stat_user_tables)."""

    name: str
    live: int
    dead: int
    changed_since_analyze: int
    inserted_since_vacuum: int


@dataclass(frozen=True)
class TableWork:
    """What a table needs: `vacuum` (with ANALYZE) or, without it, an ANALYZE alone."""

    name: str
    vacuum: bool


def due(tables: list[TableCounts], autovacuum_on: bool) -> list[TableWork]:
    """The tables to vacuum or analyze now, by name; none when the server's autovacuum is on
    (it does the same, with the same thresholds)."""
    if autovacuum_on:
        return []
    work = []
    for t in sorted(tables, key=lambda t: t.name):
        vacuum = (
            t.dead > VACUUM_THRESHOLD + VACUUM_SCALE * t.live
            or t.inserted_since_vacuum > INSERT_THRESHOLD + INSERT_SCALE * t.live
        )
        analyze = t.changed_since_analyze > ANALYZE_THRESHOLD + ANALYZE_SCALE * t.live
        if vacuum or analyze:
            work.append(TableWork(t.name, vacuum))
    return work
