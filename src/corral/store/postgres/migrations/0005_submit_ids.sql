-- corral schema, version 5 (PostgreSQL): submit ids. A submit call records, under its own id, the
-- ids of the tasks (and the workflow) it stored, in the same transaction. A retry of the call
-- after a lost reply finds the record and returns those tasks, whatever their state, instead of
-- storing them twice. One row per call, not an index entry per task: bulk submits stay fast.

CREATE TABLE corral_submits (
    submit_id   TEXT PRIMARY KEY,
    task_ids    BIGINT[]         NOT NULL, -- in the call's order
    workflow_id BIGINT,
    created_at  DOUBLE PRECISION NOT NULL
);
