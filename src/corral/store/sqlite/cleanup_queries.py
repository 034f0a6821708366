"""Named SQL of the clean-ups on SQLite (corral.cleanup), one line of why each."""

# With a bad end's report, in its transaction: the attempt's clean-up, with what it last shared.
INSERT_CLEANUP = """
INSERT INTO corral_cleanups (task_id, task_name, attempt, reason, shared, state, tries,
                             next_try_at, release_at, created_at)
SELECT id, name, :attempt, :reason, shared, 'pending', 0, :now, :release_at, :now
FROM corral_tasks WHERE id = :id
ON CONFLICT (task_id, attempt) DO NOTHING
"""
# ...and the task's shared starts empty for its next attempt: what it held is the clean-up's now.
CLEAR_SHARED = "UPDATE corral_tasks SET shared = NULL WHERE id = :id"
# Is any clean-up of the worker's task types due? (read first: the usual "no" takes no write lock)
ANY_DUE = """
SELECT 1 FROM corral_cleanups INDEXED BY corral_cleanups_due
WHERE state IN ('pending', 'running') AND next_try_at <= :now
  AND task_name IN (SELECT value FROM json_each(:names))
LIMIT 1
"""
# Claim the due clean-ups of the worker's task types (pending, or running with a lapsed lease).
CLAIM_CLEANUPS = """
UPDATE corral_cleanups SET state = 'running', holder = :worker, tries = tries + 1,
                           next_try_at = :lease
WHERE id IN (
    SELECT id FROM corral_cleanups INDEXED BY corral_cleanups_due
    WHERE state IN ('pending', 'running') AND next_try_at <= :now
      AND task_name IN (SELECT value FROM json_each(:names))
    ORDER BY next_try_at LIMIT :limit)
RETURNING id, task_id, task_name, attempt, reason, shared, tries
"""
# The claimed clean-ups' tasks: the payload their context carries.
CLEANUP_TASKS = """
SELECT id, group_name, args, kwargs, dedup_key FROM corral_tasks
WHERE id IN (SELECT value FROM json_each(:ids))
"""
# A failed try with tries left: pending again after its backoff.
RETRY_CLEANUP = """
UPDATE corral_cleanups SET state = 'pending', holder = NULL, next_try_at = :next_try_at,
                           last_error = :error
WHERE id = :id AND holder = :worker AND state = 'running'
"""
# The clean-up's end (succeeded or failed), if the worker still holds it.
END_CLEANUP = """
UPDATE corral_cleanups SET state = :state, holder = NULL, next_try_at = NULL, finished_at = :now,
                           last_error = :error
WHERE id = :id AND holder = :worker AND state = 'running'
RETURNING task_id, attempt, reason, tries, release_at
"""
# Release the task held in retry_wait for that attempt: its retry is due (at once if overdue).
RELEASE_HELD = """
UPDATE corral_tasks SET run_at = coalesce(:release_at, :now)
WHERE id = :id AND attempt = :attempt AND state = 'retry_wait' AND run_at IS NULL
"""
# The clean-up's end as an event (no transition).
CLEANUP_EVENT = """
INSERT INTO corral_events (task_id, at, kind, from_state, to_state, attempt, detail)
VALUES (:id, :now, :kind, NULL, NULL, :attempt, :detail)
"""
# The clean-ups still to end, soonest due first.
UNFINISHED_CLEANUPS = """
SELECT id, task_id, attempt, reason, state, tries, next_try_at, holder, created_at, finished_at,
       last_error
FROM corral_cleanups WHERE state IN ('pending', 'running') ORDER BY next_try_at LIMIT ?
"""
# A task's clean-ups, by attempt.
LIST_CLEANUPS = """
SELECT id, task_id, attempt, reason, state, tries, next_try_at, holder, created_at, finished_at,
       last_error
FROM corral_cleanups WHERE task_id = ? ORDER BY attempt
"""
