"""The SQL of event consumers' own rows (PostgreSQL), named, each with a line saying what it
does: creating one at the head of the feed, listing them, retiring one. Their leases and cursors
are queries.py's (ACQUIRE_CONSUMER, ADVANCE_CONSUMER, ...)."""

from __future__ import annotations

from .queries import FEED_HORIZON

# Whether a consumer has its row.
CONSUMER_EXISTS = "SELECT 1 FROM corral_consumers WHERE name = %s"
# The feed's head: the horizon. An event of an older transaction is committed (or never will
# be); a cursor at (horizon, 0) goes past those and delivers every event from there on.
FEED_HEAD = f"WITH {FEED_HORIZON} SELECT xid FROM horizon"
# Create a consumer's row at a position (the head), if it has none.
ADD_CONSUMER_AT = """
INSERT INTO corral_consumers (name, cursor_xid, cursor_id)
SELECT %(name)s, greatest(cursor_xid, %(xid)s), 0 FROM corral_consumers WHERE name = '*'
ON CONFLICT (name) DO NOTHING
"""
# Every consumer's row ('*' is the origin new consumers start from, not a consumer).
LIST_CONSUMERS = """
SELECT name, holder, lease_expires_at, cursor_xid, cursor_id FROM corral_consumers
WHERE name <> '*' ORDER BY name
"""
# Delete a consumer's row unless a process holds its lease.
RETIRE_CONSUMER = """
DELETE FROM corral_consumers
WHERE name = %(name)s AND name <> '*' AND (holder IS NULL OR lease_expires_at < %(now)s)
RETURNING name
"""
