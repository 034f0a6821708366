"""The fast lanes' SQL on SQLite (corral.lanes): the leader's close and open, and the slot a
single submit takes in its own write."""

from __future__ import annotations

from ...model import DEFAULTS_GROUP

# Close every open lane.
CLOSE = "UPDATE corral_fast_lanes SET slots = 0 WHERE slots > 0"
# The open lanes' slots left.
SLOTS = "SELECT pool, slots FROM corral_fast_lanes WHERE slots > 0 AND until > :now ORDER BY pool"
# Open a pool's lane with its slots until a time.
OPEN = """
INSERT INTO corral_fast_lanes (pool, slots, until) VALUES (?, ?, ?)
ON CONFLICT (pool) DO UPDATE SET slots = excluded.slots, until = excluded.until
"""
# Take a slot of the pool's open lane, unless something bounds the task's group: a cap or rate
# limit of its own or of the defaults, a pause, an exclusive task holding a slot.
TAKE = f"""
UPDATE corral_fast_lanes SET slots = slots - 1
WHERE pool = :pool AND slots > 0 AND until > :now
  AND NOT EXISTS (
      SELECT 1 FROM corral_groups g WHERE g.name IN (:group_name, '{DEFAULTS_GROUP}')
      AND (g.max_parallel IS NOT NULL OR g.rate_limit IS NOT NULL))
  AND NOT EXISTS (SELECT 1 FROM corral_paused_groups p WHERE p.name = :group_name)
  AND NOT EXISTS (
      SELECT 1 FROM corral_tasks x
      WHERE x.group_name = :group_name AND x.state IN ('admitted', 'running') AND x.exclusive)
"""
