-- corral schema, version 17: alerts (corral.alerts, docs/alerts.md). An incident is a rule's
-- firing for one subject (a task, a task type, a pool, a schedule's logical time): pending ->
-- firing -> resolved. At most one incident per (rule, subject) is open, under a unique partial
-- index, so two leaders (or one restarted) never open a second one. Each notification is an
-- outbox row written in the transaction that changed its incident, keyed by (incident,
-- transition, channel): a sender delivers it at least once, and the receiver sees the same key on
-- a repeat. The failed attempts get a partial index on their end, so the rules on deaths and
-- failures read the recent failures only (never the history, never the successes).

CREATE TABLE corral_alert_incidents (
    id          INTEGER,
    rule        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    state       TEXT NOT NULL,              -- pending | firing | resolved
    summary     TEXT NOT NULL,
    cause       TEXT NOT NULL DEFAULT '{}', -- JSON: what the message says of the cause
    opened_at   REAL NOT NULL,
    firing_at   REAL,
    resolved_at REAL,
    resolved_by TEXT,                       -- 'rule' (the condition ended) or who resolved it
    notified_at REAL,                       -- the last firing or repeat notice queued
    notices     INTEGER NOT NULL DEFAULT 0, -- firing and repeat notices queued so far
    PRIMARY KEY (id)
);
CREATE UNIQUE INDEX corral_alert_incidents_open ON corral_alert_incidents (rule, subject)
    WHERE state IN ('pending', 'firing');
CREATE INDEX corral_alert_incidents_subject ON corral_alert_incidents (rule, subject, id);

CREATE TABLE corral_alert_notifications (
    id              INTEGER,
    incident_id     INTEGER NOT NULL,
    rule            TEXT NOT NULL,
    channel         TEXT NOT NULL,
    transition      TEXT NOT NULL,          -- firing | repeat<n> | resolved
    idempotency_key TEXT NOT NULL,
    message         TEXT NOT NULL,          -- JSON: the notice as the channels render it
    state           TEXT NOT NULL DEFAULT 'pending', -- pending | sent
    tries           INTEGER NOT NULL DEFAULT 0,
    due_at          REAL NOT NULL,
    last_error      TEXT,
    created_at      REAL NOT NULL,
    sent_at         REAL,
    PRIMARY KEY (id),
    UNIQUE (idempotency_key)
);
CREATE INDEX corral_alert_notifications_due ON corral_alert_notifications (due_at)
    WHERE state = 'pending';

CREATE TABLE corral_alert_silences (
    rule       TEXT,
    until      REAL NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (rule)
);

CREATE TABLE corral_alert_groups (
    rule     TEXT,
    flush_at REAL NOT NULL,                 -- the latest group notice scheduled (group_interval)
    PRIMARY KEY (rule)
);

CREATE INDEX corral_attempts_failed ON corral_attempts (finished_at)
    WHERE outcome IN ('failed', 'lost', 'timed_out', 'stalled');
