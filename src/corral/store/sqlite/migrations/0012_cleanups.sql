-- corral schema, version 12: clean-ups of client resources after an attempt ended badly.

-- The task's type has a clean-up (on_cleanup): a lost attempt of it leaves a clean-up row and
-- holds its next attempt until the clean-up ended. 0: behaves as before, no row, no statement.
ALTER TABLE corral_tasks ADD COLUMN cleanup INTEGER NOT NULL DEFAULT 0;

-- One clean-up per failed attempt, written in the transaction that records the attempt's bad
-- end. state: pending (next_try_at: when it may be claimed), running (held by holder;
-- next_try_at: when its lease lapses and another worker may claim it), succeeded or failed.
-- release_at: when the task's held retry is due (NULL: the task did not go to retry_wait).
CREATE TABLE corral_cleanups (
    id          INTEGER PRIMARY KEY,
    task_id     INTEGER NOT NULL,
    task_name   TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    shared      TEXT,
    state       TEXT NOT NULL DEFAULT 'pending',
    tries       INTEGER NOT NULL DEFAULT 0,
    next_try_at REAL,
    holder      TEXT,
    release_at  REAL,
    created_at  REAL NOT NULL,
    finished_at REAL,
    last_error  TEXT,
    UNIQUE (task_id, attempt)
);
-- Claims: the due clean-ups, pending or with a lapsed lease.
CREATE INDEX corral_cleanups_due ON corral_cleanups (next_try_at)
    WHERE state IN ('pending', 'running');
