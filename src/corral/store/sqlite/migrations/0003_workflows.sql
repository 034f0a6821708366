-- corral schema, version 3 (SQLite): workflows, dependency settling, time-slice stalls, and the
-- cursors of event consumers (state-change callbacks).

CREATE TABLE workflows (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    group_name TEXT NOT NULL,
    created_at REAL NOT NULL
);

ALTER TABLE tasks ADD COLUMN workflow_id INTEGER REFERENCES workflows (id);
-- 'fail': a dead, cancelled or upstream_failed dependency makes this task upstream_failed;
-- 'run': any end of a dependency lets it run.
ALTER TABLE tasks ADD COLUMN on_upstream_failure TEXT NOT NULL DEFAULT 'fail';
-- Of a waiting task: its dependencies not settled yet (0: only its run_at holds it; -1: a
-- dependency failed and on_upstream_failure is 'fail'). Kept by the resolver, which recounts only
-- the dependents of tasks that ended: release cost follows the finished upstreams, not the
-- waiting backlog.
ALTER TABLE tasks ADD COLUMN deps_left INTEGER NOT NULL DEFAULT 0;
-- Whether some task depends on this one: only then does its end queue work for the resolver.
ALTER TABLE tasks ADD COLUMN has_dependents INTEGER NOT NULL DEFAULT 0;
-- Consecutive time slices that ended with the checkpoint unchanged.
ALTER TABLE tasks ADD COLUMN stalled_slices INTEGER NOT NULL DEFAULT 0;

CREATE INDEX tasks_workflow ON tasks (workflow_id) WHERE workflow_id IS NOT NULL;
-- Resolver: waiting tasks free of dependencies (by run_at), and those doomed by one (-1).
CREATE INDEX tasks_waiting_settled ON tasks (deps_left, run_at)
    WHERE state = 'waiting' AND deps_left <= 0;

-- Tasks with dependents that reached a terminal state, for the resolver to settle.
CREATE TABLE upstream_ended (
    id      INTEGER PRIMARY KEY,
    task_id INTEGER NOT NULL
);
CREATE TRIGGER tasks_upstream_ended AFTER UPDATE OF state ON tasks
WHEN NEW.has_dependents = 1 AND OLD.state != NEW.state
     AND NEW.state IN ('succeeded', 'dead', 'cancelled', 'upstream_failed')
BEGIN
    INSERT INTO upstream_ended (task_id) VALUES (NEW.id);
END;

-- Tasks waiting at upgrade time: their dependency counts, from the rows.
UPDATE tasks SET has_dependents = 1 WHERE id IN (SELECT depends_on FROM task_deps);
UPDATE tasks SET deps_left = (
    SELECT count(*) FROM task_deps d JOIN tasks u ON u.id = d.depends_on
    WHERE d.task_id = tasks.id AND u.state != 'succeeded')
WHERE state = 'waiting';
UPDATE tasks SET deps_left = -1
WHERE state = 'waiting' AND EXISTS (
    SELECT 1 FROM task_deps d JOIN tasks u ON u.id = d.depends_on
    WHERE d.task_id = tasks.id AND u.state IN ('dead', 'cancelled', 'upstream_failed'));

-- Event consumers: each reads the events after its cursor, under a lease so one delivers at a
-- time. SQLite assigns event ids in commit order (one writer at a time), so a cursor is the last
-- id delivered (`cursor_xid` stays 0). The row '*' is where a new consumer starts: the events
-- recorded from this schema on.
CREATE TABLE consumers (
    name             TEXT PRIMARY KEY,
    holder           TEXT,
    lease_expires_at REAL    NOT NULL DEFAULT 0,
    cursor_xid       INTEGER NOT NULL DEFAULT 0,
    cursor_id        INTEGER NOT NULL DEFAULT 0
);
INSERT INTO consumers (name, cursor_id) SELECT '*', coalesce(max(id), 0) FROM events;
