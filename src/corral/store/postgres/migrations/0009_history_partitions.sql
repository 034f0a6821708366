-- corral schema, version 9 (PostgreSQL): the history that grows fastest, partitioned by day.
--
-- corral_events and corral_logs by their `at`, corral_attempts by its `started_at` (epoch seconds,
-- RANGE [day, day + 86400) of UTC days, each partition named <table>_pYYYYMMDD). Dropping a day
-- of history is then one DROP TABLE instead of a delete per row (and no dead rows left for a
-- vacuum). The pruner makes the partitions of today and the next two days ahead of the rows, and
-- drops the days that corral.retention lets go; a DEFAULT partition catches any row outside every
-- day (a clock far off, a day not made yet), so an insert never fails. A partitioned table's
-- primary key must hold its partition key: (id, at), and (task_id, attempt, started_at). The ids
-- still come from one sequence each, and no statement relies on those keys for a conflict.
--
-- This keeps existing rows: each table is renamed, its partitioned successor created with a day
-- partition for every day of the last 31 that holds rows (older rows go to DEFAULT, where the
-- pruner deletes them row by row as before) and for today and the next two days, the rows copied
-- over, the indexes built, the statistics gathered (the planner gets them now, not whenever a
-- vacuum would come by).

ALTER TABLE corral_events RENAME TO corral_events_v8;
ALTER INDEX corral_events_pkey RENAME TO corral_events_v8_pkey;
ALTER INDEX corral_events_commit RENAME TO corral_events_v8_commit;
ALTER INDEX corral_events_task RENAME TO corral_events_v8_task;
CREATE TABLE corral_events (
    id         BIGINT           NOT NULL DEFAULT nextval('corral_events_id_seq'),
    task_id    BIGINT           NOT NULL,
    at         DOUBLE PRECISION NOT NULL,
    kind       TEXT             NOT NULL,
    from_state TEXT,
    to_state   TEXT,
    attempt    INTEGER          NOT NULL,
    detail     TEXT,
    xid        BIGINT DEFAULT (pg_current_xact_id()::text::bigint),
    PRIMARY KEY (id, at)
) PARTITION BY RANGE (at);
ALTER SEQUENCE corral_events_id_seq OWNED BY corral_events.id;
CREATE TABLE corral_events_default PARTITION OF corral_events DEFAULT;

ALTER TABLE corral_logs RENAME TO corral_logs_v8;
ALTER INDEX corral_logs_pkey RENAME TO corral_logs_v8_pkey;
ALTER INDEX corral_logs_task RENAME TO corral_logs_v8_task;
CREATE TABLE corral_logs (
    id      BIGINT           NOT NULL DEFAULT nextval('corral_logs_id_seq'),
    task_id BIGINT           NOT NULL,
    attempt INTEGER          NOT NULL,
    at      DOUBLE PRECISION NOT NULL,
    level   INTEGER          NOT NULL,
    message TEXT             NOT NULL,
    PRIMARY KEY (id, at)
) PARTITION BY RANGE (at);
ALTER SEQUENCE corral_logs_id_seq OWNED BY corral_logs.id;
CREATE TABLE corral_logs_default PARTITION OF corral_logs DEFAULT;

ALTER TABLE corral_attempts RENAME TO corral_attempts_v8;
ALTER INDEX corral_attempts_pkey RENAME TO corral_attempts_v8_pkey;
CREATE TABLE corral_attempts (
    task_id     BIGINT           NOT NULL,
    attempt     INTEGER          NOT NULL,
    worker_id   TEXT,
    started_at  DOUBLE PRECISION NOT NULL,
    finished_at DOUBLE PRECISION,
    outcome     TEXT,
    error       TEXT,
    traceback   TEXT,
    isolated    BOOLEAN          NOT NULL DEFAULT FALSE,
    PRIMARY KEY (task_id, attempt, started_at)
) PARTITION BY RANGE (started_at);
CREATE TABLE corral_attempts_default PARTITION OF corral_attempts DEFAULT;

-- The day partitions: days of the last 31 with rows, and today and the next two.
DO $$
DECLARE
    today CONSTANT DOUBLE PRECISION := floor(extract(epoch FROM now()) / 86400) * 86400;
    spec RECORD;
    day DOUBLE PRECISION;
BEGIN
    FOR spec IN SELECT * FROM (VALUES ('corral_events', 'at'), ('corral_logs', 'at'),
                                      ('corral_attempts', 'started_at')) AS s(parent, key)
    LOOP
        FOR day IN EXECUTE format(
            'SELECT DISTINCT floor(%1$I / 86400) * 86400 FROM %2$I WHERE %1$I >= $1 AND %1$I < $2 '
            'UNION SELECT $3 + n * 86400 FROM generate_series(0, 2) AS n ORDER BY 1',
            spec.key, spec.parent || '_v8')
            USING today - 31 * 86400, today + 3 * 86400, today
        LOOP
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%s) TO (%s)',
                           spec.parent || '_p' || to_char(to_timestamp(day) AT TIME ZONE 'UTC',
                                                          'YYYYMMDD'),
                           spec.parent, day, day + 86400);
        END LOOP;
    END LOOP;
END $$;

INSERT INTO corral_events (id, task_id, at, kind, from_state, to_state, attempt, detail, xid)
SELECT id, task_id, at, kind, from_state, to_state, attempt, detail, xid FROM corral_events_v8;
INSERT INTO corral_logs (id, task_id, attempt, at, level, message)
SELECT id, task_id, attempt, at, level, message FROM corral_logs_v8;
INSERT INTO corral_attempts (task_id, attempt, worker_id, started_at, finished_at, outcome, error,
                             traceback, isolated)
SELECT task_id, attempt, worker_id, started_at, finished_at, outcome, error, traceback, isolated
FROM corral_attempts_v8;
DROP TABLE corral_events_v8, corral_logs_v8, corral_attempts_v8;

-- The same indexes as before, on the parents (each partition gets its own).
CREATE INDEX corral_events_task ON corral_events (task_id, id);
CREATE INDEX corral_events_commit ON corral_events (xid, id);
CREATE INDEX corral_logs_task ON corral_logs (task_id, attempt, id);

ANALYZE corral_events, corral_logs, corral_attempts;
