"""The SQL of event consumers' own rows (SQLite), named, each with a line saying what it does:
creating one at the head of the feed, listing them, retiring one. Their leases and cursors are
queries.py's (ACQUIRE_CONSUMER, ADVANCE_CONSUMER, ...)."""

from __future__ import annotations

# Whether a consumer has its row.
CONSUMER_EXISTS = "SELECT 1 FROM corral_consumers WHERE name = ?"
# Create a consumer's row at the head of the feed (past the newest event), if it has none.
ADD_CONSUMER_AT_HEAD = """
INSERT OR IGNORE INTO corral_consumers (name, cursor_xid, cursor_id)
SELECT :name, 0, max(cursor_id, coalesce((SELECT max(id) FROM corral_events), 0))
FROM corral_consumers WHERE name = '*'
"""
# Every consumer's row ('*' is the origin new consumers start from, not a consumer).
LIST_CONSUMERS = """
SELECT name, holder, lease_expires_at, cursor_xid, cursor_id FROM corral_consumers
WHERE name <> '*' ORDER BY name
"""
# Delete a consumer's row unless a process holds its lease.
RETIRE_CONSUMER = """
DELETE FROM corral_consumers
WHERE name = :name AND name <> '*' AND (holder IS NULL OR lease_expires_at < :now)
"""
