-- corral schema, version 3 (PostgreSQL): workflows, dependency settling, time-slice stalls, and
-- the cursors of event consumers (state-change callbacks).

CREATE TABLE corral_workflows (
    id         BIGSERIAL PRIMARY KEY,
    name       TEXT             NOT NULL,
    group_name TEXT             NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);

-- on_upstream_failure 'fail': a dead, cancelled or upstream_failed dependency makes this task
-- upstream_failed; 'run': any end of a dependency lets it run. deps_left, of a waiting task: its
-- dependencies not settled yet (0: only its run_at holds it; -1: a dependency failed and it is
-- 'fail'), kept by the resolver, which recounts only the dependents of tasks that ended, so
-- release cost follows the finished upstreams, not the waiting backlog. has_dependents: only
-- then does a task's end queue work for the resolver. stalled_slices: consecutive time slices
-- that ended with the checkpoint unchanged.
ALTER TABLE corral_tasks
    ADD COLUMN workflow_id BIGINT,
    ADD COLUMN on_upstream_failure TEXT NOT NULL DEFAULT 'fail',
    ADD COLUMN deps_left INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN has_dependents BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN stalled_slices INTEGER NOT NULL DEFAULT 0;

CREATE INDEX corral_tasks_workflow ON corral_tasks (workflow_id) WHERE workflow_id IS NOT NULL;
-- Resolver: waiting tasks free of dependencies (by run_at), and those doomed by one (-1).
CREATE INDEX corral_tasks_waiting_settled ON corral_tasks (deps_left, run_at)
    WHERE state = 'waiting' AND deps_left <= 0;

-- Tasks with dependents that reached a terminal state, for the resolver to settle. The trigger's
-- WHEN is checked without calling the function, so tasks nothing depends on (the hot path) pay
-- nothing.
CREATE TABLE corral_upstream_ended (
    id      BIGSERIAL PRIMARY KEY,
    task_id BIGINT NOT NULL
);
CREATE FUNCTION corral_note_upstream_ended() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO corral_upstream_ended (task_id) VALUES (NEW.id);
    RETURN NULL;
END $$;
CREATE TRIGGER corral_tasks_upstream_ended AFTER UPDATE OF state ON corral_tasks FOR EACH ROW
    WHEN (NEW.has_dependents AND OLD.state <> NEW.state
          AND NEW.state IN ('succeeded', 'dead', 'cancelled', 'upstream_failed'))
    EXECUTE FUNCTION corral_note_upstream_ended();

-- Tasks waiting at upgrade time: their dependency counts, from the rows.
UPDATE corral_tasks SET has_dependents = TRUE
WHERE id IN (SELECT depends_on FROM corral_task_deps);
UPDATE corral_tasks t SET deps_left = CASE
    WHEN EXISTS (SELECT 1 FROM corral_task_deps d JOIN corral_tasks u ON u.id = d.depends_on
                 WHERE d.task_id = t.id AND u.state IN ('dead', 'cancelled', 'upstream_failed'))
    THEN -1
    ELSE (SELECT count(*) FROM corral_task_deps d JOIN corral_tasks u ON u.id = d.depends_on
          WHERE d.task_id = t.id AND u.state <> 'succeeded') END
WHERE state = 'waiting';

-- Event consumers. Event ids come from a sequence, so they do NOT commit in id order: a reader
-- that kept "the last id seen" could pass an id whose transaction commits later, and skip it.
-- So each event records the id of the transaction that wrote it, and a consumer reads only the
-- events of transactions older than every transaction that may still write one (see
-- queries.EVENTS_UNSEEN): no event can appear among those later. It reads them in (xid, id) order, which is
-- then fixed, and its cursor is the (xid, id) of the last event delivered. Events from before
-- this schema have no xid and are not delivered.
ALTER TABLE corral_events ADD COLUMN xid BIGINT;
ALTER TABLE corral_events ALTER COLUMN xid SET DEFAULT (pg_current_xact_id()::text::bigint);
CREATE INDEX corral_events_commit ON corral_events (xid, id);

-- Each consumer's cursor, under a lease so one delivers at a time. The row '*' is where a new
-- consumer starts.
CREATE TABLE corral_consumers (
    name             TEXT PRIMARY KEY,
    holder           TEXT,
    lease_expires_at DOUBLE PRECISION NOT NULL DEFAULT 0,
    cursor_xid       BIGINT           NOT NULL DEFAULT 0,
    cursor_id        BIGINT           NOT NULL DEFAULT 0
);
INSERT INTO corral_consumers (name) VALUES ('*');
