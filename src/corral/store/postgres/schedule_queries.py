"""The named SQL of schedules, fires and backfills on PostgreSQL (see
store/contract/schedules.py)."""

from __future__ import annotations

from ..schedule_rows import BACKFILL_FIELDS, FIRE_FIELDS, SCHEDULE_FIELDS

# Create a declared schedule, or update its definition (and revive it); its cursor is written
# when it is new, revived, or `reset` (its spec changed); paused and the counters stay.
SAVE_SCHEDULE = """
INSERT INTO corral_schedules (name, spec, target, options, cursor_at, next_at, created_at,
                              updated_at)
VALUES (%(name)s, %(spec)s, %(target)s, %(options)s, %(cursor_at)s, %(next_at)s, %(now)s,
        %(now)s)
ON CONFLICT (name) DO UPDATE SET
    spec = excluded.spec, target = excluded.target, options = excluded.options,
    cursor_at = CASE WHEN %(reset)s::boolean OR corral_schedules.removed_at IS NOT NULL
                     THEN excluded.cursor_at ELSE corral_schedules.cursor_at END,
    next_at = CASE WHEN %(reset)s::boolean OR corral_schedules.removed_at IS NOT NULL
                   THEN excluded.next_at ELSE corral_schedules.next_at END,
    buffered_at = CASE WHEN corral_schedules.removed_at IS NOT NULL THEN NULL
                       ELSE corral_schedules.buffered_at END,
    removed_at = NULL, updated_at = %(now)s
WHERE corral_schedules.spec IS DISTINCT FROM excluded.spec
   OR corral_schedules.target IS DISTINCT FROM excluded.target
   OR corral_schedules.options IS DISTINCT FROM excluded.options
   OR corral_schedules.removed_at IS NOT NULL
   OR %(reset)s::boolean
"""
# A schedule no longer declared: it stops firing, its fires stay.
REMOVE_SCHEDULE = """
UPDATE corral_schedules SET removed_at = %(now)s, updated_at = %(now)s
WHERE name = %(name)s AND removed_at IS NULL
"""
# Every stored schedule, by name.
LIST_SCHEDULES = f"SELECT {SCHEDULE_FIELDS} FROM corral_schedules ORDER BY name"
# The schedules named (a JSON array).
NAMED_SCHEDULES = f"""
SELECT {SCHEDULE_FIELDS} FROM corral_schedules
WHERE name = ANY(%(names)s) ORDER BY name
"""
# The schedules whose next fire is due (the due index), earliest first.
DUE_SCHEDULES = f"""
SELECT {SCHEDULE_FIELDS} FROM corral_schedules
WHERE removed_at IS NULL AND next_at <= %(now)s ORDER BY next_at LIMIT %(limit)s
"""
# The schedules with a held fire or a trigger request (the pending index).
PENDING_SCHEDULES = f"""
SELECT {SCHEDULE_FIELDS} FROM corral_schedules
WHERE removed_at IS NULL AND (buffered_at IS NOT NULL OR trigger_at IS NOT NULL)
LIMIT %(limit)s
"""
# Pause or resume.
SET_PAUSED = """
UPDATE corral_schedules SET paused = %(paused)s, updated_at = %(now)s
WHERE name = %(name)s RETURNING name
"""
# Ask for one fire now.
TRIGGER = """
UPDATE corral_schedules SET trigger_at = %(now)s, updated_at = %(now)s
WHERE name = %(name)s AND removed_at IS NULL RETURNING name
"""
# The fires of a batch, each unless its logical time is stored already: `fires` is a JSON array
# of [logical_time, data_start, kind, outcome, reason, backfill_id, runs] (schedule_rows.
# fires_param), in logical time order (two leaders racing over the same times take their keys
# in one order). Returns the rows made.
INSERT_FIRES = """
INSERT INTO corral_schedule_fires (schedule_name, logical_time, data_start, kind, outcome, reason,
                                   backfill_id, runs, made_at)
SELECT %(schedule_name)s, (f ->> 0)::float8, (f ->> 1)::float8, f ->> 2, f ->> 3, f ->> 4,
       (f ->> 5)::bigint, (f ->> 6)::int, %(now)s
FROM jsonb_array_elements(%(fires)s::jsonb) AS f
ON CONFLICT (schedule_name, logical_time) DO NOTHING RETURNING id, logical_time
"""
# A backfill runs a stored fire again: the row takes the new run.
RERUN_FIRE = """
UPDATE corral_schedule_fires SET kind = %(kind)s, outcome = %(outcome)s, reason = %(reason)s,
       backfill_id = %(backfill_id)s, runs = runs + 1, made_at = %(now)s, task_ids = '[]',
       workflow_id = NULL
WHERE schedule_name = %(schedule_name)s AND logical_time = %(logical_time)s RETURNING id
"""
# The tasks a fire made.
SET_FIRE_TASKS = """
UPDATE corral_schedule_fires SET task_ids = %(task_ids)s, workflow_id = %(workflow_id)s
WHERE id = %(id)s
"""
# A task a dedup key gave the fire from outside (not inserted by it: the fire's own tasks carry
# their schedule in their row) learns its schedule (corral_tasks_schedule pages them), unless it
# has one from an earlier fire.
MARK_FIRE_TASKS = """
UPDATE corral_tasks SET schedule_name = %(schedule_name)s
WHERE id IN (SELECT jsonb_array_elements_text(%(task_ids)s::jsonb)::bigint)
  AND schedule_name IS NULL
"""
# The counters and the last fire, after a batch (`last` only if no later one is recorded).
COUNT_FIRES = """
UPDATE corral_schedules SET
    fired = fired + %(fired)s, skipped = skipped + %(skipped)s, missed = missed + %(missed)s,
    last_outcome = CASE WHEN %(last)s::float8 IS NOT NULL
                             AND %(last)s::float8 >= coalesce(last_logical, '-Infinity'::float8)
                        THEN %(last_outcome)s ELSE last_outcome END,
    last_logical = CASE WHEN %(last)s::float8 IS NOT NULL
                             AND %(last)s::float8 >= coalesce(last_logical, '-Infinity'::float8)
                        THEN %(last)s::float8 ELSE last_logical END,
    updated_at = %(now)s
WHERE name = %(name)s
"""
# Move the cursor (never backwards; next_at follows the cursor that wins).
MOVE_CURSOR = """
UPDATE corral_schedules SET
    next_at = CASE WHEN %(cursor_at)s::float8 >= cursor_at THEN %(next_at)s::float8
                   ELSE next_at END,
    cursor_at = greatest(cursor_at, %(cursor_at)s), updated_at = %(now)s
WHERE name = %(name)s
"""
# Hold a fire back (buffer_one), or release it.
SET_BUFFERED = "UPDATE corral_schedules SET buffered_at = %(buffered_at)s WHERE name = %(name)s"
# A trigger request handled (a newer one stays).
TRIGGER_DONE = """
UPDATE corral_schedules SET trigger_at = NULL WHERE name = %(name)s AND trigger_at = %(trigger_at)s
"""
# A schedule's fires, latest first.
LIST_FIRES = f"""
SELECT {FIRE_FIELDS} FROM corral_schedule_fires
WHERE schedule_name = %(name)s AND logical_time < coalesce(%(before)s::float8, 'Infinity'::float8)
ORDER BY logical_time DESC LIMIT %(limit)s
"""
# One fire.
GET_FIRE = f"""
SELECT {FIRE_FIELDS} FROM corral_schedule_fires
WHERE schedule_name = %(name)s AND logical_time = %(logical_time)s
"""
# The latest fire that made tasks.
LAST_RUN = f"""
SELECT {FIRE_FIELDS} FROM corral_schedule_fires
WHERE schedule_name = %(name)s AND outcome = 'fired' ORDER BY logical_time DESC LIMIT 1
"""
# A new backfill.
INSERT_BACKFILL = """
INSERT INTO corral_backfills (schedule_name, start_at, end_at, reprocess, forward, group_name,
                              state, total, created_at, updated_at)
VALUES (%(schedule_name)s, %(start_at)s, %(end_at)s, %(reprocess)s, %(forward)s,
        %(group_name)s, 'running', %(total)s, %(now)s, %(now)s)
RETURNING id
"""
GET_BACKFILL = f"SELECT {BACKFILL_FIELDS} FROM corral_backfills WHERE id = %(id)s"
LIST_BACKFILLS = f"""
SELECT {BACKFILL_FIELDS} FROM corral_backfills
WHERE NOT %(running_only)s::boolean OR state = 'running' ORDER BY id DESC
"""
SET_BACKFILL_STATE = """
UPDATE corral_backfills SET state = %(state)s, updated_at = %(now)s
WHERE id = %(id)s AND state = ANY(%(from_states)s) RETURNING id
"""
# A batch of a backfill's fires made.
MOVE_BACKFILL = """
UPDATE corral_backfills SET cursor_at = %(cursor_at)s, made = made + %(made)s,
       state = CASE WHEN %(done)s::boolean AND state = 'running' THEN 'done' ELSE state END,
       updated_at = %(now)s
WHERE id = %(id)s
"""
BACKFILL_FIRES = f"""
SELECT {FIRE_FIELDS} FROM corral_schedule_fires
WHERE backfill_id = %(id)s ORDER BY logical_time
"""
