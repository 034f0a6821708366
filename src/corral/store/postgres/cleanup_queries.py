"""Named SQL of the clean-ups on PostgreSQL (corral.cleanup), one line of why each."""

# With bad ends' reports, in their transaction: each attempt's clean-up, with what it last shared;
# the task's shared starts empty for its next attempt (what it held is the clean-up's now).
INSERT_CLEANUPS = """
WITH written AS (
INSERT INTO corral_cleanups (task_id, task_name, attempt, reason, shared, state, tries,
                             next_try_at, release_at, created_at)
SELECT t.id, t.name, r.attempt, r.reason, t.shared, 'pending', 0, %(now)s, r.release_at, %(now)s
FROM unnest(%(ids)b::bigint[], %(attempts)b::int[], %(reasons)b::text[],
            %(release_at)b::float8[]) AS r(id, attempt, reason, release_at)
JOIN corral_tasks t ON t.id = r.id
ON CONFLICT (task_id, attempt) DO NOTHING
RETURNING task_id)
UPDATE corral_tasks SET shared = NULL WHERE id IN (SELECT task_id FROM written)
"""
# Claim the due clean-ups of the worker's task types (pending, or running with a lapsed lease),
# each with its task's payload; SKIP LOCKED: two workers never take the same one.
CLAIM_CLEANUPS = """
WITH due AS (
    SELECT id FROM corral_cleanups
    WHERE state IN ('pending', 'running') AND next_try_at <= %(now)s
      AND task_name = ANY(%(names)b::text[])
    ORDER BY next_try_at LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED),
claimed AS (
    UPDATE corral_cleanups c SET state = 'running', holder = %(worker)s, tries = c.tries + 1,
                                 next_try_at = %(lease)s
    FROM due WHERE c.id = due.id
    RETURNING c.id, c.task_id, c.task_name, c.attempt, c.reason, c.shared, c.tries)
SELECT claimed.*, t.group_name, t.args, t.kwargs, t.dedup_key
FROM claimed LEFT JOIN corral_tasks t ON t.id = claimed.task_id ORDER BY claimed.id
"""
# A failed try with tries left: pending again after its backoff.
RETRY_CLEANUP = """
UPDATE corral_cleanups SET state = 'pending', holder = NULL, next_try_at = %(next_try_at)s,
                           last_error = %(error)s
WHERE id = %(id)s AND holder = %(worker)s AND state = 'running'
"""
# The clean-up's end (succeeded or failed) if the worker still holds it; the task held in
# retry_wait for that attempt is released (due at once if overdue); the end is an event.
END_CLEANUP = """
WITH ended AS (
    UPDATE corral_cleanups SET state = %(state)s, holder = NULL, next_try_at = NULL,
                               finished_at = %(now)s, last_error = %(error)s
    WHERE id = %(id)s AND holder = %(worker)s AND state = 'running'
    RETURNING task_id, attempt, reason, tries, release_at),
released AS (
    UPDATE corral_tasks t SET run_at = coalesce(ended.release_at, %(now)s)
    FROM ended
    WHERE t.id = ended.task_id AND t.attempt = ended.attempt AND t.state = 'retry_wait'
      AND t.run_at IS NULL
    RETURNING t.id)
SELECT task_id, attempt, reason, tries, (SELECT count(*) FROM released) FROM ended
"""
# The clean-up's end as an event (no transition).
CLEANUP_EVENT = """
INSERT INTO corral_events (task_id, at, kind, from_state, to_state, attempt, detail)
VALUES (%(id)s, %(now)s, %(kind)s, NULL, NULL, %(attempt)s, %(detail)s)
"""
# The clean-ups still to end, soonest due first.
UNFINISHED_CLEANUPS = """
SELECT id, task_id, attempt, reason, state, tries, next_try_at, holder, created_at, finished_at,
       last_error
FROM corral_cleanups WHERE state IN ('pending', 'running') ORDER BY next_try_at LIMIT %s
"""
# A task's clean-ups, by attempt.
LIST_CLEANUPS = """
SELECT id, task_id, attempt, reason, state, tries, next_try_at, holder, created_at, finished_at,
       last_error
FROM corral_cleanups WHERE task_id = %s ORDER BY attempt
"""
