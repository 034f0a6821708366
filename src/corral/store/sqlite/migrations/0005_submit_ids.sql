-- corral schema, version 5 (SQLite): submit ids. A submit call records, under its own id, the ids
-- of the tasks (and the workflow) it stored, in the same transaction. A call under a recorded id
-- returns those tasks, whatever their state, instead of storing them twice. One row per call, not
-- an index entry per task: bulk submits stay fast.

CREATE TABLE submits (
    submit_id   TEXT PRIMARY KEY,
    task_ids    TEXT NOT NULL, -- a JSON array, in the call's order
    workflow_id INTEGER,
    created_at  REAL NOT NULL
);
