-- corral schema, version 2 (PostgreSQL): fair scheduling.
--
-- Per-group heads. The dispatcher must see every group that has ready work without scanning the
-- backlog. `corral_ready_groups` holds one row per (pool, group) with ready tasks: the level and
-- ready time of the group's head, in an index the dispatcher reads best-first. Only the
-- scheduler's leader writes it (through its leadership session); every other writer leaves a
-- hint instead: an insert, so submitters never wait on each other's locks. The leader folds the
-- hints at the start of each round by looking the hinted groups' heads up again. A hint commits
-- with the change that caused it, so no group is lost.

-- Within a dependency group: a higher topological rank is admitted first; an exclusive task
-- runs alone in its group. `rate_key`: the named rate limit the task draws on.
ALTER TABLE corral_tasks
    ADD COLUMN rank INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN exclusive BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN rate_key TEXT;

-- A group's ready tasks in admission order: the head of each group, one index probe. It replaces
-- the pool-wide order, which the dispatcher no longer reads (and which a planner without fresh
-- statistics would pick for a group's head, reading the whole pool).
DROP INDEX corral_tasks_ready;
CREATE INDEX corral_tasks_group_ready
    ON corral_tasks (pool, group_name, level DESC, rank DESC, ready_at, id) WHERE state = 'ready';
-- Slots held per group and pool, and whether an exclusive task holds one.
DROP INDEX corral_tasks_active;
CREATE INDEX corral_tasks_active ON corral_tasks (group_name, pool, exclusive)
    WHERE state IN ('admitted', 'running');

CREATE TABLE corral_ready_groups (
    pool       TEXT             NOT NULL,
    group_name TEXT             NOT NULL,
    level      INTEGER          NOT NULL,
    ready_at   DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (pool, group_name)
);
CREATE INDEX corral_ready_groups_best ON corral_ready_groups (pool, level DESC, ready_at);

CREATE TABLE corral_ready_hints (
    id         BIGSERIAL PRIMARY KEY,
    pool       TEXT NOT NULL,
    group_name TEXT NOT NULL
);

-- Inserted ready tasks: one hint per group and statement (COPY included).
CREATE FUNCTION corral_hint_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO corral_ready_hints (pool, group_name)
    SELECT DISTINCT pool, group_name FROM inserted WHERE state = 'ready';
    RETURN NULL;
END $$;
CREATE TRIGGER corral_tasks_hint_insert AFTER INSERT ON corral_tasks
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION corral_hint_inserted();

-- A task became ready, or a ready task's level changed or it left `ready` (not by admission:
-- the dispatcher records the heads its admissions change, so the hot path calls no trigger).
CREATE FUNCTION corral_hint_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO corral_ready_hints (pool, group_name) VALUES (NEW.pool, NEW.group_name);
    RETURN NULL;
END $$;
CREATE TRIGGER corral_tasks_hint_update AFTER UPDATE OF state, level ON corral_tasks FOR EACH ROW
    WHEN (NEW.state <> 'admitted' AND (OLD.state = 'ready' OR NEW.state = 'ready')
          AND (OLD.state <> NEW.state OR OLD.level <> NEW.level))
    EXECUTE FUNCTION corral_hint_changed();

-- Rate limits: a group's own (the name '*' holds the defaults of groups never configured), and
-- named ones that task types draw on. `per_second` and `burst` are parsed from `rate_limit`.
ALTER TABLE corral_groups
    ADD COLUMN rate_limit TEXT,
    ADD COLUMN per_second DOUBLE PRECISION,
    ADD COLUMN burst DOUBLE PRECISION;
CREATE TABLE corral_rate_limits (
    key        TEXT PRIMARY KEY,
    rate_limit TEXT             NOT NULL,
    per_second DOUBLE PRECISION NOT NULL,
    burst      DOUBLE PRECISION NOT NULL
);
-- Token buckets ('group:<name>' or 'key:<name>'): tokens left at updated_at, and the rate they
-- refill at (as of the last draw). A missing row is a full bucket.
CREATE TABLE corral_rate_buckets (
    key        TEXT PRIMARY KEY,
    tokens     DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    per_second DOUBLE PRECISION NOT NULL,
    burst      DOUBLE PRECISION NOT NULL
);

INSERT INTO corral_ready_hints (pool, group_name)
SELECT DISTINCT pool, group_name FROM corral_tasks WHERE state = 'ready';
