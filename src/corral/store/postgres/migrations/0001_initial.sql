-- corral schema, version 1 (PostgreSQL). Times are UNIX epoch seconds, always given by the caller.

CREATE SEQUENCE corral_task_ids;

CREATE TABLE corral_tasks (
    id               BIGINT PRIMARY KEY DEFAULT nextval('corral_task_ids'),
    name             TEXT             NOT NULL,
    pool             TEXT             NOT NULL,
    group_name       TEXT             NOT NULL,
    state            TEXT             NOT NULL,
    priority         INTEGER          NOT NULL,
    level            INTEGER          NOT NULL,
    aging            TEXT             NOT NULL,
    promote_at       DOUBLE PRECISION,
    args             TEXT             NOT NULL,
    kwargs           TEXT             NOT NULL,
    dedup_key        TEXT,
    attempt          INTEGER          NOT NULL DEFAULT 0,
    failures         INTEGER          NOT NULL DEFAULT 0,
    max_retries      INTEGER          NOT NULL,
    backoff          TEXT             NOT NULL,
    max_runtime      DOUBLE PRECISION,
    on_timeout       TEXT             NOT NULL,
    created_at       DOUBLE PRECISION NOT NULL,
    enqueued_at      DOUBLE PRECISION NOT NULL, -- when it could first run (delay over, dependencies done); waits count from here
    run_at           DOUBLE PRECISION,          -- not before: a delay, or a retry's backoff
    ready_at         DOUBLE PRECISION,
    admitted_at      DOUBLE PRECISION,
    first_started_at DOUBLE PRECISION,
    started_at       DOUBLE PRECISION,
    finished_at      DOUBLE PRECISION,
    worker_id        TEXT,
    lease_expires_at DOUBLE PRECISION,
    cancel_requested BOOLEAN          NOT NULL DEFAULT FALSE,
    checkpoint       TEXT,
    shared           TEXT,
    result           TEXT,
    error            TEXT
) WITH (fillfactor = 80);

-- Invariant 7: at most one unfinished task per dedup key.
CREATE UNIQUE INDEX corral_tasks_dedup ON corral_tasks (dedup_key)
    WHERE dedup_key IS NOT NULL
      AND state NOT IN ('succeeded', 'dead', 'cancelled', 'upstream_failed');
CREATE INDEX corral_tasks_ready ON corral_tasks (pool, level DESC, ready_at, id) WHERE state = 'ready';
CREATE INDEX corral_tasks_admitted ON corral_tasks (pool, admitted_at, id) WHERE state = 'admitted';
CREATE INDEX corral_tasks_active ON corral_tasks (group_name, pool) WHERE state IN ('admitted', 'running');
CREATE INDEX corral_tasks_lease ON corral_tasks (lease_expires_at) WHERE state = 'running';
CREATE INDEX corral_tasks_worker ON corral_tasks (worker_id) WHERE state = 'running';
CREATE INDEX corral_tasks_promote ON corral_tasks (promote_at) WHERE state = 'ready' AND promote_at IS NOT NULL;
CREATE INDEX corral_tasks_retry ON corral_tasks (run_at) WHERE state = 'retry_wait';
CREATE INDEX corral_tasks_waiting ON corral_tasks (run_at) WHERE state = 'waiting';

CREATE TABLE corral_task_deps (
    task_id    BIGINT NOT NULL,
    depends_on BIGINT NOT NULL,
    PRIMARY KEY (task_id, depends_on)
);
CREATE INDEX corral_task_deps_upstream ON corral_task_deps (depends_on);

CREATE TABLE corral_attempts (
    task_id     BIGINT           NOT NULL,
    attempt     INTEGER          NOT NULL,
    worker_id   TEXT,
    started_at  DOUBLE PRECISION NOT NULL,
    finished_at DOUBLE PRECISION,
    outcome     TEXT,
    error       TEXT,
    traceback   TEXT,
    PRIMARY KEY (task_id, attempt)
);

CREATE TABLE corral_events (
    id         BIGSERIAL PRIMARY KEY,
    task_id    BIGINT           NOT NULL,
    at         DOUBLE PRECISION NOT NULL,
    kind       TEXT             NOT NULL,
    from_state TEXT,
    to_state   TEXT,
    attempt    INTEGER          NOT NULL,
    detail     TEXT
);
CREATE INDEX corral_events_task ON corral_events (task_id, id);

CREATE TABLE corral_logs (
    id      BIGSERIAL PRIMARY KEY,
    task_id BIGINT           NOT NULL,
    attempt INTEGER          NOT NULL,
    at      DOUBLE PRECISION NOT NULL,
    level   INTEGER          NOT NULL,
    message TEXT             NOT NULL
);
CREATE INDEX corral_logs_task ON corral_logs (task_id, attempt, id);

CREATE TABLE corral_workers (
    id               TEXT PRIMARY KEY,
    hostname         TEXT             NOT NULL,
    pid              INTEGER          NOT NULL,
    pools            TEXT[]           NOT NULL,
    concurrency      INTEGER          NOT NULL,
    started_at       DOUBLE PRECISION NOT NULL,
    heartbeat_at     DOUBLE PRECISION NOT NULL,
    lease_expires_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE corral_groups (
    name         TEXT PRIMARY KEY,
    max_parallel INTEGER,
    weight       DOUBLE PRECISION NOT NULL DEFAULT 1.0
);
