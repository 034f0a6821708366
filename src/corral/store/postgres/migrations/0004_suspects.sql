-- corral schema, version 4 (PostgreSQL): suspects, isolated runs and quarantine.

-- suspect: the task was lost while its worker ran other tasks, so it runs alone next (see
-- corral.isolation). isolated_crashes: its attempts lost while it ran alone; at quarantine_after
-- it is dead.
ALTER TABLE corral_tasks
    ADD COLUMN suspect BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN isolated_crashes INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN quarantine_after INTEGER NOT NULL DEFAULT 2,
    -- The busy worker that stops claiming until it is idle, to run this overdue suspect, and
    -- until when its mark holds (renewed each heartbeat; a lapsed mark is free for another).
    ADD COLUMN drainer TEXT,
    ADD COLUMN drain_until DOUBLE PRECISION;
-- The attempt ran isolated: its worker ran nothing else meanwhile.
ALTER TABLE corral_attempts ADD COLUMN isolated BOOLEAN NOT NULL DEFAULT FALSE;

-- Claims by idle workers: the admitted suspects of a pool in admission order.
CREATE INDEX corral_tasks_admitted_suspect ON corral_tasks (pool, admitted_at, id)
    WHERE state = 'admitted' AND suspect;
