"""The SQLite catalog reads that describe a corral database (corral.store.schema), named."""

from __future__ import annotations

# The highest migration applied.
SCHEMA_VERSION = "SELECT coalesce(max(version), 0) FROM corral_schema_migrations"
# Every table of corral's, with the text it was created with (for WITHOUT ROWID).
TABLES = """
SELECT name, sql FROM sqlite_master
WHERE type = 'table' AND name LIKE 'corral\\_%' ESCAPE '\\' ORDER BY name
"""
# A table's columns in order; pk is the column's place in the primary key (0: not in it).
COLUMNS = 'SELECT name, type, "notnull", dflt_value, pk FROM pragma_table_info(?) ORDER BY cid'
# A table's UNIQUE constraints (origin 'u': declared in the table, not by CREATE INDEX).
UNIQUE_INDEXES = "SELECT name FROM pragma_index_list(?) WHERE origin = 'u' ORDER BY name"
# The columns of one index, in order.
INDEX_COLUMNS = "SELECT name FROM pragma_index_info(?) ORDER BY seqno"
# A table's foreign keys, one row per column.
FOREIGN_KEYS = 'SELECT id, "table", "from", "to" FROM pragma_foreign_key_list(?) ORDER BY id, seq'
# A table's own indexes, then its triggers (CREATE INDEX / CREATE TRIGGER text), by name.
CHILDREN = """
SELECT sql FROM sqlite_master
WHERE tbl_name = ? AND type IN ('index', 'trigger') AND sql IS NOT NULL
ORDER BY type, name
"""
