-- corral schema, version 4 (SQLite): suspects, isolated runs and quarantine.

-- A task lost while its worker ran other tasks: it runs alone next (see corral.isolation).
ALTER TABLE tasks ADD COLUMN suspect INTEGER NOT NULL DEFAULT 0;
-- Attempts lost while the task ran alone on its worker: at quarantine_after it is dead.
ALTER TABLE tasks ADD COLUMN isolated_crashes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN quarantine_after INTEGER NOT NULL DEFAULT 2;
-- The busy worker that stops claiming until it is idle, to run this overdue suspect, and until
-- when its mark holds (renewed each heartbeat; a lapsed mark is free for another worker).
ALTER TABLE tasks ADD COLUMN drainer TEXT;
ALTER TABLE tasks ADD COLUMN drain_until REAL;
-- The attempt ran isolated: its worker ran nothing else meanwhile.
ALTER TABLE attempts ADD COLUMN isolated INTEGER NOT NULL DEFAULT 0;

-- Claims by idle workers: the admitted suspects of a pool in admission order.
CREATE INDEX tasks_admitted_suspect ON tasks (pool, admitted_at, id)
    WHERE state = 'admitted' AND suspect = 1;
