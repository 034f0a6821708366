-- corral schema, version 13 (PostgreSQL): schedules, their fires and backfills.
-- A fire is a row keyed by (schedule, logical time) under a unique constraint, written in the
-- same transaction as its tasks: a logical time fires at most once, whoever tries. The schedule
-- row keeps its cursor (logical times up to it are handled: fired, skipped or missed) and the
-- next logical time due, so the clock reads only the schedules due (an index), never all.

ALTER TABLE corral_tasks ADD COLUMN logical_time DOUBLE PRECISION;
ALTER TABLE corral_tasks ADD COLUMN data_start DOUBLE PRECISION;

CREATE TABLE corral_schedules (
    name          TEXT PRIMARY KEY,
    spec          TEXT NOT NULL,             -- JSON: {"cron", "tz"} or {"every", "anchor", "tz"}
    target        TEXT NOT NULL,             -- a task type's name, or "workflow:<builder>"
    options       TEXT NOT NULL,             -- JSON: catch-up, overlap, group, arguments
    paused        BOOLEAN NOT NULL DEFAULT FALSE,
    removed_at    DOUBLE PRECISION,                      -- no longer declared in the code: stops firing
    cursor_at     DOUBLE PRECISION NOT NULL,
    next_at       DOUBLE PRECISION NOT NULL,
    buffered_at   DOUBLE PRECISION,                      -- a fire held back by overlap=buffer_one
    trigger_at    DOUBLE PRECISION,                      -- a "fire once now" asked for at
    fired         BIGINT NOT NULL DEFAULT 0,
    skipped       BIGINT NOT NULL DEFAULT 0,
    missed        BIGINT NOT NULL DEFAULT 0,
    last_logical  DOUBLE PRECISION,
    last_outcome  TEXT,
    created_at    DOUBLE PRECISION NOT NULL,
    updated_at    DOUBLE PRECISION NOT NULL
);
CREATE INDEX corral_schedules_due ON corral_schedules (next_at) WHERE removed_at IS NULL;
CREATE INDEX corral_schedules_pending ON corral_schedules (name)
    WHERE removed_at IS NULL AND (buffered_at IS NOT NULL OR trigger_at IS NOT NULL);

CREATE TABLE corral_schedule_fires (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    schedule_name TEXT NOT NULL,
    logical_time  DOUBLE PRECISION NOT NULL,
    data_start    DOUBLE PRECISION,
    kind          TEXT NOT NULL,             -- scheduled | trigger | backfill
    outcome       TEXT NOT NULL,             -- fired | skipped | missed
    reason        TEXT,
    task_ids      TEXT NOT NULL DEFAULT '[]',
    workflow_id   BIGINT,
    backfill_id   BIGINT,
    runs          INTEGER NOT NULL DEFAULT 0,
    made_at       DOUBLE PRECISION NOT NULL,
    UNIQUE (schedule_name, logical_time)
);
CREATE INDEX corral_schedule_fires_backfill ON corral_schedule_fires (backfill_id, logical_time)
    WHERE backfill_id IS NOT NULL;

CREATE TABLE corral_backfills (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    schedule_name TEXT NOT NULL,
    start_at      DOUBLE PRECISION NOT NULL,
    end_at        DOUBLE PRECISION NOT NULL,
    reprocess     TEXT NOT NULL,             -- none | failed | all
    forward       BOOLEAN NOT NULL,
    group_name    TEXT NOT NULL,
    state         TEXT NOT NULL,             -- running | paused | cancelled | done
    cursor_at     DOUBLE PRECISION,                      -- the last logical time made (NULL: none yet)
    total         INTEGER NOT NULL,
    made          INTEGER NOT NULL DEFAULT 0,
    created_at    DOUBLE PRECISION NOT NULL,
    updated_at    DOUBLE PRECISION NOT NULL
);
CREATE INDEX corral_backfills_running ON corral_backfills (id) WHERE state = 'running';
