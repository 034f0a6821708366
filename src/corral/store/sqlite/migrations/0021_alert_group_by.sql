-- corral schema, version 21: alert groups by labels (a rule's `group_by`, Alertmanager's). An
-- incident keeps the group it was opened in (its `group_key`: '' for a rule grouped by the rule
-- only, today's and every older incident's), its notices carry it, and a group's flush (the
-- latest batch queued, from which group_interval counts) is kept per (rule, group), so a leader
-- that takes over schedules the next batch from the database, never from memory.

ALTER TABLE corral_alert_incidents ADD COLUMN group_key TEXT NOT NULL DEFAULT '';
ALTER TABLE corral_alert_notifications ADD COLUMN group_key TEXT NOT NULL DEFAULT '';

CREATE TABLE corral_alert_groups_next (
    rule      TEXT,
    group_key TEXT NOT NULL DEFAULT '',
    flush_at  REAL NOT NULL,                -- the latest batch queued (group_interval counts from it)
    PRIMARY KEY (rule, group_key)
);
INSERT INTO corral_alert_groups_next (rule, group_key, flush_at)
    SELECT rule, '', flush_at FROM corral_alert_groups;
DROP TABLE corral_alert_groups;
ALTER TABLE corral_alert_groups_next RENAME TO corral_alert_groups;
