-- corral schema, version 7 (PostgreSQL): retention. The pruner (a leader service) deletes
-- finished tasks older than their type's retention, with their attempts, events, logs, submit ids
-- and emptied workflows, in bounded batches. These indexes keep each batch's cost flat as history
-- grows: the oldest finished tasks (of all types, and of one type), the submit rows of a moment,
-- the workflows a task is linked into.

CREATE INDEX corral_tasks_finished ON corral_tasks (finished_at)
    WHERE state IN ('succeeded', 'dead', 'cancelled', 'upstream_failed');
CREATE INDEX corral_tasks_finished_by_name ON corral_tasks (name, finished_at)
    WHERE state IN ('succeeded', 'dead', 'cancelled', 'upstream_failed');
CREATE INDEX corral_submits_created ON corral_submits (created_at);
CREATE INDEX corral_workflow_links_task ON corral_workflow_links (task_id);

-- How long finished tasks are kept, per task type; the row '*' is the default (absent: 7 days).
CREATE TABLE corral_retention (
    task_name TEXT PRIMARY KEY,
    seconds   DOUBLE PRECISION NOT NULL
);
