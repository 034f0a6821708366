-- corral schema, version 22: an operator pauses a group (`corral groups pause NAME`): the
-- scheduler admits none of its tasks until it is resumed; what runs finishes. A row a paused
-- group, apart from the group's settings (which a declaration in code rewrites at every start).

CREATE TABLE corral_paused_groups (
    name      TEXT PRIMARY KEY,
    paused_at REAL NOT NULL,
    paused_by TEXT NOT NULL,
    reason    TEXT
);
