"""The fast lanes' SQL on PostgreSQL (corral.lanes): the leader's close and open, and the lane a
single submit takes (SUBMIT_ONE in queries.py embeds LANE_TAKE)."""

from __future__ import annotations

from ...model import DEFAULTS_GROUP

# Close every open lane. Its row locks wait for a submit that is taking a slot to commit, so a
# load read after it counts every slot taken.
CLOSE = "UPDATE corral_fast_lanes SET slots = 0 WHERE slots > 0 RETURNING pool"
# The open lanes' slots left.
SLOTS = (
    "SELECT pool, slots FROM corral_fast_lanes WHERE slots > 0 AND until > %(now)s ORDER BY pool"
)
# Open lanes: a pool's slots until a time (arrays).
OPEN = """
INSERT INTO corral_fast_lanes (pool, slots, until)
SELECT pool, slots, %(until)s FROM unnest(%(pools)b::text[], %(slots)b::int[]) AS l(pool, slots)
ON CONFLICT (pool) DO UPDATE SET slots = excluded.slots, until = excluded.until
RETURNING pool
"""
# A slot of the task's pool's open lane, if the submit may take one (`lane`: what the task
# carries allows it) and nothing bounds its group: no cap or rate limit of its own or of the
# defaults, no pause, no exclusive task holding a slot. One row (the slot taken) or none.
LANE_TAKE = f"""
    UPDATE corral_fast_lanes l SET slots = l.slots - 1
    WHERE %(lane)s AND l.pool = %(pool)s AND l.slots > 0 AND l.until > %(now)s
      AND NOT EXISTS (
          SELECT 1 FROM corral_groups g WHERE g.name IN (%(group_name)s, '{DEFAULTS_GROUP}')
          AND (g.max_parallel IS NOT NULL OR g.rate_limit IS NOT NULL))
      AND NOT EXISTS (SELECT 1 FROM corral_paused_groups p WHERE p.name = %(group_name)s)
      AND NOT EXISTS (
          SELECT 1 FROM corral_tasks x
          WHERE x.group_name = %(group_name)s AND x.state IN ('admitted', 'running')
          AND x.exclusive)
    RETURNING l.pool"""
