-- corral schema, version 1 (SQLite). Times are UNIX epoch seconds (REAL), always given by the caller.

CREATE TABLE tasks (
    id               INTEGER PRIMARY KEY,
    name             TEXT    NOT NULL,
    pool             TEXT    NOT NULL,
    group_name       TEXT    NOT NULL,
    state            TEXT    NOT NULL,
    priority         INTEGER NOT NULL,
    level            INTEGER NOT NULL,
    aging            TEXT    NOT NULL,
    promote_at       REAL,
    args             TEXT    NOT NULL,
    kwargs           TEXT    NOT NULL,
    dedup_key        TEXT,
    attempt          INTEGER NOT NULL DEFAULT 0,
    failures         INTEGER NOT NULL DEFAULT 0,
    max_retries      INTEGER NOT NULL,
    backoff          TEXT    NOT NULL,
    max_runtime      REAL,
    on_timeout       TEXT    NOT NULL,
    created_at       REAL    NOT NULL,
    enqueued_at      REAL    NOT NULL, -- when it could first run (delay over, dependencies done); waits count from here
    run_at           REAL,             -- not before: the delay of a waiting task, the backoff of a retry
    ready_at         REAL,
    admitted_at      REAL,
    first_started_at REAL,
    started_at       REAL,
    finished_at      REAL,
    worker_id        TEXT,
    lease_expires_at REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    checkpoint       TEXT,
    shared           TEXT,
    result           TEXT,
    error            TEXT
);

-- Invariant 7: at most one unfinished task per dedup key.
CREATE UNIQUE INDEX tasks_dedup ON tasks (dedup_key)
    WHERE dedup_key IS NOT NULL
      AND state NOT IN ('succeeded', 'dead', 'cancelled', 'upstream_failed');
-- Dispatcher: the best ready tasks of a pool.
CREATE INDEX tasks_ready ON tasks (pool, level DESC, ready_at, id) WHERE state = 'ready';
-- Claims: admitted tasks of a pool in admission order.
CREATE INDEX tasks_admitted ON tasks (pool, admitted_at, id) WHERE state = 'admitted';
-- Slots held, per pool and per group (bounded by capacity, not by the backlog).
CREATE INDEX tasks_active ON tasks (group_name, pool) WHERE state IN ('admitted', 'running');
-- Reaper and heartbeats.
CREATE INDEX tasks_lease ON tasks (lease_expires_at) WHERE state = 'running';
CREATE INDEX tasks_worker ON tasks (worker_id) WHERE state = 'running';
-- Promoter: only tasks whose level is due to change.
CREATE INDEX tasks_promote ON tasks (promote_at) WHERE state = 'ready' AND promote_at IS NOT NULL;
-- Resolver: delayed, dependent and backing-off tasks.
CREATE INDEX tasks_retry ON tasks (run_at) WHERE state = 'retry_wait';
CREATE INDEX tasks_waiting ON tasks (run_at) WHERE state = 'waiting';

CREATE TABLE task_deps (
    task_id    INTEGER NOT NULL REFERENCES tasks (id),
    depends_on INTEGER NOT NULL REFERENCES tasks (id),
    PRIMARY KEY (task_id, depends_on)
) WITHOUT ROWID;
CREATE INDEX task_deps_upstream ON task_deps (depends_on);

CREATE TABLE attempts (
    task_id     INTEGER NOT NULL REFERENCES tasks (id),
    attempt     INTEGER NOT NULL,
    worker_id   TEXT,
    started_at  REAL    NOT NULL,
    finished_at REAL,
    outcome     TEXT,
    error       TEXT,
    traceback   TEXT,
    PRIMARY KEY (task_id, attempt)
) WITHOUT ROWID;

CREATE TABLE events (
    id         INTEGER PRIMARY KEY,
    task_id    INTEGER NOT NULL,
    at         REAL    NOT NULL,
    kind       TEXT    NOT NULL,
    from_state TEXT,
    to_state   TEXT,
    attempt    INTEGER NOT NULL,
    detail     TEXT
);
CREATE INDEX events_task ON events (task_id, id);

CREATE TABLE logs (
    id      INTEGER PRIMARY KEY,
    task_id INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    at      REAL    NOT NULL,
    level   INTEGER NOT NULL,
    message TEXT    NOT NULL
);
CREATE INDEX logs_task ON logs (task_id, attempt, id);

CREATE TABLE workers (
    id               TEXT PRIMARY KEY,
    hostname         TEXT    NOT NULL,
    pid              INTEGER NOT NULL,
    pools            TEXT    NOT NULL,
    concurrency      INTEGER NOT NULL,
    started_at       REAL    NOT NULL,
    heartbeat_at     REAL    NOT NULL,
    lease_expires_at REAL    NOT NULL
);

CREATE TABLE groups (
    name         TEXT PRIMARY KEY,
    max_parallel INTEGER,
    weight       REAL NOT NULL DEFAULT 1.0
);

CREATE TABLE leaders (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at REAL NOT NULL
);
