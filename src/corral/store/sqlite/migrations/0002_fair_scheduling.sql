-- corral schema, version 2 (SQLite): fair scheduling.
--
-- Per-group heads. The dispatcher must see every group that has ready work without scanning the
-- backlog. `ready_groups` holds one row per (pool, group) with ready tasks: the level and ready
-- time of the group's head, in an index the dispatcher reads best-first. Only the scheduler's
-- leader writes it; every other writer leaves a hint instead (one row, no conflicts), and the
-- leader folds the hints into `ready_groups` at the start of each round by looking the hinted
-- groups' heads up again. A hint commits with the change that caused it, so no group is lost.

-- Within a dependency group: a higher topological rank is admitted first; an exclusive task
-- runs alone in its group.
ALTER TABLE tasks ADD COLUMN rank INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN exclusive INTEGER NOT NULL DEFAULT 0;
-- The named rate limit (token bucket) the task draws on, besides its group's.
ALTER TABLE tasks ADD COLUMN rate_key TEXT;

-- A group's ready tasks in admission order: the head of each group, one index probe. It replaces
-- the pool-wide order, which the dispatcher no longer reads.
DROP INDEX tasks_ready;
CREATE INDEX tasks_group_ready ON tasks (pool, group_name, level DESC, rank DESC, ready_at, id)
    WHERE state = 'ready';
-- Slots held per group and pool, and whether an exclusive task holds one.
DROP INDEX tasks_active;
CREATE INDEX tasks_active ON tasks (group_name, pool, exclusive) WHERE state IN ('admitted', 'running');

CREATE TABLE ready_groups (
    pool       TEXT    NOT NULL,
    group_name TEXT    NOT NULL,
    level      INTEGER NOT NULL,
    ready_at   REAL    NOT NULL,
    PRIMARY KEY (pool, group_name)
) WITHOUT ROWID;
CREATE INDEX ready_groups_best ON ready_groups (pool, level DESC, ready_at);

-- At most one hint per group waits (SQLite has one writer at a time, so the unique key costs no
-- waiting): a bulk load of a million tasks leaves one hint per group, not a million.
CREATE TABLE ready_hints (
    id         INTEGER PRIMARY KEY,
    pool       TEXT NOT NULL,
    group_name TEXT NOT NULL,
    UNIQUE (pool, group_name)
);

-- A task became ready, or a ready task's level changed or it left `ready` (not by admission:
-- the dispatcher records the heads its admissions change). Inserted tasks are hinted by the one
-- statement that inserts tasks, once per group and batch (a row trigger costs a bulk load 15%).
CREATE TRIGGER tasks_hint_update AFTER UPDATE OF state, level ON tasks
WHEN NEW.state != 'admitted' AND (OLD.state = 'ready' OR NEW.state = 'ready')
     AND (OLD.state != NEW.state OR OLD.level != NEW.level)
BEGIN
    INSERT OR IGNORE INTO ready_hints (pool, group_name) VALUES (NEW.pool, NEW.group_name);
END;

-- Rate limits: a group's own (the name '*' holds the defaults of groups never configured), and
-- named ones that task types draw on. `per_second` and `burst` are parsed from `rate_limit`.
ALTER TABLE groups ADD COLUMN rate_limit TEXT;
ALTER TABLE groups ADD COLUMN per_second REAL;
ALTER TABLE groups ADD COLUMN burst REAL;
CREATE TABLE rate_limits (
    key        TEXT PRIMARY KEY,
    rate_limit TEXT NOT NULL,
    per_second REAL NOT NULL,
    burst      REAL NOT NULL
);
-- Token buckets ('group:<name>' or 'key:<name>'): tokens left at updated_at, and the rate they
-- refill at (as of the last draw). A missing row is a full bucket.
CREATE TABLE rate_buckets (
    key        TEXT PRIMARY KEY,
    tokens     REAL NOT NULL,
    updated_at REAL NOT NULL,
    per_second REAL NOT NULL,
    burst      REAL NOT NULL
) WITHOUT ROWID;

INSERT OR IGNORE INTO ready_hints (pool, group_name)
SELECT DISTINCT pool, group_name FROM tasks WHERE state = 'ready';
