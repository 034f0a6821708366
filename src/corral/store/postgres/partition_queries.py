"""The SQL of the history's day partitions (PostgreSQL), named, each with a line saying what it
does. A partition's name is its parent's, `_p` and its UTC day (`corral_events_p20261122`); the
statements that name one are templates for psycopg.sql (`{part}`, `{parent}`)."""

from __future__ import annotations

PARENTS = {"corral_events": "at", "corral_logs": "at", "corral_attempts": "started_at"}
"""The partitioned history tables and their partition key (a time in epoch seconds)."""
LOCK_TIMEOUT = "SET LOCAL lock_timeout = '2s'"
"""Making or dropping a partition locks its parent for a moment; one that would wait longer
behind a long reader gives up (LockNotAvailable) and is tried again at the next prune run,
rather than stalling every writer queued behind it."""

# The partitions of the history tables: parent, partition, its oid (DEFAULT ones included).
PARTITIONS = """
SELECT p.relname, c.relname, c.oid::bigint FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
JOIN pg_class p ON p.oid = i.inhparent
WHERE p.relname = ANY(%(parents)s) AND p.relnamespace = current_schema()::regnamespace
ORDER BY p.relname, c.relname
"""
# The table held still while a day is made (a moment: create, move, attach): no row lands in
# DEFAULT between the move of its rows for that day and the day's ATTACH, which would then fail
# its check, and no insert routes by a list of partitions that the ATTACH changes under it (one
# that planned before it would put a row of the new day in DEFAULT and fail). Taken first, within
# LOCK_TIMEOUT; a writer waits for it, then routes by the new list.
LOCK_PARENT = "LOCK TABLE {parent} IN ACCESS EXCLUSIVE MODE"
# A new day, made beside its parent as a plain table with the parent's columns...
NEW_DAY = "CREATE TABLE {part} (LIKE {parent} INCLUDING DEFAULTS)"
# ...given the rows that the DEFAULT partition caught for that day (none, unless the day was made
# late: the pruner did not run for days, or a clock was off)...
ADOPT_DEFAULT_ROWS = """
WITH moved AS (DELETE FROM {default} WHERE {key} >= %(lo)s AND {key} < %(hi)s RETURNING *)
INSERT INTO {part} SELECT * FROM moved
"""
# ...and attached (its indexes are built to match the parent's).
# (DDL takes no parameters: the bounds are literals.)
ATTACH_DAY = "ALTER TABLE {parent} ATTACH PARTITION {part} FOR VALUES FROM ({lo}) TO ({hi})"
# Whether a day holds a row of a task still stored: among the stored tasks whose ids lie between
# the day's smallest and largest task id (index ends), the first %(scan)s, one with rows in the
# day (an index probe each; it stops at the first found)...
_STORED = """(
    SELECT t.id FROM corral_tasks t
    WHERE t.id BETWEEN (SELECT min(task_id) FROM {part}) AND (SELECT max(task_id) FROM {part})
    ORDER BY t.id LIMIT %(scan)s)"""
HELD_BY_TASK = f"""
SELECT EXISTS (SELECT 1 FROM {_STORED} s
               CROSS JOIN LATERAL (SELECT 1 FROM {{part}} h WHERE h.task_id = s.id LIMIT 1) r)
"""
"""(LATERAL with LIMIT: a probe per stored task, never a hash join over the whole day.)"""
# ...and, when none was found, how many were looked at: %(scan)s of them leaves it undecided
# (the day is kept this run).
STORED_AROUND = f"SELECT count(*) FROM {_STORED} s"
# Whether a day of events holds one after the slowest consumer's cursor (the commit-order index).
HELD_BY_CURSOR = """
SELECT EXISTS (SELECT 1 FROM {part}
               WHERE (xid, id) > (%(cursor_xid)s::bigint, %(cursor_id)s::bigint))
"""
# Take a day off its parent (the parent's lock keeps every writer out until the drop commits)...
DETACH_DAY = "ALTER TABLE {parent} DETACH PARTITION {part}"
# ...and drop it: its rows, its indexes, at once.
DROP_DAY = "DROP TABLE {part}"
