"""Table upkeep's SQL on PostgreSQL (corral.upkeep): the server's counters of corral's tables,
and its autovacuum setting. The VACUUM and ANALYZE statements name one table each (composed with
psycopg.sql in upkeep.py: a table name is an identifier, not a parameter)."""

from __future__ import annotations

# Whether the server's autovacuum is on (then it sees to the tables itself).
AUTOVACUUM_ON = "SELECT current_setting('autovacuum')::boolean"
# corral's tables in this schema (day partitions included; a partitioned parent holds no rows)
# with their live and dead rows, the rows changed since their last analyze and inserted since
# their last vacuum: the server's counters, read without touching the tables.
TABLE_COUNTERS = r"""
SELECT s.relname, s.n_live_tup, s.n_dead_tup, s.n_mod_since_analyze, s.n_ins_since_vacuum
FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
WHERE s.schemaname = current_schema() AND s.relname LIKE 'corral\_%' AND c.relkind = 'r'
ORDER BY s.relname
"""
