-- corral's tables, indexes and triggers take the corral_ prefix, as on PostgreSQL, so that they
-- can't collide with the tables of a user's own database (submit(connection=...) writes tasks in
-- the caller's transaction, on the caller's file). ALTER TABLE ... RENAME keeps every row and
-- rewrites the foreign keys, indexes and triggers that name the table; indexes and triggers are
-- then recreated under their prefixed names (SQLite can't rename them). The migrations table
-- itself (schema_migrations) is renamed by the migrator before any migration runs.

ALTER TABLE attempts RENAME TO corral_attempts;
ALTER TABLE consumers RENAME TO corral_consumers;
ALTER TABLE events RENAME TO corral_events;
ALTER TABLE groups RENAME TO corral_groups;
ALTER TABLE leaders RENAME TO corral_leaders;
ALTER TABLE logs RENAME TO corral_logs;
ALTER TABLE rate_buckets RENAME TO corral_rate_buckets;
ALTER TABLE rate_limits RENAME TO corral_rate_limits;
ALTER TABLE ready_groups RENAME TO corral_ready_groups;
ALTER TABLE ready_hints RENAME TO corral_ready_hints;
ALTER TABLE retention RENAME TO corral_retention;
ALTER TABLE submits RENAME TO corral_submits;
ALTER TABLE task_deps RENAME TO corral_task_deps;
ALTER TABLE tasks RENAME TO corral_tasks;
ALTER TABLE upstream_ended RENAME TO corral_upstream_ended;
ALTER TABLE workers RENAME TO corral_workers;
ALTER TABLE workflow_links RENAME TO corral_workflow_links;
ALTER TABLE workflows RENAME TO corral_workflows;

DROP INDEX events_task;
CREATE INDEX corral_events_task ON corral_events (task_id, id);
DROP INDEX logs_task;
CREATE INDEX corral_logs_task ON corral_logs (task_id, attempt, id);
DROP INDEX ready_groups_best;
CREATE INDEX corral_ready_groups_best ON corral_ready_groups (pool, level DESC, ready_at);
DROP INDEX submits_created;
CREATE INDEX corral_submits_created ON corral_submits (created_at);
DROP INDEX task_deps_upstream;
CREATE INDEX corral_task_deps_upstream ON corral_task_deps (depends_on);
DROP INDEX tasks_active;
CREATE INDEX corral_tasks_active ON corral_tasks (group_name, pool, exclusive) WHERE state IN ('admitted', 'running');
DROP INDEX tasks_admitted;
CREATE INDEX corral_tasks_admitted ON corral_tasks (pool, admitted_at, id) WHERE state = 'admitted';
DROP INDEX tasks_admitted_suspect;
CREATE INDEX corral_tasks_admitted_suspect ON corral_tasks (pool, admitted_at, id) WHERE state = 'admitted' AND suspect = 1;
DROP INDEX tasks_dedup;
CREATE UNIQUE INDEX corral_tasks_dedup ON corral_tasks (dedup_key) WHERE dedup_key IS NOT NULL AND state NOT IN ('succeeded', 'dead', 'cancelled', 'upstream_failed');
DROP INDEX tasks_finished;
CREATE INDEX corral_tasks_finished ON corral_tasks (finished_at) WHERE state IN ('succeeded', 'dead', 'cancelled', 'upstream_failed');
DROP INDEX tasks_finished_by_name;
CREATE INDEX corral_tasks_finished_by_name ON corral_tasks (name, finished_at) WHERE state IN ('succeeded', 'dead', 'cancelled', 'upstream_failed');
DROP INDEX tasks_group_ready;
CREATE INDEX corral_tasks_group_ready ON corral_tasks (pool, group_name, level DESC, rank DESC, ready_at, id) WHERE state = 'ready';
DROP INDEX tasks_lease;
CREATE INDEX corral_tasks_lease ON corral_tasks (lease_expires_at) WHERE state = 'running';
DROP INDEX tasks_promote;
CREATE INDEX corral_tasks_promote ON corral_tasks (promote_at) WHERE state = 'ready' AND promote_at IS NOT NULL;
DROP INDEX tasks_retry;
CREATE INDEX corral_tasks_retry ON corral_tasks (run_at) WHERE state = 'retry_wait';
DROP INDEX tasks_waiting;
CREATE INDEX corral_tasks_waiting ON corral_tasks (run_at) WHERE state = 'waiting';
DROP INDEX tasks_waiting_settled;
CREATE INDEX corral_tasks_waiting_settled ON corral_tasks (deps_left, run_at) WHERE state = 'waiting' AND deps_left <= 0;
DROP INDEX tasks_worker;
CREATE INDEX corral_tasks_worker ON corral_tasks (worker_id) WHERE state = 'running';
DROP INDEX tasks_workflow;
CREATE INDEX corral_tasks_workflow ON corral_tasks (workflow_id) WHERE workflow_id IS NOT NULL;
DROP TRIGGER tasks_hint_update;
CREATE TRIGGER corral_tasks_hint_update AFTER UPDATE OF state, level ON corral_tasks
    WHEN NEW.state != 'admitted' AND (OLD.state = 'ready' OR NEW.state = 'ready')
    AND (OLD.state != NEW.state OR OLD.level != NEW.level)
BEGIN
    INSERT OR IGNORE INTO corral_ready_hints (pool, group_name) VALUES (NEW.pool, NEW.group_name);
END;
DROP TRIGGER tasks_upstream_ended;
CREATE TRIGGER corral_tasks_upstream_ended AFTER UPDATE OF state ON corral_tasks
    WHEN NEW.has_dependents = 1 AND OLD.state != NEW.state
    AND NEW.state IN ('succeeded', 'dead', 'cancelled', 'upstream_failed')
BEGIN
    INSERT INTO corral_upstream_ended (task_id) VALUES (NEW.id);
END;
DROP INDEX workflow_links_task;
CREATE INDEX corral_workflow_links_task ON corral_workflow_links (task_id);
