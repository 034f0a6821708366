-- corral schema, version 7 (SQLite): retention. The pruner (a leader service) deletes finished
-- tasks older than their type's retention, with their attempts, events, logs, submit ids and
-- emptied workflows, in bounded batches. These indexes keep each batch's cost flat as history
-- grows: the oldest finished tasks (of all types, and of one type), the submit rows of a moment,
-- the workflows a task is linked into.

CREATE INDEX tasks_finished ON tasks (finished_at)
    WHERE state IN ('succeeded', 'dead', 'cancelled', 'upstream_failed');
CREATE INDEX tasks_finished_by_name ON tasks (name, finished_at)
    WHERE state IN ('succeeded', 'dead', 'cancelled', 'upstream_failed');
CREATE INDEX submits_created ON submits (created_at);
CREATE INDEX workflow_links_task ON workflow_links (task_id);

-- How long finished tasks are kept, per task type; the row '*' is the default (absent: 7 days).
CREATE TABLE retention (
    task_name TEXT PRIMARY KEY,
    seconds   REAL NOT NULL
);
