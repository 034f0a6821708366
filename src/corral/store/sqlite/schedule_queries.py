"""The named SQL of schedules, fires and backfills on SQLite (see store/contract/schedules.py)."""

from __future__ import annotations

from ..schedule_rows import BACKFILL_FIELDS, FIRE_FIELDS, SCHEDULE_FIELDS

# Create a declared schedule, or update its definition (and revive it); its cursor is written
# when it is new, revived, or `reset` (its spec changed); paused and the counters stay.
SAVE_SCHEDULE = """
INSERT INTO corral_schedules (name, spec, target, options, cursor_at, next_at, created_at,
                              updated_at)
VALUES (:name, :spec, :target, :options, :cursor_at, :next_at, :now, :now)
ON CONFLICT (name) DO UPDATE SET
    spec = excluded.spec, target = excluded.target, options = excluded.options,
    cursor_at = CASE WHEN :reset OR corral_schedules.removed_at IS NOT NULL
                     THEN excluded.cursor_at ELSE corral_schedules.cursor_at END,
    next_at = CASE WHEN :reset OR corral_schedules.removed_at IS NOT NULL
                   THEN excluded.next_at ELSE corral_schedules.next_at END,
    buffered_at = CASE WHEN corral_schedules.removed_at IS NOT NULL THEN NULL
                       ELSE corral_schedules.buffered_at END,
    removed_at = NULL, updated_at = :now
WHERE corral_schedules.spec IS NOT excluded.spec OR corral_schedules.target IS NOT excluded.target
   OR corral_schedules.options IS NOT excluded.options OR corral_schedules.removed_at IS NOT NULL
   OR :reset
"""
# A schedule no longer declared: it stops firing, its fires stay.
REMOVE_SCHEDULE = """
UPDATE corral_schedules SET removed_at = :now, updated_at = :now
WHERE name = :name AND removed_at IS NULL
"""
# Every stored schedule, by name.
LIST_SCHEDULES = f"SELECT {SCHEDULE_FIELDS} FROM corral_schedules ORDER BY name"
# The schedules named (a JSON array).
NAMED_SCHEDULES = f"""
SELECT {SCHEDULE_FIELDS} FROM corral_schedules
WHERE name IN (SELECT value FROM json_each(:names)) ORDER BY name
"""
# The schedules whose next fire is due (the due index), earliest first.
DUE_SCHEDULES = f"""
SELECT {SCHEDULE_FIELDS} FROM corral_schedules INDEXED BY corral_schedules_due
WHERE removed_at IS NULL AND next_at <= :now ORDER BY next_at LIMIT :limit
"""
# The schedules with a held fire or a trigger request (the pending index).
PENDING_SCHEDULES = f"""
SELECT {SCHEDULE_FIELDS} FROM corral_schedules INDEXED BY corral_schedules_pending
WHERE removed_at IS NULL AND (buffered_at IS NOT NULL OR trigger_at IS NOT NULL)
LIMIT :limit
"""
# Pause or resume.
SET_PAUSED = """
UPDATE corral_schedules SET paused = :paused, updated_at = :now WHERE name = :name RETURNING name
"""
# Ask for one fire now.
TRIGGER = """
UPDATE corral_schedules SET trigger_at = :now, updated_at = :now
WHERE name = :name AND removed_at IS NULL RETURNING name
"""
# The fires of a batch, each unless its logical time is stored already: `fires` is a JSON array
# of [logical_time, data_start, kind, outcome, reason, backfill_id, runs] (schedule_rows.
# fires_param), in logical time order. Returns the rows made.
INSERT_FIRES = """
INSERT INTO corral_schedule_fires (schedule_name, logical_time, data_start, kind, outcome, reason,
                                   backfill_id, runs, made_at)
SELECT :schedule_name, f.value ->> 0, f.value ->> 1, f.value ->> 2, f.value ->> 3, f.value ->> 4,
       f.value ->> 5, f.value ->> 6, :now
FROM json_each(:fires) AS f WHERE true
ON CONFLICT (schedule_name, logical_time) DO NOTHING RETURNING id, logical_time
"""
# A backfill runs a stored fire again: the row takes the new run.
RERUN_FIRE = """
UPDATE corral_schedule_fires SET kind = :kind, outcome = :outcome, reason = :reason,
       backfill_id = :backfill_id, runs = runs + 1, made_at = :now, task_ids = '[]',
       workflow_id = NULL
WHERE schedule_name = :schedule_name AND logical_time = :logical_time RETURNING id
"""
# The tasks a fire made.
SET_FIRE_TASKS = """
UPDATE corral_schedule_fires SET task_ids = :task_ids, workflow_id = :workflow_id WHERE id = :id
"""
# A task a dedup key gave the fire from outside (not inserted by it: the fire's own tasks carry
# their schedule in their row) learns its schedule (corral_tasks_schedule pages them), unless it
# has one from an earlier fire.
MARK_FIRE_TASKS = """
UPDATE corral_tasks SET schedule_name = :schedule_name
WHERE id IN (SELECT value FROM json_each(:task_ids)) AND schedule_name IS NULL
"""
# The counters and the last fire, after a batch (`last` only if no later one is recorded).
COUNT_FIRES = """
UPDATE corral_schedules SET
    fired = fired + :fired, skipped = skipped + :skipped, missed = missed + :missed,
    last_outcome = CASE WHEN :last IS NOT NULL AND :last >= coalesce(last_logical, -1e300)
                        THEN :last_outcome ELSE last_outcome END,
    last_logical = CASE WHEN :last IS NOT NULL AND :last >= coalesce(last_logical, -1e300)
                        THEN :last ELSE last_logical END,
    updated_at = :now
WHERE name = :name
"""
# Move the cursor (never backwards; next_at follows the cursor that wins).
MOVE_CURSOR = """
UPDATE corral_schedules SET
    next_at = CASE WHEN :cursor_at >= cursor_at THEN :next_at ELSE next_at END,
    cursor_at = max(cursor_at, :cursor_at), updated_at = :now
WHERE name = :name
"""
# Hold a fire back (buffer_one), or release it.
SET_BUFFERED = "UPDATE corral_schedules SET buffered_at = :buffered_at WHERE name = :name"
# A trigger request handled (a newer one stays).
TRIGGER_DONE = """
UPDATE corral_schedules SET trigger_at = NULL WHERE name = :name AND trigger_at = :trigger_at
"""
# A schedule's fires, latest first.
LIST_FIRES = f"""
SELECT {FIRE_FIELDS} FROM corral_schedule_fires
WHERE schedule_name = :name AND logical_time < coalesce(:before, 1e300)
ORDER BY logical_time DESC LIMIT :limit
"""
# One fire.
GET_FIRE = f"""
SELECT {FIRE_FIELDS} FROM corral_schedule_fires
WHERE schedule_name = :name AND logical_time = :logical_time
"""
# The latest fire that made tasks.
LAST_RUN = f"""
SELECT {FIRE_FIELDS} FROM corral_schedule_fires
WHERE schedule_name = :name AND outcome = 'fired' ORDER BY logical_time DESC LIMIT 1
"""
# A new backfill.
INSERT_BACKFILL = """
INSERT INTO corral_backfills (schedule_name, start_at, end_at, reprocess, forward, group_name,
                              state, total, created_at, updated_at)
VALUES (:schedule_name, :start_at, :end_at, :reprocess, :forward, :group_name, 'running', :total,
        :now, :now)
RETURNING id
"""
GET_BACKFILL = f"SELECT {BACKFILL_FIELDS} FROM corral_backfills WHERE id = :id"
LIST_BACKFILLS = f"""
SELECT {BACKFILL_FIELDS} FROM corral_backfills
WHERE NOT :running_only OR state = 'running' ORDER BY id DESC
"""
SET_BACKFILL_STATE = """
UPDATE corral_backfills SET state = :state, updated_at = :now
WHERE id = :id AND state IN (SELECT value FROM json_each(:from_states)) RETURNING id
"""
# A batch of a backfill's fires made.
MOVE_BACKFILL = """
UPDATE corral_backfills SET cursor_at = :cursor_at, made = made + :made,
       state = CASE WHEN :done AND state = 'running' THEN 'done' ELSE state END, updated_at = :now
WHERE id = :id
"""
BACKFILL_FIRES = f"""
SELECT {FIRE_FIELDS} FROM corral_schedule_fires INDEXED BY corral_schedule_fires_backfill
WHERE backfill_id = :id ORDER BY logical_time
"""
