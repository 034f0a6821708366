"""The named SQL of alerts on SQLite (store/contract/alerts.py); each says which index it uses.
PostgreSQL's (postgres/alert_queries.py) are these, with its parameter style."""

from __future__ import annotations

from ..contract.alerts import FAILED_OUTCOMES

INCIDENT_FIELDS = (
    "id, rule, subject, state, summary, cause, opened_at, firing_at, resolved_at, resolved_by, "
    "notified_at, notices, group_key"
)
NOTIFICATION_FIELDS = (
    "id, incident_id, rule, channel, transition, idempotency_key, message, state, tries, due_at, "
    "last_error, created_at, sent_at, group_key"
)
_FAILED_SQL = "(" + " OR ".join(f"a.outcome = '{o}'" for o in FAILED_OUTCOMES) + ")"
"""An attempt failed, worded as corral_attempts_failed's predicate (migration 0023: equalities
joined by OR, which SQLite checks in place, where an IN list of more than two constants is a
lookup table built at every insert and update of an attempt), so the planner sees the index
hold the rows."""

# Open an incident unless one of (rule, subject) is open (corral_alert_incidents_open).
OPEN_INCIDENT = """
INSERT INTO corral_alert_incidents (rule, subject, state, summary, cause, opened_at, firing_at,
                                    notified_at, notices, group_key)
VALUES (:rule, :subject, :state, :summary, :cause, :now,
        CASE WHEN :state = 'firing' THEN :now END,
        CASE WHEN :notify THEN :now END, CASE WHEN :notify THEN 1 ELSE 0 END, :group_key)
ON CONFLICT (rule, subject) WHERE state IN ('pending', 'firing') DO NOTHING
RETURNING id
"""
# A pending incident fires (its first notice queued with it, if any).
FIRE_INCIDENT = """
UPDATE corral_alert_incidents SET state = 'firing', firing_at = :now, summary = :summary,
    cause = :cause,
    notified_at = CASE WHEN :notify THEN :now ELSE notified_at END,
    notices = notices + CASE WHEN :notify THEN 1 ELSE 0 END
WHERE id = :id AND state = 'pending'
RETURNING id
"""
# A firing incident's next notice, if no one queued it since the caller looked.
NOTIFY_INCIDENT = """
UPDATE corral_alert_incidents SET notified_at = :now, notices = notices + 1, summary = :summary,
    cause = :cause
WHERE id = :id AND state = 'firing' AND notices = :seen
RETURNING id
"""
# An open incident is resolved.
RESOLVE_INCIDENT = """
UPDATE corral_alert_incidents SET state = 'resolved', resolved_at = :now, resolved_by = :by
WHERE id = :id AND state IN ('pending', 'firing')
RETURNING id
"""
# Queue a notification (its key is unique: queued once).
INSERT_NOTIFICATION = """
INSERT INTO corral_alert_notifications (incident_id, rule, channel, transition, idempotency_key,
                                        message, due_at, created_at, group_key)
VALUES (:incident_id, :rule, :channel, :transition, :key, :message, :due_at, :now, :group_key)
ON CONFLICT (idempotency_key) DO NOTHING
"""
# Remember a notice group's latest batch (its primary key).
SET_FLUSH = """
INSERT INTO corral_alert_groups (rule, group_key, flush_at) VALUES (:rule, :group_key, :flush_at)
ON CONFLICT (rule, group_key) DO UPDATE SET flush_at = excluded.flush_at
"""
# A group with nothing open is closed: its row goes once its last batch is not ahead.
CLOSE_GROUP = """
DELETE FROM corral_alert_groups WHERE rule = :rule AND group_key = :group_key AND flush_at <= :now
"""
# Every group's latest batch (a row a group not closed).
FLUSHES = "SELECT rule, group_key, flush_at FROM corral_alert_groups"
# The open incidents (corral_alert_incidents_open).
OPEN_INCIDENTS = f"""
SELECT {INCIDENT_FIELDS} FROM corral_alert_incidents
WHERE state IN ('pending', 'firing') ORDER BY id
"""
# Incidents newest first before an id (the primary key).
INCIDENTS = f"""
SELECT {INCIDENT_FIELDS} FROM corral_alert_incidents WHERE id < :before
ORDER BY id DESC LIMIT :limit
"""
# One incident.
INCIDENT = f"SELECT {INCIDENT_FIELDS} FROM corral_alert_incidents WHERE id = :id"
# Whether a rule's subject ever had an incident (corral_alert_incidents_subject: a probe).
SEEN = """
SELECT 1 FROM corral_alert_incidents WHERE rule = :rule AND subject = :subject LIMIT 1
"""
# Notifications newest first before an id (the primary key).
NOTIFICATIONS = f"""
SELECT {NOTIFICATION_FIELDS} FROM corral_alert_notifications WHERE id < :before
ORDER BY id DESC LIMIT :limit
"""
# Pending notifications due, the earliest first (corral_alert_notifications_due).
DUE_NOTIFICATIONS = f"""
SELECT {NOTIFICATION_FIELDS} FROM corral_alert_notifications
WHERE state = 'pending' AND due_at <= :now ORDER BY due_at, id LIMIT :limit
"""
# A delivery accepted.
NOTIFICATION_SENT = """
UPDATE corral_alert_notifications SET state = 'sent', sent_at = :now, tries = tries + 1,
    last_error = NULL
WHERE id = :id AND state = 'pending'
RETURNING id
"""
# A delivery refused or failed: tried once more, due again later.
NOTIFICATION_FAILED = """
UPDATE corral_alert_notifications SET tries = tries + 1, last_error = :error, due_at = :retry_at
WHERE id = :id AND state = 'pending'
RETURNING id
"""
# Silence a rule until a moment (replaces its silence).
SILENCE = """
INSERT INTO corral_alert_silences (rule, until, created_at) VALUES (:rule, :until, :now)
ON CONFLICT (rule) DO UPDATE SET until = excluded.until, created_at = excluded.created_at
"""
# The silences not expired (a row a silenced rule).
SILENCES = "SELECT rule, until FROM corral_alert_silences WHERE until > :now"
# Failed attempts ended since a moment, the latest first (corral_attempts_failed), with their task.
FAILED_ATTEMPTS = f"""
SELECT a.task_id, a.attempt, t.name, t.group_name, t.pool, a.outcome, a.error, a.finished_at,
       t.state, t.attempt
FROM corral_attempts a INDEXED BY corral_attempts_failed JOIN corral_tasks t ON t.id = a.task_id
WHERE {_FAILED_SQL} AND a.finished_at >= :since
ORDER BY a.finished_at DESC LIMIT :limit
"""
# The pool's ready task waiting the longest, of a group not paused (corral_tasks_group_ready:
# the pool's ready backlog; a paused group's tasks wait on purpose).
OLDEST_READY = """
SELECT id FROM corral_tasks INDEXED BY corral_tasks_group_ready
WHERE state = 'ready' AND pool = :pool
  AND group_name NOT IN (SELECT name FROM corral_paused_groups)
ORDER BY ready_at, id LIMIT 1
"""
