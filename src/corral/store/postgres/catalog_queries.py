"""The PostgreSQL catalog reads that describe a corral database (corral.store.schema), named.

corral's objects are the ones named `corral_*` in the current schema: a database may hold other
software's tables beside them.
"""

from __future__ import annotations

# The highest migration applied.
SCHEMA_VERSION = "SELECT coalesce(max(version), 0) FROM corral_schema_migrations"
# corral's sequences, with their type (those of BIGSERIAL columns included).
SEQUENCES = """
SELECT c.relname, format_type(s.seqtypid, NULL) FROM pg_class c
JOIN pg_sequence s ON s.seqrelid = c.oid
WHERE c.relnamespace = current_schema()::regnamespace AND c.relname LIKE 'corral\\_%'
ORDER BY c.relname
"""
# corral's functions (those its triggers call), as CREATE statements.
FUNCTIONS = """
SELECT pg_get_functiondef(p.oid) FROM pg_proc p
WHERE p.pronamespace = current_schema()::regnamespace AND p.proname LIKE 'corral\\_%'
ORDER BY p.proname
"""
# corral's tables, with their storage options (fillfactor) and partition key. A partition is
# not a table of its own: its parent stands for it (the day partitions come and go with the days;
# the DEFAULT one is listed with its parent, `DEFAULT_PARTITIONS`).
TABLES = """
SELECT c.oid, c.relname, c.reloptions,
       CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END
FROM pg_class c
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
  AND c.relname LIKE 'corral\\_%' AND NOT c.relispartition
ORDER BY c.relname
"""
# A partitioned table's DEFAULT partition, as the statement that makes it.
DEFAULT_PARTITIONS = """
SELECT format('CREATE TABLE %%I PARTITION OF %%I DEFAULT', c.relname, p.relname)
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
WHERE i.inhparent = %s AND pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT'
"""
# A table's columns in order: type, NOT NULL, default expression.
COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid)
FROM pg_attribute a
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""
# A table's primary key columns, in key order.
PRIMARY_KEY = """
SELECT a.attname FROM pg_index i
JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) ON TRUE
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = %s AND i.indisprimary
ORDER BY k.n
"""
# A table's constraints: primary key first, then unique, foreign keys and checks.
CONSTRAINTS = """
SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s
ORDER BY contype <> 'p', contype, pg_get_constraintdef(oid)
"""
# A table's indexes that no constraint owns, by name.
INDEXES = """
SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = %s AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
ORDER BY c.relname
"""
# A table's own triggers, by name.
TRIGGERS = """
SELECT pg_get_triggerdef(oid, true) FROM pg_trigger WHERE tgrelid = %s AND NOT tgisinternal
ORDER BY tgname
"""
