-- corral schema, version 15: the indexes over history are partial on finished_at, not on state.
-- finished_at is set by every move into a terminal state and cleared by the one move out (a
-- retry), so "finished_at IS NOT NULL" holds exactly the ended tasks, as "state IN (terminal)"
-- did. But an update looks at every index whose columns or predicate it writes: with state in
-- their predicates, each admission and claim (which never end a task) looked at these five too,
-- and SQLite's admit, claim and completion cost three to five times what they did before the
-- read side. finished_at is written by the completions only.

-- An ended task with no finished_at (none is written so; a row put in by hand could be) gets
-- the time of its last event, else its last start: the new predicate must hold every ended task.
UPDATE corral_tasks SET finished_at = coalesce(
    (SELECT max(e.at) FROM corral_events e WHERE e.task_id = corral_tasks.id),
    started_at, enqueued_at, created_at)
WHERE finished_at IS NULL AND state IN ('succeeded', 'dead', 'cancelled', 'upstream_failed');

DROP INDEX corral_tasks_ended_state;
DROP INDEX corral_tasks_ended_name;
DROP INDEX corral_tasks_ended_group;
DROP INDEX corral_tasks_finished;
DROP INDEX corral_tasks_finished_by_name;
CREATE INDEX corral_tasks_ended_state ON corral_tasks (state, id) WHERE finished_at IS NOT NULL;
CREATE INDEX corral_tasks_ended_name ON corral_tasks (name, id) WHERE finished_at IS NOT NULL;
CREATE INDEX corral_tasks_ended_group ON corral_tasks (group_name, id)
    WHERE finished_at IS NOT NULL;
CREATE INDEX corral_tasks_finished ON corral_tasks (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX corral_tasks_finished_by_name ON corral_tasks (name, finished_at)
    WHERE finished_at IS NOT NULL;
