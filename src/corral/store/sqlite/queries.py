"""Every SQL statement of the SQLite store, named, each with a line saying what it does.

Parameters are named (`:now`); lists travel as JSON arrays read with json_each, so a statement's
text never depends on the size of its input. The exceptions are the statements that write many
tasks from rows of values each (INSERT_TASKS, ADMIT_MANY, COMPLETE_MANY): a batch is cut into
pieces of a few sizes (`by_size`), each a VALUES list of positional parameters, floats bound as
they are.
"""

from __future__ import annotations

from ...moves import CLAIM as _CLAIM
from ...moves import TERMINAL_SQL
from ..rows import GROUP_FIELDS, ROW_FIELDS

PIECE_SIZES = (64, 32, 16, 8, 4, 2, 1)
"""The sizes a batch is cut into for a statement of many rows (`by_size`): a few texts, each
prepared once a connection."""


def by_size(sql: str, width: int) -> dict[int, str]:
    """`sql`, whose `{rows}` is a VALUES list, for each of PIECE_SIZES rows of `width`
    parameters, largest first."""
    row = "(" + ", ".join(["?"] * width) + ")"
    return {size: sql.format(rows=", ".join([row] * size)) for size in PIECE_SIZES}


# -- schema -------------------------------------------------------------------------------------

# A database migrated by a release before 0008 keeps its migrations table unprefixed, beside
# corral's unprefixed tables; the migrator renames it first (0008 renames the rest).
LEGACY_MIGRATIONS = """
SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'
  AND EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'task_deps')
  AND NOT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'corral_schema_migrations')
"""
RENAME_LEGACY_MIGRATIONS = "ALTER TABLE schema_migrations RENAME TO corral_schema_migrations"
# A file corral never migrated (new, or the user's own database): installed from schema.sql.
NEVER_MIGRATED = """
SELECT NOT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'corral_schema_migrations')
   AND NOT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'task_deps')
"""
# The rows the migrations seed, which schema.sql (tables, not rows) lacks: the origin that new
# event consumers start from (0003). A test compares every row of both ways of installing.
SEED_FRESH = "INSERT INTO corral_consumers (name, cursor_id) VALUES ('*', 0)"
# The migrations table; created before anything else.
CREATE_MIGRATIONS = """
CREATE TABLE IF NOT EXISTS corral_schema_migrations (
    version INTEGER PRIMARY KEY, applied_at REAL NOT NULL
)
"""
# Versions already applied.
APPLIED_MIGRATIONS = "SELECT version FROM corral_schema_migrations ORDER BY version"
# Record one applied migration.
RECORD_MIGRATION = "INSERT INTO corral_schema_migrations (version, applied_at) VALUES (?, ?)"

# -- submit -------------------------------------------------------------------------------------

# Unfinished tasks holding any of the dedup keys (a JSON array).
FIND_DEDUP = f"""
SELECT dedup_key, id FROM corral_tasks
WHERE dedup_key IN (SELECT value FROM json_each(:keys)) AND state NOT IN {TERMINAL_SQL}
"""
# What a submit call recorded under its submit id: its tasks' ids (a JSON array), its workflow's.
FIND_SUBMIT = "SELECT task_ids, workflow_id FROM corral_submits WHERE submit_id = ?"
# Record a submit call under its submit id (a second one with the id violates the primary key).
RECORD_SUBMIT = """
INSERT INTO corral_submits (submit_id, task_ids, workflow_id, created_at)
VALUES (:submit_id, :task_ids, :workflow_id, :now)
"""
# Which of the ids (a JSON array) exist.
EXISTING_IDS = "SELECT id FROM corral_tasks WHERE id IN (SELECT value FROM json_each(:ids))"
# The next free task id (inside the immediate transaction, so no one else takes it).
NEXT_TASK_ID = "SELECT coalesce(max(id), 0) + 1 FROM corral_tasks"
# Insert tasks, a row of rows.ROW_FIELDS each (positional: a bulk submit binds each row as it
# is; looking up 31 names in a dict per row was half of what the insert cost): by how many it
# takes (queries.by_size), largest first. An INSERT into tasks opens each of their indexes at
# every execution, as an UPDATE of their state does.
INSERT_TASKS = by_size(
    """
INSERT INTO corral_tasks (
    id, name, pool, group_name, state, priority, level, aging, promote_at, args, kwargs,
    dedup_key, max_retries, backoff, max_runtime, on_timeout, created_at, enqueued_at, run_at,
    ready_at, rank, exclusive, rate_key, workflow_id, on_upstream_failure, deps_left,
    quarantine_after, cleanup, logical_time, data_start, trace_context, schedule_name)
VALUES {rows}
""",
    len(ROW_FIELDS),
)
# Insert one dependency edge.
INSERT_DEP = "INSERT OR IGNORE INTO corral_task_deps (task_id, depends_on) VALUES (?, ?)"
# Hint a group whose ready tasks changed (at most one hint per group waits).
INSERT_HINT = "INSERT OR IGNORE INTO corral_ready_hints (pool, group_name) VALUES (?, ?)"
# The `submitted` event of each task of ids first..last (the ones a submit just inserted, given
# consecutive ids in its write), in id order, copied from their rows in one statement.
INSERT_SUBMITTED_EVENTS = """
INSERT INTO corral_events (task_id, at, kind, from_state, to_state, attempt, detail)
SELECT id, :now, 'submitted', NULL, state, 0, NULL FROM corral_tasks
WHERE id BETWEEN :first AND :last ORDER BY id
"""
# Append one event row.
INSERT_EVENT = """
INSERT INTO corral_events (task_id, at, kind, from_state, to_state, attempt, detail)
VALUES (?, ?, ?, ?, ?, ?, ?)
"""
# Events in pieces (by_size), a VALUES row each: for the batches a round's admissions and a
# batch of reports write (an INSERT sets up the table's indexes at every execution).
INSERT_EVENTS = by_size(
    "INSERT INTO corral_events (task_id, at, kind, from_state, to_state, attempt, detail)"
    " VALUES {rows}",
    7,
)

# -- read ---------------------------------------------------------------------------------------

TASK_COLUMNS = """
t.id, t.name, t.pool, t.group_name, t.state, t.priority, t.level, t.args, t.kwargs, t.dedup_key,
t.attempt, t.failures, t.max_retries, t.max_runtime, t.on_timeout, t.created_at, t.enqueued_at,
t.run_at, t.ready_at, t.first_started_at, t.started_at, t.finished_at, t.worker_id,
t.cancel_requested, t.checkpoint, t.shared, t.result, t.error, t.rank, t.exclusive, t.rate_key,
t.workflow_id, t.on_upstream_failure, t.stalled_slices, t.suspect, t.isolated_crashes,
t.quarantine_after
"""
# One task.
GET_TASK = f"SELECT {TASK_COLUMNS} FROM corral_tasks t WHERE t.id = ?"
# A task's dependencies.
GET_DEPS = "SELECT depends_on FROM corral_task_deps WHERE task_id = ? ORDER BY depends_on"
# Tasks filtered by states, group, name and ids (each filter skipped when NULL), newest first.
LIST_TASKS = f"""
SELECT {TASK_COLUMNS} FROM corral_tasks t
WHERE (:states IS NULL OR t.state IN (SELECT value FROM json_each(:states)))
  AND (:group_name IS NULL OR t.group_name = :group_name)
  AND (:name IS NULL OR t.name = :name)
  AND (:ids IS NULL OR t.id IN (SELECT value FROM json_each(:ids)))
ORDER BY t.id DESC LIMIT :limit
"""
# The states of the given ids.
TASK_STATES = "SELECT id, state FROM corral_tasks WHERE id IN (SELECT value FROM json_each(:ids))"
# The state and attempt of some tasks, for a bulk cancel or retry (the primary key).
TASK_STATES_ATTEMPTS = (
    "SELECT id, state, attempt FROM corral_tasks WHERE id IN (SELECT value FROM json_each(:ids))"
)

# -- resolver and promoter ----------------------------------------------------------------------

# Waiting tasks whose delay is over and whose dependencies are settled become ready.
RELEASE_WAITING = """
UPDATE corral_tasks SET state = 'ready', ready_at = :now, level = priority,
       promote_at = CASE WHEN aging = :no_aging THEN NULL ELSE :now END,
       enqueued_at = max(enqueued_at, coalesce(
           (SELECT max(u.finished_at)
            FROM corral_task_deps d JOIN corral_tasks u ON u.id = d.depends_on
            WHERE d.task_id = corral_tasks.id), enqueued_at))
WHERE id IN (
    SELECT t.id FROM corral_tasks t INDEXED BY corral_tasks_waiting_settled
    WHERE t.state = 'waiting' AND t.deps_left <= 0 AND t.deps_left = 0 AND t.run_at <= :now
    LIMIT :limit)
RETURNING id, attempt
"""
# Tasks whose retry backoff is over become ready again.
RELEASE_RETRIES = """
UPDATE corral_tasks SET state = 'ready', ready_at = :now, level = priority,
       promote_at = CASE WHEN aging = :no_aging THEN NULL ELSE :now END
WHERE id IN (SELECT id FROM corral_tasks WHERE state = 'retry_wait' AND run_at <= :now LIMIT :limit)
RETURNING id, attempt
"""
# Waiting tasks doomed by a dependency that ended badly (deps_left -1) can never run.
FAIL_UPSTREAM = """
UPDATE corral_tasks SET state = 'upstream_failed', finished_at = :now,
       error = 'a dependency ended dead, cancelled or upstream_failed'
WHERE id IN (
    SELECT t.id FROM corral_tasks t INDEXED BY corral_tasks_waiting_settled
    WHERE t.state = 'waiting' AND t.deps_left <= 0 AND t.deps_left = -1
    LIMIT :limit)
RETURNING id, attempt
"""
# The earliest moment a waiting or backing-off task may become ready.
NEXT_DUE = """
SELECT min(due) FROM (
    SELECT min(run_at) AS due FROM corral_tasks INDEXED BY corral_tasks_waiting_settled
    WHERE state = 'waiting' AND deps_left <= 0 AND deps_left = 0
    UNION ALL SELECT min(run_at) FROM corral_tasks WHERE state = 'retry_wait'
    UNION ALL SELECT 0.0 WHERE EXISTS (SELECT 1 FROM corral_upstream_ended)
    UNION ALL SELECT 0.0 WHERE EXISTS (
        SELECT 1 FROM corral_tasks INDEXED BY corral_tasks_waiting_settled
        WHERE state = 'waiting' AND deps_left <= 0 AND deps_left = -1)) AS d
"""
# Ready tasks whose level is due to change.
FETCH_PROMOTABLE = """
SELECT id, name, priority, level, aging, ready_at FROM corral_tasks
WHERE state = 'ready' AND promote_at <= :now ORDER BY promote_at LIMIT :limit
"""
# Set a ready task's level and the moment it next changes.
SET_LEVEL = "UPDATE corral_tasks SET level = ?, promote_at = ? WHERE id = ? AND state = 'ready'"

# -- dispatcher ---------------------------------------------------------------------------------

HEAD_ORDER = "level DESC, rank DESC, ready_at, id"
"""A group's ready tasks in admission order (the tasks_group_ready index)."""

# Take up to :limit hints (the groups whose ready tasks changed), oldest first.
TAKE_HINTS = """
DELETE FROM corral_ready_hints
WHERE id IN (SELECT id FROM corral_ready_hints ORDER BY id LIMIT :limit)
RETURNING pool, group_name
"""
# Record a group's head (its first ready task) among the per-group heads.
SET_GROUP_HEAD = f"""
INSERT INTO corral_ready_groups (pool, group_name, level, ready_at)
SELECT pool, group_name, level, ready_at FROM (
    SELECT pool, group_name, level, ready_at FROM corral_tasks INDEXED BY corral_tasks_group_ready
    WHERE state = 'ready' AND pool = :pool AND group_name = :group_name
    ORDER BY {HEAD_ORDER} LIMIT 1) WHERE true
ON CONFLICT (pool, group_name) DO UPDATE SET level = excluded.level, ready_at = excluded.ready_at
"""
# Drop a group that has no ready task left from the per-group heads.
DROP_GROUP_HEAD = """
DELETE FROM corral_ready_groups WHERE pool = :pool AND group_name = :group_name
  AND NOT EXISTS (SELECT 1 FROM corral_tasks WHERE state = 'ready' AND pool = :pool
                  AND group_name = :group_name)
"""
# Live workers: their pools and concurrency.
LIVE_WORKERS = "SELECT pools, concurrency FROM corral_workers WHERE lease_expires_at > :now"
# Slots held (admitted + running), per group and pool, and whether an exclusive task holds one.
ACTIVE_COUNTS = """
SELECT group_name, pool, count(*), max(exclusive) FROM corral_tasks
WHERE state IN ('admitted', 'running') GROUP BY group_name, pool
"""
# Settings of the named groups (a JSON array).
GROUPS_NAMED = f"""
SELECT {GROUP_FIELDS} FROM corral_groups WHERE name IN (SELECT value FROM json_each(:names))
"""
# The best groups of a pool by their head (level, then age), leaving out the groups to skip (a
# JSON array) and those whose own token bucket is empty.
BEST_GROUPS = """
SELECT g.group_name FROM corral_ready_groups g INDEXED BY corral_ready_groups_best
WHERE g.pool = :pool AND g.group_name NOT IN (SELECT value FROM json_each(:skip))
  AND NOT EXISTS (SELECT 1 FROM corral_rate_buckets b WHERE b.key = 'group:' || g.group_name
                  AND min(b.burst, b.tokens + b.per_second * (:now - b.updated_at)) < 1)
ORDER BY g.level DESC, g.ready_at LIMIT :limit
"""
# The first ready tasks of one group of a pool, in admission order.
GROUP_HEAD_TASKS = f"""
SELECT id, pool, group_name, level, ready_at, rank, exclusive, rate_key
FROM corral_tasks INDEXED BY corral_tasks_group_ready
WHERE state = 'ready' AND pool = :pool AND group_name = :group_name
ORDER BY {HEAD_ORDER} LIMIT :limit
"""
# Token buckets by key (a JSON array).
BUCKETS_NAMED = """
SELECT key, tokens, updated_at, per_second, burst FROM corral_rate_buckets
WHERE key IN (SELECT value FROM json_each(:keys))
"""
# Named rate limits by key (a JSON array).
RATE_LIMITS_NAMED = """
SELECT key, rate_limit, per_second, burst FROM corral_rate_limits
WHERE key IN (SELECT value FROM json_each(:keys))
"""
# Admit ready tasks (admitted_at orders the claims): one statement for `size` tasks, a row of
# (id, admitted_at) each, as COMPLETE_MANY records many reports.
ADMIT_MANY = """
WITH r(task_id, at) AS (VALUES {rows})
UPDATE corral_tasks SET state = 'admitted', admitted_at = r.at
FROM r WHERE corral_tasks.id = r.task_id AND corral_tasks.state = 'ready'
RETURNING corral_tasks.id, corral_tasks.attempt, corral_tasks.pool, corral_tasks.group_name
"""
ADMIT_BY_SIZE = by_size(ADMIT_MANY, 2)
"""ADMIT_MANY by how many tasks it takes, largest first."""
# Store a token bucket as admissions left it.
SET_BUCKET = """
INSERT INTO corral_rate_buckets (key, tokens, updated_at, per_second, burst)
VALUES (:key, :tokens, :updated_at, :per_second, :burst)
ON CONFLICT (key) DO UPDATE SET tokens = :tokens, updated_at = :updated_at,
    per_second = :per_second, burst = :burst
"""
# Ready tasks of a pool at a level above the given one (for `corral why`).
COUNT_AHEAD = """
SELECT count(*) FROM corral_tasks INDEXED BY corral_tasks_group_ready
WHERE state = 'ready' AND pool = :pool AND level > :level
"""

# -- rate limits --------------------------------------------------------------------------------

# Create or replace a named rate limit.
UPSERT_RATE_LIMIT = """
INSERT INTO corral_rate_limits (key, rate_limit, per_second, burst)
VALUES (:key, :rate_limit, :per_second, :burst)
ON CONFLICT (key) DO UPDATE SET rate_limit = :rate_limit, per_second = :per_second, burst = :burst
"""
# Remove a named rate limit.
DELETE_RATE_LIMIT = "DELETE FROM corral_rate_limits WHERE key = ?"
# All named rate limits.
ALL_RATE_LIMITS = "SELECT key, rate_limit, per_second, burst FROM corral_rate_limits ORDER BY key"
# Forget a bucket's state, so a new setting starts from a full bucket.
DELETE_BUCKET = "DELETE FROM corral_rate_buckets WHERE key = ?"

# -- worker -------------------------------------------------------------------------------------

# The claim's columns, in ClaimedTask's order (rows.claimed_task), then admitted_at (the order).
_CLAIMED = """id, name, group_name, attempt, failures, max_retries, backoff, max_runtime,
          on_timeout, args, kwargs, dedup_key, checkpoint, shared, stalled_slices, suspect,
          logical_time, data_start, pool, ready_at, trace_context, workflow_id, admitted_at"""
# A task starts at :now, or at its admission if that came later (:now is read before the write
# lock, which a claim may wait for while the leader admits: a start is never before its
# admission).
_START = """state = 'running', attempt = attempt + 1, worker_id = :worker,
       lease_expires_at = :lease, started_at = max(:now, coalesce(admitted_at, :now)),
       first_started_at = coalesce(first_started_at, max(:now, coalesce(admitted_at, :now)))"""
# Whether a claim must heed suspects: one admitted in the pools (a JSON array), or one this
# worker runs (the partial indexes of admitted suspects and of running tasks by worker). Most
# claims find none and take CLAIM_PLAIN, which is a tenth cheaper than CLAIM.
SUSPECTS_NEAR = """
SELECT EXISTS (SELECT 1 FROM corral_tasks
               WHERE state = 'admitted' AND suspect = 1
                 AND pool IN (SELECT value FROM json_each(:pools)))
    OR EXISTS (SELECT 1 FROM corral_tasks WHERE worker_id = :worker AND state = 'running'
                                          AND suspect = 1)
"""
# Claim admitted tasks of the pools in admission order, when SUSPECTS_NEAR found none (no
# admitted task of the pools is a suspect, in the same write): up to :limit tasks.
CLAIM_PLAIN = f"""
UPDATE corral_tasks SET {_START}
WHERE id IN (SELECT id FROM corral_tasks
             WHERE state = 'admitted' AND pool IN (SELECT value FROM json_each(:pools))
             ORDER BY admitted_at, id LIMIT :limit)
RETURNING {_CLAIMED}
"""
# Claim admitted tasks of the pools in admission order, heeding suspects: a suspect runs alone.
# With :may_take_suspect and nothing of the worker's running, the oldest admitted suspect by
# itself; else up to :limit tasks that are not suspects, none while the worker runs a suspect.
CLAIM = f"""
WITH lone AS MATERIALIZED (
    SELECT id FROM corral_tasks
    WHERE state = 'admitted' AND suspect = 1 AND pool IN (SELECT value FROM json_each(:pools))
      AND :may_take_suspect
      AND NOT EXISTS (SELECT 1 FROM corral_tasks WHERE worker_id = :worker AND state = 'running')
    ORDER BY admitted_at, id LIMIT 1),
plain AS (
    SELECT id FROM corral_tasks
    WHERE state = 'admitted' AND suspect = 0 AND pool IN (SELECT value FROM json_each(:pools))
      AND NOT EXISTS (SELECT 1 FROM lone)
      AND NOT EXISTS (SELECT 1 FROM corral_tasks WHERE worker_id = :worker AND state = 'running'
                      AND suspect = 1)
    ORDER BY admitted_at, id LIMIT :limit)
UPDATE corral_tasks SET {_START}
WHERE id IN (SELECT id FROM lone UNION ALL SELECT id FROM plain)
RETURNING {_CLAIMED}
"""
# The suspect a busy worker drains for: the oldest admitted suspect of the pools waiting since
# :overdue_before whose drain mark is free, lapsed or this worker's (its own first). A read of the
# partial index of admitted suspects, once per heartbeat: no write lock unless one is found.
DRAIN_CANDIDATE = """
SELECT id FROM corral_tasks
WHERE state = 'admitted' AND suspect = 1 AND pool IN (SELECT value FROM json_each(:pools))
  AND admitted_at <= :overdue_before
  AND (drainer IS NULL OR drainer = :worker OR drain_until < :now)
ORDER BY coalesce(drainer = :worker, 0) DESC, admitted_at, id LIMIT 1
"""
# Take or renew a suspect's drain mark (compare-and-set: one worker drains for a suspect).
TAKE_DRAIN_MARK = """
UPDATE corral_tasks SET drainer = :worker, drain_until = :hold_until
WHERE id = :id AND state = 'admitted' AND suspect = 1
  AND (drainer IS NULL OR drainer = :worker OR drain_until < :now)
"""
# Open the attempt rows of the tasks a claim took (a JSON array of ids), at their starts as the
# claim set them (isolated: a suspect claimed alone). One statement, read from the tasks' primary
# key: cheaper than rows of values from Python.
CLAIM_ATTEMPTS = """
INSERT INTO corral_attempts (task_id, attempt, worker_id, started_at, isolated)
SELECT id, attempt, worker_id, started_at, suspect FROM corral_tasks
WHERE id IN (SELECT value FROM json_each(:ids))
"""
# The `running` events of the tasks a claim took (a JSON array of ids), in admission order, at
# their starts (as CLAIM_ATTEMPTS).
CLAIM_EVENTS = f"""
INSERT INTO corral_events (task_id, at, kind, from_state, to_state, attempt)
SELECT id, started_at, {_CLAIM.sql}, attempt FROM corral_tasks
WHERE id IN (SELECT value FROM json_each(:ids))
ORDER BY admitted_at, id
"""
# Record the ends of running attempts, each if it is still the running one (compare-and-set):
# one statement for `size` reports, a row of COMPLETE_VALUES each, in the order of
# completion_row's parameters. An UPDATE of a task's state opens every index that state is in at
# each execution, matched rows or not (about 10 us, more than a row's own writes), so one
# execution a report paid it a task.
COMPLETE_MANY = """
WITH r(task_id, attempt_no, worker, target, result, error, failed, terminal, at, retry_at,
       slices, suspect_now, crashes, no_aging) AS (VALUES {rows})
UPDATE corral_tasks SET
    state = r.target,
    result = r.result,
    error = r.error,
    failures = corral_tasks.failures + r.failed,
    worker_id = NULL,
    lease_expires_at = NULL,
    cancel_requested = CASE WHEN r.target = 'ready' THEN corral_tasks.cancel_requested ELSE 0 END,
    finished_at = CASE WHEN r.terminal THEN r.at ELSE NULL END,
    run_at = CASE WHEN r.target = 'retry_wait' THEN r.retry_at ELSE corral_tasks.run_at END,
    promote_at = CASE WHEN r.target = 'ready' AND corral_tasks.aging != r.no_aging THEN r.at
                      ELSE NULL END,
    stalled_slices = coalesce(r.slices, corral_tasks.stalled_slices),
    suspect = coalesce(r.suspect_now, corral_tasks.suspect),
    isolated_crashes = coalesce(r.crashes, corral_tasks.isolated_crashes)
FROM r
WHERE corral_tasks.id = r.task_id AND corral_tasks.attempt = r.attempt_no
  AND corral_tasks.state = 'running' AND (r.worker IS NULL OR corral_tasks.worker_id = r.worker)
RETURNING corral_tasks.id
"""
COMPLETE_BY_SIZE = by_size(COMPLETE_MANY, 14)
"""COMPLETE_MANY by how many reports it takes (14 parameters each), largest first."""


# Close an attempt row.
CLOSE_ATTEMPT = """
UPDATE corral_attempts SET finished_at = ?, outcome = ?, error = ?, traceback = ?
WHERE task_id = ? AND attempt = ?
"""
# Store a checkpoint for the running attempt.
SAVE_CHECKPOINT = """
UPDATE corral_tasks SET checkpoint = ? WHERE id = ? AND attempt = ? AND state = 'running'
"""
# Store the shared clean-up record for the running attempt.
SAVE_SHARED = (
    "UPDATE corral_tasks SET shared = ? WHERE id = ? AND attempt = ? AND state = 'running'"
)
# Record an event about an attempt that changes no state (e.g. gil_held), if the task exists.
RECORD_EVENT = """
INSERT INTO corral_events (task_id, at, kind, from_state, to_state, attempt, detail)
SELECT id, :now, :kind, NULL, NULL, :attempt, :detail FROM corral_tasks WHERE id = :id
"""
# Append a log line.
INSERT_LOG = "INSERT INTO corral_logs (task_id, attempt, at, level, message) VALUES (?, ?, ?, ?, ?)"

# -- operators ----------------------------------------------------------------------------------

# A task's state and attempt.
TASK_STATE = "SELECT state, attempt FROM corral_tasks WHERE id = ?"
# Cancel a task that is not running.
CANCEL_NOW = """
UPDATE corral_tasks SET state = 'cancelled', finished_at = :now, error = 'cancelled'
WHERE id = :id AND state = :expected
"""
# Ask the worker of a running task to stop it.
REQUEST_CANCEL = "UPDATE corral_tasks SET cancel_requested = 1 WHERE id = :id AND state = 'running'"
# Put a finished task back in the queue with a fresh retry budget.
RETRY = """
UPDATE corral_tasks SET state = 'ready', failures = 0, cancel_requested = 0, error = NULL,
       finished_at = NULL, stalled_slices = 0, isolated_crashes = 0, ready_at = :now,
       level = priority, run_at = :now,
       promote_at = CASE WHEN aging = :no_aging THEN NULL ELSE :now END
WHERE id = :id AND state = :expected
"""

# -- reaper -------------------------------------------------------------------------------------

# Running tasks whose lease has expired, with whether their attempt ran alone.
FETCH_EXPIRED = """
SELECT t.id, t.attempt, t.failures, t.max_retries, t.on_timeout, t.cancel_requested, t.worker_id,
       coalesce(a.isolated, 0), t.isolated_crashes, t.quarantine_after, t.cleanup, t.name
FROM corral_tasks t LEFT JOIN corral_attempts a ON a.task_id = t.id AND a.attempt = t.attempt
WHERE t.state = 'running' AND t.lease_expires_at < :now ORDER BY t.lease_expires_at LIMIT :limit
"""

# -- workers and leader -------------------------------------------------------------------------

# Announce (or re-announce) a worker.
UPSERT_WORKER = """
INSERT INTO corral_workers (id, hostname, pid, pools, concurrency, started_at, heartbeat_at,
                     lease_expires_at)
VALUES (:id, :hostname, :pid, :pools, :concurrency, :now, :now, :lease)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = :now, lease_expires_at = :lease,
    pools = :pools, concurrency = :concurrency
"""
# Forget workers gone for an hour.
PRUNE_WORKERS = "DELETE FROM corral_workers WHERE lease_expires_at < :before"
# Extend a worker's lease.
WORKER_BEAT = (
    "UPDATE corral_workers SET heartbeat_at = :now, lease_expires_at = :lease WHERE id = :id"
)
# Extend the leases of a worker's running tasks.
TASK_LEASES_BEAT = """
UPDATE corral_tasks SET lease_expires_at = :lease WHERE worker_id = :id AND state = 'running'
"""
# A worker's running tasks that were asked to cancel.
WORKER_CANCEL_REQUESTS = """
SELECT id FROM corral_tasks WHERE worker_id = :id AND state = 'running' AND cancel_requested = 1
"""
# Remove a worker.
DELETE_WORKER = "DELETE FROM corral_workers WHERE id = ?"
# Live workers with how many tasks each runs.
LIST_WORKERS = """
SELECT w.id, w.hostname, w.pid, w.pools, w.concurrency, w.started_at, w.heartbeat_at,
       w.lease_expires_at,
       (SELECT count(*) FROM corral_tasks t WHERE t.worker_id = w.id AND t.state = 'running')
FROM corral_workers w WHERE w.lease_expires_at > :now ORDER BY w.started_at
"""
# Take or extend a leadership if free, expired or already ours.
ACQUIRE_LEADER = """
INSERT INTO corral_leaders (name, holder, expires_at) VALUES (:name, :holder, :lease)
ON CONFLICT (name) DO UPDATE SET holder = :holder, expires_at = :lease
WHERE corral_leaders.holder = :holder OR corral_leaders.expires_at < :now
"""
# Extend a leadership its holder still has.
RENEW_LEADER = """
UPDATE corral_leaders SET expires_at = :lease
WHERE name = :name AND holder = :holder AND expires_at >= :now
"""
# Who leads.
LEADER_HOLDER = "SELECT holder FROM corral_leaders WHERE name = ?"
# Give up a leadership.
RELEASE_LEADER = "DELETE FROM corral_leaders WHERE name = ? AND holder = ?"

# -- groups -------------------------------------------------------------------------------------

# Create or replace a group's settings.
UPSERT_GROUP = """
INSERT INTO corral_groups (name, max_parallel, weight, rate_limit, per_second, burst)
VALUES (:name, :max_parallel, :weight, :rate_limit, :per_second, :burst)
ON CONFLICT (name) DO UPDATE SET max_parallel = :max_parallel, weight = :weight,
    rate_limit = :rate_limit, per_second = :per_second, burst = :burst
"""
# One group's settings.
GET_GROUP = f"SELECT {GROUP_FIELDS} FROM corral_groups WHERE name = ?"

# -- history ------------------------------------------------------------------------------------

EVENT_COLUMNS = "id, task_id, at, kind, from_state, to_state, attempt, detail"
# A task's events.
TASK_EVENTS = f"SELECT {EVENT_COLUMNS} FROM corral_events WHERE task_id = ? ORDER BY id"
# The event feed after a cursor.
EVENTS_AFTER = f"SELECT {EVENT_COLUMNS} FROM corral_events WHERE id > ? ORDER BY id LIMIT ?"
# A task's attempts.
TASK_ATTEMPTS = """
SELECT task_id, attempt, worker_id, started_at, finished_at, outcome, error, traceback, isolated
FROM corral_attempts WHERE task_id = ? ORDER BY attempt
"""
# A task's log lines, of one attempt or all (NULL).
TASK_LOGS = """
SELECT task_id, attempt, at, level, message FROM corral_logs
WHERE task_id = :id AND (:attempt IS NULL OR attempt = :attempt) ORDER BY id
"""

# -- dependencies: settling the dependents of ended tasks ---------------------------------------

# Mark tasks (a JSON array) as having dependents, so that their end queues a settle.
MARK_HAS_DEPENDENTS = """
UPDATE corral_tasks SET has_dependents = 1
WHERE id IN (SELECT value FROM json_each(:ids)) AND has_dependents = 0
"""
# Queue those of the tasks (a JSON array) that already ended: their new dependents need settling.
QUEUE_ENDED = f"""
INSERT INTO corral_upstream_ended (task_id)
SELECT id FROM corral_tasks
WHERE id IN (SELECT value FROM json_each(:ids)) AND state IN {TERMINAL_SQL}
"""
# The oldest queued ends of tasks that have dependents.
ENDED_UPSTREAMS = "SELECT id, task_id FROM corral_upstream_ended ORDER BY id LIMIT :limit"
# Recount the unsettled dependencies of the waiting dependents of the tasks (a JSON array):
# -1 when one ended badly and the dependent is 'fail'; 'run' dependents count any end as settled.
SETTLE_DEPENDENTS = f"""
UPDATE corral_tasks SET deps_left = CASE
    WHEN on_upstream_failure = 'fail' AND EXISTS (
        SELECT 1 FROM corral_task_deps d JOIN corral_tasks u ON u.id = d.depends_on
        WHERE d.task_id = corral_tasks.id AND u.state IN ('dead', 'cancelled', 'upstream_failed'))
    THEN -1
    ELSE (SELECT count(*) FROM corral_task_deps d JOIN corral_tasks u ON u.id = d.depends_on
          WHERE d.task_id = corral_tasks.id AND u.state != 'succeeded'
            AND NOT (corral_tasks.on_upstream_failure = 'run' AND u.state IN {TERMINAL_SQL})) END
WHERE state = 'waiting'
  AND id IN (SELECT d.task_id FROM corral_task_deps d
             WHERE d.depends_on IN (SELECT value FROM json_each(:ids)))
"""
# Forget the queued ends up to an id, once settled.
FORGET_ENDED = "DELETE FROM corral_upstream_ended WHERE id <= :last"

# -- workflows ------------------------------------------------------------------------------------

# Create a workflow.
INSERT_WORKFLOW = """
INSERT INTO corral_workflows (name, group_name, created_at) VALUES (:name, :group_name, :now)
RETURNING id
"""
# One workflow.
GET_WORKFLOW = "SELECT id, name, group_name, created_at FROM corral_workflows WHERE id = ?"
# A workflow's tasks counted by state: its own, and those its steps deduplicated onto.
WORKFLOW_COUNTS = """
SELECT state, count(*) FROM (
    SELECT id, state FROM corral_tasks WHERE workflow_id = :id
    UNION
    SELECT t.id, t.state FROM corral_workflow_links l JOIN corral_tasks t ON t.id = l.task_id
    WHERE l.workflow_id = :id)
GROUP BY state
"""
# Record a task a workflow relies on that is not its own (a step deduplicated onto it).
INSERT_WORKFLOW_LINK = (
    "INSERT OR IGNORE INTO corral_workflow_links (workflow_id, task_id) VALUES (?, ?)"
)
# A workflow's unfinished tasks and their states (before a cancel).
WORKFLOW_UNFINISHED = f"""
SELECT id, state, attempt FROM corral_tasks WHERE workflow_id = ? AND state NOT IN {TERMINAL_SQL}
"""
# -- cancel requests and event consumers --------------------------------------------------------

# Create a consumer's row at the origin of the feed, if it has none.
ADD_CONSUMER = """
INSERT OR IGNORE INTO corral_consumers (name, cursor_xid, cursor_id)
SELECT :name, cursor_xid, cursor_id FROM corral_consumers WHERE name = '*'
"""
# Take or extend a consumer's lease if free, expired or already `holder`'s.
ACQUIRE_CONSUMER = """
UPDATE corral_consumers SET holder = :holder, lease_expires_at = :lease
WHERE name = :name AND (holder IS NULL OR holder = :holder OR lease_expires_at < :now)
"""
# Extend a consumer's lease that `holder` still holds.
RENEW_CONSUMER = """
UPDATE corral_consumers SET lease_expires_at = :lease
WHERE name = :name AND holder = :holder AND lease_expires_at >= :now
"""
# Move a consumer's cursor, if `holder` still holds its lease (compare-and-set).
ADVANCE_CONSUMER = """
UPDATE corral_consumers SET cursor_xid = :xid, cursor_id = :event_id
WHERE name = :name AND holder = :holder AND lease_expires_at >= :now
"""
# Give up a consumer's lease.
RELEASE_CONSUMER = """
UPDATE corral_consumers SET holder = NULL, lease_expires_at = 0 WHERE name = ? AND holder = ?
"""
# The events after a consumer's cursor, with their tasks' name, group and workflow, in id order
# (which is commit order on SQLite).
EVENTS_UNSEEN = """
SELECT e.id, e.task_id, e.at, e.kind, e.from_state, e.to_state, e.attempt, e.detail,
       t.name, t.group_name, t.workflow_id, 0
FROM corral_events e LEFT JOIN corral_tasks t ON t.id = e.task_id
WHERE e.id > (SELECT cursor_id FROM corral_consumers WHERE name = :name)
ORDER BY e.id LIMIT :limit
"""
