-- corral schema, version 24: the fast lane. When a pool has free slots and no ready task, the
-- leader opens a lane of some of those slots for a short while; a single submit that nothing
-- bounds (no cap, no rate limit, no pause, not exclusive) takes a slot of it and is admitted
-- in its own write, without waiting for a scheduling round (corral/lanes.py). The leader closes
-- every lane before it reads the load, so its own admissions never count a slot twice.

CREATE TABLE corral_fast_lanes (
    pool  TEXT PRIMARY KEY,
    slots INTEGER NOT NULL,
    until REAL NOT NULL
);
