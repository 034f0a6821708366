"""Every SQL statement of the PostgreSQL store, named, each with a line saying what it does.

Batches travel as arrays (`unnest`), and each transition writes its event rows in the same
statement through a data-modifying CTE: one round trip per batch, whatever its size.
"""

from __future__ import annotations

from ...moves import ADMIT as _ADMIT
from ...moves import CANCELLABLE_AT_ONCE_SQL, RELEASE_RETRY, RELEASE_WAITING, TERMINAL_SQL
from ...moves import CLAIM as _CLAIM
from ...moves import FAIL_UPSTREAM as _FAIL_UPSTREAM
from ...moves import REQUEST_CANCEL as _REQUEST_CANCEL
from ..rows import GROUP_FIELDS
from .lane_queries import LANE_TAKE as _LANE_TAKE

LEADER_LOCK_KEY = 0x636F7272616C  # "corral": the advisory lock of the scheduler's leadership
CHANNEL_PREFIX = "corral_"
CHANNEL_SCHEDULER = CHANNEL_PREFIX + "scheduler"  # work to decide: submitted, retried, slots freed
CHANNEL_WORKERS = CHANNEL_PREFIX + "workers"  # "admitted:<pool>" or "cancel:<task id>"

# The server's clock, the one all processes on this database follow (corral.clock).
CLOCK_NOW = "SELECT extract(epoch FROM clock_timestamp())::float8"
# Make this transaction's commit wait for the WAL flush (the pool's sessions default to off).
DURABLE_COMMIT = "SET LOCAL synchronous_commit = on"

# -- schema -------------------------------------------------------------------------------------

# The migrations table; created before anything else.
CREATE_MIGRATIONS = """
CREATE TABLE IF NOT EXISTS corral_schema_migrations (
    version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)
"""
# Serialise concurrent migrators.
LOCK_MIGRATIONS = "SELECT pg_advisory_xact_lock(7261)"
# Versions already applied.
APPLIED_MIGRATIONS = "SELECT version FROM corral_schema_migrations ORDER BY version"
# Whether the migrations table exists at all.
HAS_SCHEMA = "SELECT to_regclass('corral_schema_migrations') IS NOT NULL"
# Record one applied migration.
RECORD_MIGRATION = "INSERT INTO corral_schema_migrations (version, applied_at) VALUES (%s, %s)"

# -- submit -------------------------------------------------------------------------------------

# Unfinished tasks holding any of the dedup keys.
FIND_DEDUP = f"""
SELECT dedup_key, id FROM corral_tasks
WHERE dedup_key = ANY(%(keys)s) AND state NOT IN {TERMINAL_SQL}
"""
# What a submit call recorded under its submit id: the ids of its tasks, and of its workflow.
FIND_SUBMIT = "SELECT task_ids, workflow_id FROM corral_submits WHERE submit_id = %s"
# Record a submit call under its submit id (a second one with the id violates the primary key).
RECORD_SUBMIT = """
INSERT INTO corral_submits (submit_id, task_ids, workflow_id, created_at)
VALUES (%(submit_id)s, %(task_ids)b::bigint[], %(workflow_id)s, %(now)s)
"""
# Which of the ids exist.
EXISTING_IDS = "SELECT id FROM corral_tasks WHERE id = ANY(%(ids)s)"
# Reserve n task ids, as one text of comma-separated ids (one value to read, not n rows).
RESERVE_IDS = """
SELECT string_agg(nextval('corral_task_ids')::text, ',') FROM generate_series(1, %(n)s)
"""
# Bulk-load tasks (COPY), columns in rows.ROW_FIELDS order.
COPY_TASKS = """
COPY corral_tasks (id, name, pool, group_name, state, priority, level, aging, promote_at, args,
                   kwargs, dedup_key, max_retries, backoff, max_runtime, on_timeout, created_at,
                   enqueued_at, run_at, ready_at, rank, exclusive, rate_key, workflow_id,
                   on_upstream_failure, deps_left, quarantine_after, cleanup, logical_time,
                   data_start, trace_context, schedule_name) FROM STDIN
"""
_INSERT_TASK = """
INSERT INTO corral_tasks (id, name, pool, group_name, state, priority, level, aging, promote_at,
                          args, kwargs, dedup_key, max_retries, backoff, max_runtime, on_timeout,
                          created_at, enqueued_at, run_at, ready_at, rank, exclusive, rate_key,
                          workflow_id, on_upstream_failure, deps_left, quarantine_after,
                          cleanup, logical_time, data_start, trace_context, schedule_name)
VALUES ({id}, %(name)s, %(pool)s, %(group_name)s, %(state)s, %(priority)s, %(level)s, %(aging)s,
        %(promote_at)s, %(args)s, %(kwargs)s, %(dedup_key)s, %(max_retries)s, %(backoff)s,
        %(max_runtime)s, %(on_timeout)s, %(now)s, %(enqueued_at)s, %(run_at)s, %(ready_at)s,
        %(rank)s, %(exclusive)s, %(rate_key)s, %(workflow_id)s, %(on_upstream_failure)s,
        %(deps_left)s, %(quarantine_after)s, %(cleanup)s, %(logical_time)s, %(data_start)s,
        %(trace_context)s, %(schedule_name)s)
"""
# Insert one task (executemany pipelines a small batch in one round trip; COPY loads big ones).
INSERT_TASK = _INSERT_TASK.format(id="%(id)s")
# Insert one task holding a dedup key, unless an unfinished task already holds it.
INSERT_DEDUP_TASK = f"""{INSERT_TASK}
ON CONFLICT (dedup_key) WHERE dedup_key IS NOT NULL AND state NOT IN {TERMINAL_SQL} DO NOTHING
RETURNING id
"""
# Dependency edges and submission events of the inserted tasks (arrays).
INSERT_DEPS = """
INSERT INTO corral_task_deps (task_id, depends_on)
SELECT * FROM unnest(%(task_ids)b::bigint[], %(deps)b::bigint[]) ON CONFLICT DO NOTHING
"""
# One `submitted` event per inserted task, and a wake-up for the scheduler. The ids and states
# come as arrays' text (submits.array_text); the transaction id is the column's default, read
# once for all the rows rather than once a row.
INSERT_SUBMITTED_EVENTS = """
WITH events AS (
    INSERT INTO corral_events (task_id, at, kind, from_state, to_state, attempt, xid)
    SELECT id, %(now)s, 'submitted', NULL, state, 0, x.xid
    FROM (SELECT pg_current_xact_id()::text::bigint AS xid) AS x,
         unnest(%(ids)b::bigint[], %(states)b::text[]) AS s(id, state)
    RETURNING 1)
SELECT pg_notify('corral_scheduler', '') WHERE EXISTS (SELECT 1 FROM events)
"""
# A submit of one task with no dependency and no dedup key, in ONE round trip (an autocommitted
# statement): a slot of its pool's fast lane if it may take one (lane_queries.LANE_TAKE;
# corral.lanes), its id from the sequence, the insert (admitted at once with a slot, else
# ready or waiting), its `submitted` event (and `admitted`), the submit id's row, the wake-up (of
# the pool's workers with a slot, else of the scheduler), and a durable commit
# (`set_config(..., true)` is SET LOCAL: the statement's own transaction commits synchronously,
# as every submit does).
_LANED = "EXISTS (SELECT 1 FROM lane)"
_INSERT_LANED = (
    _INSERT_TASK.format(id="nextval('corral_task_ids')")
    .replace("schedule_name)\nVALUES", "schedule_name, admitted_at)\nVALUES", 1)
    .replace("%(state)s", f"CASE WHEN {_LANED} THEN 'admitted' ELSE %(state)s END", 1)
    .replace("%(schedule_name)s)", f"%(schedule_name)s, CASE WHEN {_LANED} THEN %(now)s END)", 1)
)
if _INSERT_LANED.count(_LANED) != 2 or "admitted_at)" not in _INSERT_LANED:  # pragma: no cover
    raise AssertionError("SUBMIT_ONE's insert no longer matches _INSERT_TASK")
SUBMIT_ONE = f"""
WITH lane AS ({_LANE_TAKE}),
task AS ({_INSERT_LANED.strip()}
    RETURNING id, state),
event AS (
    INSERT INTO corral_events (task_id, at, kind, from_state, to_state, attempt)
    SELECT id, %(now)s, kind, from_state, to_state, 0 FROM (
        SELECT id, 'submitted' AS kind, NULL AS from_state, %(state)s AS to_state, 0 AS ord
        FROM task
        UNION ALL
        SELECT id, {_ADMIT.sql}, 1 FROM task WHERE state = 'admitted') AS e
    ORDER BY ord),
submit AS (
    INSERT INTO corral_submits (submit_id, task_ids, workflow_id, created_at)
    SELECT %(submit_id)s, ARRAY[id], NULL, %(now)s FROM task WHERE %(submit_id)s::text IS NOT NULL)
SELECT id, set_config('synchronous_commit', 'on', true),
       CASE WHEN state = 'admitted' THEN pg_notify('corral_workers', 'admitted:' || %(pool)s)
            ELSE pg_notify('corral_scheduler', '') END
FROM task
"""
# A submit of one task with a dedup key and no dependency, in ONE round trip as SUBMIT_ONE: the
# insert unless an unfinished task holds the key (ON CONFLICT waits for a concurrent submit of the
# key and gives way to it), its event, the holder as the statement's snapshot sees it, the submit
# id's row naming the task made or else the holder, the wake-up if a task was made, and a durable
# commit. Returns (new id, holder id). Both NULL: a concurrent submit took the key after the
# snapshot; the caller then takes the general path, which finds that holder.
SUBMIT_ONE_DEDUP = f"""
WITH task AS ({_INSERT_TASK.format(id="nextval('corral_task_ids')").strip()}
    ON CONFLICT (dedup_key) WHERE dedup_key IS NOT NULL AND state NOT IN {TERMINAL_SQL}
    DO NOTHING
    RETURNING id, state),
event AS (
    INSERT INTO corral_events (task_id, at, kind, from_state, to_state, attempt)
    SELECT id, %(now)s, 'submitted', NULL, state, 0 FROM task),
answer AS (
    SELECT (SELECT id FROM task) AS created,
           (SELECT id FROM corral_tasks
            WHERE dedup_key = %(dedup_key)s AND state NOT IN {TERMINAL_SQL} LIMIT 1) AS holder),
submit AS (
    INSERT INTO corral_submits (submit_id, task_ids, workflow_id, created_at)
    SELECT %(submit_id)s, ARRAY[coalesce(created, holder)], NULL, %(now)s FROM answer
    WHERE %(submit_id)s::text IS NOT NULL AND coalesce(created, holder) IS NOT NULL)
SELECT created, holder, set_config('synchronous_commit', 'on', true),
       CASE WHEN created IS NOT NULL THEN pg_notify('corral_scheduler', '') END
FROM answer
"""
# Wake the listeners of a channel (delivered when the transaction commits).
NOTIFY = "SELECT pg_notify(%s, %s)"

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
GET_TASK = f"SELECT {TASK_COLUMNS} FROM corral_tasks t WHERE t.id = %s"
# A task's dependencies.
GET_DEPS = "SELECT depends_on FROM corral_task_deps WHERE task_id = %s ORDER BY depends_on"
# Tasks filtered by states, group, name and ids (each filter skipped when NULL), newest first.
LIST_TASKS = f"""
SELECT {TASK_COLUMNS} FROM corral_tasks t
WHERE (%(states)b::text[] IS NULL OR t.state = ANY(%(states)b))
  AND (%(group_name)s::text IS NULL OR t.group_name = %(group_name)s)
  AND (%(name)s::text IS NULL OR t.name = %(name)s)
  AND (%(ids)b::bigint[] IS NULL OR t.id = ANY(%(ids)b))
ORDER BY t.id DESC LIMIT %(limit)s
"""
# The states of the given ids.
TASK_STATES = "SELECT id, state FROM corral_tasks WHERE id = ANY(%(ids)s)"
# The state and attempt of some tasks, for a bulk cancel or retry, locked in id order (two
# bulks over the same tasks can't deadlock; the primary key).
TASK_STATES_FOR_UPDATE = """
SELECT id, state, attempt FROM corral_tasks WHERE id = ANY(%(ids)s) ORDER BY id FOR UPDATE
"""

# -- resolver and promoter ----------------------------------------------------------------------

# Waiting tasks whose delay is over and whose dependencies are settled, and tasks whose retry
# backoff is over, become ready; one statement, one event each. Returns one row per task moved.
RELEASE_DUE = f"""
WITH due_waiting AS (
    SELECT t.id FROM corral_tasks t
    WHERE t.state = 'waiting' AND t.deps_left <= 0 AND t.deps_left = 0 AND t.run_at <= %(now)s
    LIMIT %(limit)s FOR UPDATE SKIP LOCKED),
released AS (
    UPDATE corral_tasks t SET state = 'ready', ready_at = %(now)s, level = priority,
           promote_at = CASE WHEN aging = %(no_aging)s THEN NULL ELSE %(now)s END,
           enqueued_at = greatest(t.enqueued_at, (
               SELECT max(u.finished_at) FROM corral_task_deps d CROSS JOIN LATERAL (
                   -- OFFSET 0: a lookup per edge, never a join over every task
                   SELECT finished_at FROM corral_tasks WHERE id = d.depends_on OFFSET 0) u
               WHERE d.task_id = t.id))
    FROM due_waiting WHERE t.id = due_waiting.id
    RETURNING t.id, t.attempt, {RELEASE_WAITING.sql}),
due_retries AS (
    SELECT id FROM corral_tasks WHERE state = 'retry_wait' AND run_at <= %(now)s
    LIMIT %(limit)s FOR UPDATE SKIP LOCKED),
retried AS (
    UPDATE corral_tasks t SET state = 'ready', ready_at = %(now)s, level = priority,
           promote_at = CASE WHEN aging = %(no_aging)s THEN NULL ELSE %(now)s END
    FROM due_retries WHERE t.id = due_retries.id
    RETURNING t.id, t.attempt, {RELEASE_RETRY.sql})
INSERT INTO corral_events (task_id, at, kind, from_state, to_state, attempt)
SELECT id, %(now)s, kind, source, target, attempt
FROM (SELECT * FROM released UNION ALL SELECT * FROM retried)
    AS moved(id, attempt, kind, source, target)
RETURNING task_id
"""
# Waiting tasks doomed by a dependency that ended badly (deps_left -1) can never run.
FAIL_UPSTREAM = f"""
WITH doomed AS (
    SELECT t.id FROM corral_tasks t
    WHERE t.state = 'waiting' AND t.deps_left <= 0 AND t.deps_left = -1
    LIMIT %(limit)s FOR UPDATE SKIP LOCKED),
moved AS (
    UPDATE corral_tasks t SET state = 'upstream_failed', finished_at = %(now)s,
           error = 'a dependency ended dead, cancelled or upstream_failed'
    FROM doomed WHERE t.id = doomed.id RETURNING t.id, t.attempt)
INSERT INTO corral_events (task_id, at, kind, from_state, to_state, attempt)
SELECT id, %(now)s, {_FAIL_UPSTREAM.sql}, attempt FROM moved
RETURNING task_id
"""
# The earliest moment a waiting or backing-off task may become ready.
NEXT_DUE = """
SELECT min(due) FROM (
    SELECT min(run_at) AS due FROM corral_tasks
    WHERE state = 'waiting' AND deps_left <= 0 AND deps_left = 0
    UNION ALL SELECT min(run_at) FROM corral_tasks WHERE state = 'retry_wait'
    UNION ALL SELECT 0.0 WHERE EXISTS (SELECT 1 FROM corral_upstream_ended)
    UNION ALL SELECT 0.0 WHERE EXISTS (
        SELECT 1 FROM corral_tasks WHERE state = 'waiting' AND deps_left <= 0 AND deps_left = -1)
) AS d
"""
# Ready tasks whose level is due to change.
FETCH_PROMOTABLE = """
SELECT id, name, priority, level, aging, ready_at FROM corral_tasks
WHERE state = 'ready' AND promote_at <= %(now)s ORDER BY promote_at LIMIT %(limit)s
"""
# Set ready tasks' levels and the moments they next change (arrays).
SET_LEVELS = """
UPDATE corral_tasks t SET level = c.level, promote_at = c.promote_at
FROM unnest(%(ids)b::bigint[], %(levels)b::int[], %(promote_at)b::float8[])
    AS c(id, level, promote_at)
WHERE t.id = c.id AND t.state = 'ready'
"""

# -- dispatcher ---------------------------------------------------------------------------------

HEAD_ORDER = "level DESC, rank DESC, ready_at, id"
"""A group's ready tasks in admission order (the corral_tasks_group_ready index)."""


def _set_heads(groups: str, leaving: str = "") -> str:
    """CTEs that look up the head of each (pool, group_name) of the CTE `groups` and record it
    among the per-group heads, or drop the group if it has no ready task left; `leaving`: a
    condition on `t` for tasks that leave `ready` in this very statement."""
    return f"""
heads AS (
    SELECT h.pool, h.group_name, t.level, t.ready_at FROM {groups} h LEFT JOIN LATERAL (
        SELECT level, ready_at FROM corral_tasks t
        WHERE t.state = 'ready' AND t.pool = h.pool AND t.group_name = h.group_name {leaving}
        ORDER BY {HEAD_ORDER} LIMIT 1) t ON TRUE),
upserted AS (
    INSERT INTO corral_ready_groups (pool, group_name, level, ready_at)
    SELECT pool, group_name, level, ready_at FROM heads WHERE level IS NOT NULL
    ON CONFLICT (pool, group_name) DO UPDATE
        SET level = excluded.level, ready_at = excluded.ready_at
    RETURNING 1),
dropped AS (
    DELETE FROM corral_ready_groups g USING heads h
    WHERE g.pool = h.pool AND g.group_name = h.group_name AND h.level IS NULL RETURNING 1)"""


# Fold up to %(limit)s hints: look the hinted groups' heads up again and record them among the
# per-group heads, or drop the groups that have no ready task left.
FOLD_HINTS = f"""
taken AS (
    DELETE FROM corral_ready_hints
    WHERE id IN (SELECT id FROM corral_ready_hints ORDER BY id LIMIT %(limit)s)
    RETURNING pool, group_name),
hinted AS (SELECT DISTINCT pool, group_name FROM taken),{_set_heads("hinted")}"""
# Fold hints (as above); returns how many groups were looked up.
REFRESH_HEADS = f"""
WITH {FOLD_HINTS}
SELECT count(*) FROM hinted
"""
# What holds slots, in one consistent read, as three JSON arrays: live capacity per pool; slots
# held per group and pool, with whether an exclusive task holds one; the settings of those
# groups and the defaults ('*'); the paused groups (an operator's handful).
LOAD = f"""
capacity AS (
    SELECT pool, sum(concurrency)::int AS slots
    FROM corral_workers, unnest(pools) AS pool
    WHERE lease_expires_at > %(now)s GROUP BY pool),
active AS (
    SELECT group_name, pool, count(*)::int AS n, bool_or(exclusive) AS exclusive
    FROM corral_tasks WHERE state IN ('admitted', 'running') GROUP BY group_name, pool)
SELECT
    (SELECT coalesce(json_agg(json_build_array(pool, slots)), '[]') FROM capacity),
    (SELECT coalesce(json_agg(json_build_array(group_name, pool, n, exclusive)), '[]')
     FROM active),
    (SELECT coalesce(json_agg(json_build_array({GROUP_FIELDS})), '[]') FROM corral_groups
     WHERE name IN (SELECT group_name FROM active) OR name = '*'),
    (SELECT coalesce(json_agg(name), '[]') FROM corral_paused_groups)"""
DISPATCH_LOAD = f"WITH {LOAD}"
# The leader's start of a round, in one round trip: fold hints, then read the load (the fold's
# changes to the heads don't touch what the load reads).
FOLD_AND_LOAD = f"WITH {FOLD_HINTS},\n{LOAD}"

# The first ready tasks of the best groups of each wanted pool, as four JSON arrays: per pool
# the best %(groups)s groups by head (level, then age), leaving out the groups to skip and those
# whose own bucket is empty, each with about %(tasks)s / (groups found) of its ready tasks plus
# one (to tell whether it has more); the settings of those groups; the buckets they and their
# tasks draw on; the named rate limits of those tasks.
DISPATCH_HEADS = f"""
WITH want AS (
    SELECT * FROM unnest(%(pools)b::text[], %(groups)b::int[], %(tasks)b::int[])
        AS w(pool, n_groups, n_tasks)),
best AS (
    SELECT w.pool, w.n_tasks, b.group_name FROM want w CROSS JOIN LATERAL (
        SELECT g.group_name FROM corral_ready_groups g
        WHERE g.pool = w.pool AND g.group_name <> ALL(%(skip)b::text[])
          AND NOT EXISTS (
              SELECT 1 FROM corral_rate_buckets b WHERE b.key = 'group:' || g.group_name
              AND least(b.burst, b.tokens + b.per_second * (%(now)s - b.updated_at)) < 1)
        ORDER BY g.level DESC, g.ready_at LIMIT w.n_groups) b),
sized AS (
    SELECT pool, group_name,
           greatest(1, ceil(n_tasks::float8 / count(*) OVER (PARTITION BY pool)))::int AS per
    FROM best),
heads AS (
    SELECT s.per, r.* FROM sized s CROSS JOIN LATERAL (
        SELECT t.id, t.pool, t.group_name, t.level, t.ready_at, t.rank, t.exclusive, t.rate_key
        FROM corral_tasks t
        WHERE t.state = 'ready' AND t.pool = s.pool AND t.group_name = s.group_name
        ORDER BY {HEAD_ORDER} LIMIT s.per + 1) r)
SELECT
    (SELECT coalesce(json_agg(json_build_array(
        id, pool, group_name, level, ready_at, rank, exclusive, rate_key, per)), '[]')
     FROM heads),
    (SELECT coalesce(json_agg(json_build_array({GROUP_FIELDS})), '[]') FROM corral_groups
     WHERE name IN (SELECT group_name FROM best)),
    (SELECT coalesce(json_agg(json_build_array(key, tokens, updated_at, per_second, burst)),
                     '[]')
     FROM corral_rate_buckets
     WHERE key IN (SELECT 'group:' || group_name FROM best
                   UNION SELECT 'key:' || rate_key FROM heads WHERE rate_key IS NOT NULL)),
    (SELECT coalesce(json_agg(json_build_array(key, rate_limit, per_second, burst)), '[]')
     FROM corral_rate_limits WHERE key IN (SELECT rate_key FROM heads))
"""
_ADMITTED_HEADS = _set_heads("touched", "AND t.id <> ALL(%(ids)b::bigint[])")
# Admit ready tasks in the given order (admitted_at orders the claims); record the new heads of
# their groups (the leader is the only writer of the heads, so no hint is needed); store the
# token buckets the admissions drew on; tell their pools' workers.
ADMIT = f"""
WITH moved AS (
    UPDATE corral_tasks t SET state = 'admitted', admitted_at = %(now)s + u.ord * 1e-6
    FROM unnest(%(ids)b::bigint[]) WITH ORDINALITY AS u(id, ord)
    WHERE t.id = u.id AND t.state = 'ready' RETURNING t.id, t.attempt, t.pool, t.group_name),
events AS (
    INSERT INTO corral_events (task_id, at, kind, from_state, to_state, attempt)
    SELECT id, %(now)s, {_ADMIT.sql}, attempt FROM moved),
touched AS (SELECT DISTINCT pool, group_name FROM moved),{_ADMITTED_HEADS},
buckets AS (
    INSERT INTO corral_rate_buckets (key, tokens, updated_at, per_second, burst)
    SELECT * FROM unnest(%(keys)b::text[], %(tokens)b::float8[], %(updated_at)b::float8[],
                         %(per_second)b::float8[], %(burst)b::float8[])
    ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at,
        per_second = excluded.per_second, burst = excluded.burst),
notices AS (
    SELECT pg_notify('corral_workers', 'admitted:' || pool)
    FROM (SELECT DISTINCT pool FROM moved) AS pools)
SELECT id, pool FROM moved CROSS JOIN (SELECT count(*) FROM notices) AS sent
"""
# Token buckets by key.
BUCKETS_NAMED = """
SELECT key, tokens, updated_at, per_second, burst FROM corral_rate_buckets
WHERE key = ANY(%(keys)s)
"""
# Ready tasks of a pool at a level above the given one (for `corral why`).
COUNT_AHEAD = """
SELECT count(*) FROM corral_tasks WHERE state = 'ready' AND pool = %(pool)s AND level > %(level)s
"""

# -- rate limits --------------------------------------------------------------------------------

# Create or replace a named rate limit.
UPSERT_RATE_LIMIT = """
INSERT INTO corral_rate_limits (key, rate_limit, per_second, burst)
VALUES (%(key)s, %(rate_limit)s, %(per_second)s, %(burst)s)
ON CONFLICT (key) DO UPDATE SET rate_limit = %(rate_limit)s, per_second = %(per_second)s,
    burst = %(burst)s
"""
# Remove a named rate limit.
DELETE_RATE_LIMIT = "DELETE FROM corral_rate_limits WHERE key = %s"
# All named rate limits.
ALL_RATE_LIMITS = "SELECT key, rate_limit, per_second, burst FROM corral_rate_limits ORDER BY key"
# Forget a bucket's state, so a new setting starts from a full bucket.
DELETE_BUCKET = "DELETE FROM corral_rate_buckets WHERE key = %s"

# -- worker -------------------------------------------------------------------------------------

# Claim admitted tasks of the pools in admission order, skipping rows others are claiming. A
# suspect runs alone: with may_take_suspect and nothing of the worker's running, the oldest
# admitted suspect by itself; else up to `limit` tasks that are not suspects, none while the
# worker runs a suspect.
CLAIM = f"""
WITH lone AS (
    SELECT id FROM corral_tasks
    WHERE state = 'admitted' AND suspect AND pool = ANY(%(pools)s) AND %(may_take_suspect)s
      AND NOT EXISTS (SELECT 1 FROM corral_tasks
                      WHERE worker_id = %(worker)s AND state = 'running')
    ORDER BY admitted_at, id LIMIT 1 FOR UPDATE SKIP LOCKED),
plain AS (
    SELECT id FROM corral_tasks
    WHERE state = 'admitted' AND NOT suspect AND pool = ANY(%(pools)s)
      AND NOT EXISTS (SELECT 1 FROM lone)
      AND NOT EXISTS (SELECT 1 FROM corral_tasks
                      WHERE worker_id = %(worker)s AND state = 'running' AND suspect)
    ORDER BY admitted_at, id LIMIT %(limit)s FOR UPDATE SKIP LOCKED),
picked AS (SELECT id FROM lone UNION ALL SELECT id FROM plain),
moved AS (
    UPDATE corral_tasks t SET state = 'running', attempt = t.attempt + 1, worker_id = %(worker)s,
           lease_expires_at = %(lease)s, started_at = %(now)s,
           first_started_at = coalesce(t.first_started_at, %(now)s)
    FROM picked WHERE t.id = picked.id
    RETURNING t.id, t.name, t.group_name, t.attempt, t.failures, t.max_retries, t.backoff,
              t.max_runtime, t.on_timeout, t.args, t.kwargs, t.dedup_key, t.checkpoint, t.shared,
              t.stalled_slices, t.suspect, t.logical_time, t.data_start, t.pool, t.ready_at,
              t.trace_context, t.workflow_id, t.admitted_at),
attempts AS (
    INSERT INTO corral_attempts (task_id, attempt, worker_id, started_at, isolated)
    SELECT id, attempt, %(worker)s, %(now)s, suspect FROM moved),
events AS (
    INSERT INTO corral_events (task_id, at, kind, from_state, to_state, attempt)
    SELECT id, %(now)s, {_CLAIM.sql}, attempt FROM moved)
SELECT * FROM moved ORDER BY admitted_at, id
"""
# The tasks that this worker's claim at `now` took, as CLAIM returns them: what a claim whose reply
# was lost committed, so its retry hands them out rather than leaving them to their lease.
CLAIMED_AT = """
SELECT id, name, group_name, attempt, failures, max_retries, backoff, max_runtime, on_timeout,
       args, kwargs, dedup_key, checkpoint, shared, stalled_slices, suspect, logical_time,
       data_start, pool, ready_at, trace_context, workflow_id, admitted_at
FROM corral_tasks WHERE state = 'running' AND worker_id = %(worker)s AND started_at = %(now)s
ORDER BY admitted_at, id
"""
# Take or renew the drain mark of the suspect a busy worker drains for: the oldest admitted
# suspect of the pools waiting since overdue_before whose mark is free, lapsed or this worker's
# (its own first). The partial index of admitted suspects, once per heartbeat; the mark is a
# compare-and-set under the row lock, so one worker drains for a suspect.
TAKE_DRAIN_MARK = """
WITH candidate AS (
    SELECT id FROM corral_tasks
    WHERE state = 'admitted' AND suspect AND pool = ANY(%(pools)s)
      AND admitted_at <= %(overdue_before)s
      AND (drainer IS NULL OR drainer = %(worker)s OR drain_until < %(now)s)
    ORDER BY coalesce(drainer = %(worker)s, FALSE) DESC, admitted_at, id
    LIMIT 1 FOR UPDATE SKIP LOCKED)
UPDATE corral_tasks t SET drainer = %(worker)s, drain_until = %(hold_until)s
FROM candidate WHERE t.id = candidate.id
RETURNING t.id
"""
# Record the ends of running attempts that are still the running ones (compare-and-set), close
# their attempt rows and write their events (the detail: outcome and error, failures.end_detail):
# one statement for the whole batch. An attempt row is found by its task, number and start (the
# task's started_at): the start is its partition key, so only that day's partition is probed.
COMPLETE = f"""
WITH r AS (
    SELECT * FROM unnest(%(ids)b::bigint[], %(attempts)b::int[], %(targets)b::text[],
                         %(outcomes)b::text[], %(failed)b::int[], %(workers)b::text[],
                         %(results)b::text[], %(errors)b::text[], %(tracebacks)b::text[],
                         %(retry_at)b::float8[], %(stalled)b::int[], %(flags)b::text[],
                         %(details)b::text[], %(suspects)b::boolean[], %(crashes)b::int[],
                         %(flag_details)b::text[])
        AS r(id, attempt, target, outcome, failed, worker, result, error, traceback, retry_at,
             stalled, flag, detail, suspect, crashes, flag_detail)),
moved AS (
    UPDATE corral_tasks t SET
        state = r.target,
        result = r.result,
        error = r.error,
        failures = t.failures + r.failed,
        worker_id = NULL,
        lease_expires_at = NULL,
        cancel_requested = CASE WHEN r.target = 'ready' THEN t.cancel_requested ELSE FALSE END,
        finished_at = CASE WHEN r.target IN {TERMINAL_SQL} THEN %(now)s ELSE NULL END,
        run_at = CASE WHEN r.target = 'retry_wait' THEN r.retry_at ELSE t.run_at END,
        promote_at = CASE WHEN r.target = 'ready' AND t.aging != %(no_aging)s
                          THEN %(now)s ELSE NULL END,
        stalled_slices = coalesce(r.stalled, t.stalled_slices),
        suspect = coalesce(r.suspect, t.suspect),
        isolated_crashes = coalesce(r.crashes, t.isolated_crashes)
    FROM r
    WHERE t.id = r.id AND t.attempt = r.attempt AND t.state = 'running'
      AND (r.worker IS NULL OR t.worker_id = r.worker)
    RETURNING t.id, r.attempt, r.target, r.outcome, r.error, r.traceback, r.flag, r.detail,
              r.flag_detail, t.started_at),
closed AS (
    UPDATE corral_attempts a SET finished_at = %(now)s, outcome = moved.outcome,
           error = moved.error, traceback = moved.traceback
    FROM moved WHERE a.task_id = moved.id AND a.attempt = moved.attempt
      AND a.started_at = moved.started_at),
events AS (
    INSERT INTO corral_events (task_id, at, kind, from_state, to_state, attempt, detail)
    SELECT id, %(now)s, kind, 'running', to_state, attempt, detail FROM (
        SELECT id, flag AS kind, NULL AS to_state, attempt, 0 AS ord, flag_detail AS detail
        FROM moved WHERE flag IS NOT NULL
        UNION ALL
        SELECT id, target, target, attempt, 1, detail FROM moved) AS e
    ORDER BY id, ord)
SELECT id FROM moved
"""
# COMPLETE in ONE round trip, for reports that leave no clean-up (an autocommitted statement): the
# same moves and events, the scheduler's wake-up if any task moved, and a durable commit
# (`set_config(..., true)` is SET LOCAL) where the general path takes BEGIN, SET LOCAL, the
# statement, NOTIFY and COMMIT.
if not COMPLETE.endswith("SELECT id FROM moved\n"):  # pragma: no cover (a change of COMPLETE)
    raise AssertionError("COMPLETE_ONE extends COMPLETE's last line")
COMPLETE_ONE = (
    COMPLETE.removesuffix("SELECT id FROM moved\n")
    + """SELECT m.id FROM moved m CROSS JOIN (
    SELECT set_config('synchronous_commit', 'on', true), pg_notify('corral_scheduler', '')
    WHERE EXISTS (SELECT 1 FROM moved)) AS durable_and_woken
"""
)
# Store a checkpoint for the running attempt.
SAVE_CHECKPOINT = """
UPDATE corral_tasks SET checkpoint = %s WHERE id = %s AND attempt = %s AND state = 'running'
"""
# Store the shared clean-up record for the running attempt.
SAVE_SHARED = """
UPDATE corral_tasks SET shared = %s WHERE id = %s AND attempt = %s AND state = 'running'
"""
# Record an event about an attempt that changes no state (e.g. gil_held), if the task exists.
RECORD_EVENT = """
INSERT INTO corral_events (task_id, at, kind, from_state, to_state, attempt, detail)
SELECT id, %(now)s, %(kind)s, NULL, NULL, %(attempt)s, %(detail)s FROM corral_tasks
WHERE id = %(id)s
"""
# Append log lines (COPY).
COPY_LOGS = "COPY corral_logs (task_id, attempt, at, level, message) FROM STDIN"

# -- operators ----------------------------------------------------------------------------------

# A task's state and attempt, locked for the transition that follows.
TASK_STATE_FOR_UPDATE = "SELECT state, attempt FROM corral_tasks WHERE id = %s FOR UPDATE"
# Cancel a task that is not running.
CANCEL_NOW = """
UPDATE corral_tasks SET state = 'cancelled', finished_at = %(now)s, error = 'cancelled'
WHERE id = %(id)s AND state = %(expected)s
"""
# Ask the worker of a running task to stop it.
REQUEST_CANCEL = """
UPDATE corral_tasks SET cancel_requested = TRUE WHERE id = %(id)s AND state = 'running'
RETURNING worker_id
"""
# Put a finished task back in the queue with a fresh retry budget.
RETRY = """
UPDATE corral_tasks SET state = 'ready', failures = 0, cancel_requested = FALSE, error = NULL,
       finished_at = NULL, stalled_slices = 0, isolated_crashes = 0, ready_at = %(now)s,
       level = priority,
       run_at = %(now)s,
       promote_at = CASE WHEN aging = %(no_aging)s THEN NULL ELSE %(now)s END
WHERE id = %(id)s AND state = %(expected)s
"""
# Append one event row.
INSERT_EVENT = """
INSERT INTO corral_events (task_id, at, kind, from_state, to_state, attempt, detail)
VALUES (%s, %s, %s, %s, %s, %s, %s)
"""

# -- reaper -------------------------------------------------------------------------------------

# Running tasks whose lease has expired, with whether their attempt ran alone (the attempt row by
# its start, the partition key).
FETCH_EXPIRED = """
SELECT t.id, t.attempt, t.failures, t.max_retries, t.on_timeout, t.cancel_requested, t.worker_id,
       coalesce(a.isolated, FALSE), t.isolated_crashes, t.quarantine_after, t.cleanup, t.name
FROM corral_tasks t
LEFT JOIN corral_attempts a
    ON a.task_id = t.id AND a.attempt = t.attempt AND a.started_at = t.started_at
WHERE t.state = 'running' AND t.lease_expires_at < %(now)s
ORDER BY t.lease_expires_at LIMIT %(limit)s
"""

# -- workers and leader -------------------------------------------------------------------------

# Announce (or re-announce) a worker.
UPSERT_WORKER = """
INSERT INTO corral_workers (id, hostname, pid, pools, concurrency, started_at, heartbeat_at,
                            lease_expires_at)
VALUES (%(id)s, %(hostname)s, %(pid)s, %(pools)s, %(concurrency)s, %(now)s, %(now)s, %(lease)s)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = %(now)s, lease_expires_at = %(lease)s,
    pools = %(pools)s, concurrency = %(concurrency)s
"""
# Forget workers gone for an hour.
PRUNE_WORKERS = "DELETE FROM corral_workers WHERE lease_expires_at < %(before)s"
# Extend a worker's lease and its running tasks' leases; how many workers (0: not registered).
RENEW_WORKER = """
WITH beat AS (
    UPDATE corral_workers SET heartbeat_at = %(now)s, lease_expires_at = %(lease)s
    WHERE id = %(id)s RETURNING id),
leases AS (
    UPDATE corral_tasks SET lease_expires_at = %(lease)s
    WHERE worker_id = %(id)s AND state = 'running' AND EXISTS (SELECT 1 FROM beat))
SELECT count(*) FROM beat
"""
# Remove a worker.
DELETE_WORKER = "DELETE FROM corral_workers WHERE id = %s"
# Live workers with how many tasks each runs.
LIST_WORKERS = """
SELECT w.id, w.hostname, w.pid, w.pools, w.concurrency, w.started_at, w.heartbeat_at,
       w.lease_expires_at,
       (SELECT count(*) FROM corral_tasks t WHERE t.worker_id = w.id AND t.state = 'running')
FROM corral_workers w WHERE w.lease_expires_at > %(now)s ORDER BY w.started_at
"""
# Try to take the leadership lock (session level: it goes with the connection).
TRY_LEADER_LOCK = "SELECT pg_try_advisory_lock(%s)"

# -- groups -------------------------------------------------------------------------------------

# Create or replace a group's settings.
UPSERT_GROUP = """
INSERT INTO corral_groups (name, max_parallel, weight, rate_limit, per_second, burst)
VALUES (%(name)s, %(max_parallel)s, %(weight)s, %(rate_limit)s, %(per_second)s, %(burst)s)
ON CONFLICT (name) DO UPDATE SET max_parallel = %(max_parallel)s, weight = %(weight)s,
    rate_limit = %(rate_limit)s, per_second = %(per_second)s, burst = %(burst)s
"""
# One group's settings.
GET_GROUP = f"SELECT {GROUP_FIELDS} FROM corral_groups WHERE name = %s"

# -- history ------------------------------------------------------------------------------------

EVENT_COLUMNS = "id, task_id, at, kind, from_state, to_state, attempt, detail"
# A task's events.
_LIVE = "EXISTS (SELECT 1 FROM corral_tasks t WHERE t.id = task_id)"
"""The row's task is still stored: a pruned task's history may stay in its day's partition until
the whole day is dropped (corral.retention), and no read shows it."""
TASK_EVENTS = f"""
SELECT {EVENT_COLUMNS} FROM corral_events WHERE task_id = %s AND {_LIVE} ORDER BY id
"""
# The event feed after a cursor.
EVENTS_AFTER = f"""
SELECT {EVENT_COLUMNS} FROM corral_events WHERE id > %s AND {_LIVE} ORDER BY id LIMIT %s
"""
# A task's attempts.
TASK_ATTEMPTS = f"""
SELECT task_id, attempt, worker_id, started_at, finished_at, outcome, error, traceback, isolated
FROM corral_attempts WHERE task_id = %s AND {_LIVE} ORDER BY attempt
"""
# A task's log lines, of one attempt or all (NULL).
TASK_LOGS = f"""
SELECT task_id, attempt, at, level, message FROM corral_logs
WHERE task_id = %(id)s AND (%(attempt)s::int IS NULL OR attempt = %(attempt)s) AND {_LIVE}
ORDER BY id
"""

# -- dependencies: settling the dependents of ended tasks ---------------------------------------

# Lock the upstream tasks of new dependents (in id order) and mark them as having dependents, so
# that their end queues a settle. The lock orders this with a concurrent end: either it commits
# first, and QUEUE_ENDED (a later statement) sees it, or it waits for this transaction, and its
# trigger sees has_dependents and queues it after the new edges exist.
MARK_HAS_DEPENDENTS = """
WITH locked AS (
    SELECT id, has_dependents FROM corral_tasks WHERE id = ANY(%(ids)s)
    ORDER BY id FOR NO KEY UPDATE)
UPDATE corral_tasks t SET has_dependents = TRUE
FROM locked WHERE t.id = locked.id AND NOT locked.has_dependents
"""
# Queue those of the tasks that already ended: their new dependents need settling.
QUEUE_ENDED = f"""
INSERT INTO corral_upstream_ended (task_id)
SELECT id FROM corral_tasks WHERE id = ANY(%(ids)s) AND state IN {TERMINAL_SQL}
"""
# Take the oldest queued ends of tasks that have dependents (the resolver settles them in the
# same transaction).
TAKE_ENDED = """
DELETE FROM corral_upstream_ended WHERE id IN (
    SELECT id FROM corral_upstream_ended ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
RETURNING task_id
"""
# Recount the unsettled dependencies of the waiting dependents of the ended tasks: -1 when a
# dependency ended badly and the dependent is 'fail'; 'run' dependents count any end as settled.
# The ids are given (not read from a CTE) so that the planner sees how many dependents they
# have; the per-edge LATERALs (OFFSET 0) keep every other step an index lookup.
SETTLE_DEPENDENTS = f"""
WITH counted AS (
    SELECT t.id,
           CASE WHEN bool_or(t.on_upstream_failure = 'fail'
                             AND u.state IN ('dead', 'cancelled', 'upstream_failed')) THEN -1
                ELSE count(*) FILTER (WHERE u.state <> 'succeeded' AND NOT (
                    t.on_upstream_failure = 'run' AND u.state IN {TERMINAL_SQL})) END AS deps_left
    FROM corral_tasks t
    CROSS JOIN LATERAL (
        SELECT depends_on FROM corral_task_deps WHERE task_id = t.id OFFSET 0) d
    CROSS JOIN LATERAL (SELECT state FROM corral_tasks WHERE id = d.depends_on OFFSET 0) u
    WHERE t.state = 'waiting' AND t.id IN (
        SELECT task_id FROM corral_task_deps WHERE depends_on = ANY(%(ids)s))
    GROUP BY t.id)
UPDATE corral_tasks t SET deps_left = c.deps_left
FROM counted c
WHERE t.id = c.id AND t.state = 'waiting' AND t.deps_left <> c.deps_left
"""
# Set the dependency counts of new tasks from their edges (after a dedup race remapped one).
RECOUNT_NEW = """
UPDATE corral_tasks t SET deps_left = (
    SELECT count(*) FROM corral_task_deps d WHERE d.task_id = t.id)
WHERE t.id = ANY(%(ids)s)
"""

# -- workflows ------------------------------------------------------------------------------------

# Create a workflow.
INSERT_WORKFLOW = """
INSERT INTO corral_workflows (name, group_name, created_at)
VALUES (%(name)s, %(group_name)s, %(now)s) RETURNING id
"""
# One workflow and its tasks counted by state (one snapshot): its own, and those its steps
# deduplicated onto.
WORKFLOW_STATUS = """
SELECT w.id, w.name, w.group_name, w.created_at,
       (SELECT coalesce(json_object_agg(state, n), '{}') FROM (
            SELECT state, count(*) AS n FROM (
                SELECT id, state FROM corral_tasks WHERE workflow_id = w.id
                UNION
                SELECT t.id, t.state FROM corral_workflow_links l
                JOIN corral_tasks t ON t.id = l.task_id WHERE l.workflow_id = w.id) AS own
            GROUP BY state) AS c)
FROM corral_workflows w WHERE w.id = %s
"""
# Record the tasks a workflow relies on that are not its own (steps deduplicated onto them).
INSERT_WORKFLOW_LINKS = """
INSERT INTO corral_workflow_links (workflow_id, task_id)
SELECT %(id)s, unnest(%(task_ids)b::bigint[]) ON CONFLICT DO NOTHING
"""
# Lock a workflow's row: its cancels are serialised.
LOCK_WORKFLOW = "SELECT id FROM corral_workflows WHERE id = %s FOR UPDATE"
# Cancel a workflow's unfinished tasks in one statement: those not running at once, the running
# ones by request (their workers are told); one event each. Returns (cancelled, requested).
CANCEL_WORKFLOW = f"""
WITH unfinished AS (
    SELECT id, state FROM corral_tasks
    WHERE workflow_id = %(id)s AND state NOT IN {TERMINAL_SQL} FOR UPDATE),
stopped AS (
    UPDATE corral_tasks t SET state = 'cancelled', finished_at = %(now)s, error = 'cancelled'
    FROM unfinished u
    WHERE t.id = u.id AND u.state IN {CANCELLABLE_AT_ONCE_SQL}
    RETURNING t.id, t.attempt, u.state AS before),
asked AS (
    UPDATE corral_tasks t SET cancel_requested = TRUE
    FROM unfinished u
    WHERE t.id = u.id AND u.state = 'running' AND NOT t.cancel_requested
    RETURNING t.id, t.attempt),
events AS (
    INSERT INTO corral_events (task_id, at, kind, from_state, to_state, attempt)
    SELECT id, %(now)s, 'cancelled', before, 'cancelled', attempt FROM stopped
    UNION ALL
    SELECT id, %(now)s, {_REQUEST_CANCEL.sql}, attempt FROM asked),
notices AS (
    SELECT pg_notify('corral_workers', 'cancel:' || id) FROM asked)
SELECT (SELECT count(*) FROM stopped), (SELECT count(*) FROM asked),
       (SELECT count(*) FROM notices)
"""

# -- cancel requests and event consumers --------------------------------------------------------

# A worker's running tasks that were asked to cancel.
WORKER_CANCEL_REQUESTS = """
SELECT id FROM corral_tasks WHERE worker_id = %(id)s AND state = 'running' AND cancel_requested
"""
# Create a consumer's row at the origin of the feed (the row '*'), if it has none.
ADD_CONSUMER = """
INSERT INTO corral_consumers (name, cursor_xid, cursor_id)
SELECT %(name)s, cursor_xid, cursor_id FROM corral_consumers WHERE name = '*'
ON CONFLICT (name) DO NOTHING
"""
# Take or extend a consumer's lease if free, expired or already `holder`'s.
ACQUIRE_CONSUMER = """
UPDATE corral_consumers SET holder = %(holder)s, lease_expires_at = %(lease)s
WHERE name = %(name)s
  AND (holder IS NULL OR holder = %(holder)s OR lease_expires_at < %(now)s)
RETURNING name
"""
# Move a consumer's cursor, if `holder` still holds its lease (compare-and-set).
ADVANCE_CONSUMER = """
UPDATE corral_consumers SET cursor_xid = %(xid)s, cursor_id = %(event_id)s
WHERE name = %(name)s AND holder = %(holder)s AND lease_expires_at >= %(now)s
RETURNING name
"""
# Extend a consumer's lease that `holder` still holds.
RENEW_CONSUMER = """
UPDATE corral_consumers SET lease_expires_at = %(lease)s
WHERE name = %(name)s AND holder = %(holder)s AND lease_expires_at >= %(now)s
RETURNING name
"""
# Give up a consumer's lease.
RELEASE_CONSUMER = """
UPDATE corral_consumers SET holder = NULL, lease_expires_at = 0 WHERE name = %s AND holder = %s
"""
# The feed's horizon (a CTE): every transaction that may still write an event here is at least
# this old. It is the oldest transaction in progress in this statement's snapshot, leaving out
# those that pg_stat_activity shows in other databases of the server (they write no corral events
# here; one not shown, or already gone, is kept: the horizon only errs on the early side), else
# the snapshot's xmax.
FEED_HORIZON = """snap AS (SELECT pg_current_snapshot() AS s),
elsewhere AS (
    SELECT backend_xid::text::bigint AS xid32 FROM pg_stat_activity
    WHERE backend_xid IS NOT NULL
      AND datid IS DISTINCT FROM (SELECT oid FROM pg_database WHERE datname = current_database())),
horizon AS (
    SELECT least(
        pg_snapshot_xmax(snap.s)::text::bigint,
        (SELECT min(x::text::bigint) FROM pg_snapshot_xip(snap.s) AS x
         WHERE x::text::bigint %% 4294967296 NOT IN (SELECT xid32 FROM elsewhere))) AS xid
    FROM snap)"""
# The events after a consumer's cursor, with their tasks' name, group and workflow: only those of
# transactions older than the horizon (so none can appear among them later), in (xid, id) order,
# which is then fixed. Events of tasks pruned already (left in a day partition until it is
# dropped) are skipped.
EVENTS_UNSEEN = f"""
WITH {FEED_HORIZON},
cursor AS (SELECT cursor_xid, cursor_id FROM corral_consumers WHERE name = %(name)s)
SELECT e.id, e.task_id, e.at, e.kind, e.from_state, e.to_state, e.attempt, e.detail,
       t.name, t.group_name, t.workflow_id, e.xid
FROM corral_events e
JOIN corral_tasks t ON t.id = e.task_id
CROSS JOIN horizon CROSS JOIN cursor
WHERE (e.xid, e.id) > (cursor.cursor_xid, cursor.cursor_id) AND e.xid < horizon.xid
ORDER BY e.xid, e.id LIMIT %(limit)s
"""
