-- corral schema, version 21 (PostgreSQL): alert groups by labels (a rule's `group_by`,
-- Alertmanager's). An incident keeps the group it was opened in (its `group_key`: '' for a rule
-- grouped by the rule only, today's and every older incident's), its notices carry it, and a
-- group's flush (the latest batch queued, from which group_interval counts) is kept per (rule,
-- group), so a leader that takes over schedules the next batch from the database, never from
-- memory.

ALTER TABLE corral_alert_incidents ADD COLUMN group_key TEXT NOT NULL DEFAULT '';
ALTER TABLE corral_alert_notifications ADD COLUMN group_key TEXT NOT NULL DEFAULT '';

ALTER TABLE corral_alert_groups ADD COLUMN group_key TEXT NOT NULL DEFAULT '';
ALTER TABLE corral_alert_groups DROP CONSTRAINT corral_alert_groups_pkey;
ALTER TABLE corral_alert_groups ADD PRIMARY KEY (rule, group_key);
