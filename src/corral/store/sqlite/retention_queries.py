"""The SQL of retention (SQLite), named, each with a line saying what it does. The rule it
executes is corral.retention's; lists travel as JSON arrays read with json_each."""

from __future__ import annotations

from ...moves import ENDED_SQL, TERMINAL_SQL

# The retention configured, per task type ('*': the default).
GET_RETENTION = "SELECT task_name, seconds FROM corral_retention"
# Set one task type's retention (or the default's).
SET_RETENTION = """
INSERT INTO corral_retention (task_name, seconds) VALUES (?, ?)
ON CONFLICT (task_name) DO UPDATE SET seconds = excluded.seconds
"""
# Forget one task type's retention.
UNSET_RETENTION = "DELETE FROM corral_retention WHERE task_name = ?"
# Where the slowest event consumer stands ('*' is the origin new consumers start from, not one).
SLOWEST_CURSOR = "SELECT min(cursor_id) FROM corral_consumers WHERE name <> '*'"
# The newest task and event: kept, so SQLite never hands their ids out again (max(id) + 1).
NEWEST_IDS = "SELECT (SELECT max(id) FROM corral_tasks), (SELECT max(id) FROM corral_events)"

_UNFINISHED_WORKFLOW = f"""(
    EXISTS (SELECT 1 FROM corral_tasks o
            WHERE o.workflow_id = {{wf}} AND o.state NOT IN {TERMINAL_SQL})
    OR EXISTS (SELECT 1 FROM corral_workflow_links k JOIN corral_tasks o ON o.id = k.task_id
               WHERE k.workflow_id = {{wf}} AND o.state NOT IN {TERMINAL_SQL}))"""
_PRUNABLE = f"""
SELECT t.id, t.workflow_id, t.created_at FROM corral_tasks t
WHERE {ENDED_SQL} AND t.state IN {TERMINAL_SQL} AND {{name_filter}} AND t.finished_at < :cutoff
  AND t.id < :newest_task
  AND NOT EXISTS (SELECT 1 FROM corral_task_deps d JOIN corral_tasks w ON w.id = d.task_id
                  WHERE d.depends_on = t.id AND w.state NOT IN {TERMINAL_SQL})
  AND NOT EXISTS (SELECT 1 FROM corral_events e WHERE e.task_id = t.id
                  AND (e.id > :cursor OR e.id >= :newest_event))
  AND (t.workflow_id IS NULL OR NOT {_UNFINISHED_WORKFLOW.format(wf="t.workflow_id")})
  AND NOT EXISTS (SELECT 1 FROM corral_workflow_links l WHERE l.task_id = t.id
                  AND {_UNFINISHED_WORKFLOW.format(wf="l.workflow_id")})
ORDER BY t.finished_at LIMIT :limit
"""
# Up to :limit finished tasks of one type that retention lets go, oldest first (index by name).
PRUNABLE_OF_TYPE = _PRUNABLE.format(name_filter="t.name = :name")
# Up to :limit finished tasks of the types without their own retention, oldest first.
PRUNABLE_DEFAULT = _PRUNABLE.format(name_filter="t.name NOT IN (SELECT value FROM json_each(:own))")

_IDS = "(SELECT value FROM json_each(:ids))"
# The history of the pruned tasks (each delete an index range per task).
PRUNE_LOGS = f"DELETE FROM corral_logs WHERE task_id IN {_IDS}"
PRUNE_EVENTS = f"DELETE FROM corral_events WHERE task_id IN {_IDS}"
PRUNE_ATTEMPTS = f"DELETE FROM corral_attempts WHERE task_id IN {_IDS}"
PRUNE_HISTORY = (PRUNE_LOGS, PRUNE_EVENTS, PRUNE_ATTEMPTS)
# The workflows the pruned tasks are linked into (not their own): they may be left empty too.
LINKED_WORKFLOWS = f"SELECT DISTINCT workflow_id FROM corral_workflow_links WHERE task_id IN {_IDS}"
# Their ended clean-ups (one still to run keeps its row: it runs from what the row holds).
PRUNE_CLEANUPS = (
    f"DELETE FROM corral_cleanups WHERE task_id IN {_IDS} AND state IN ('succeeded', 'failed')"
)
# Their dependency links, both ways (their dependents are all finished).
PRUNE_DEPS = f"DELETE FROM corral_task_deps WHERE task_id IN {_IDS}"
PRUNE_DEPENDENTS = f"DELETE FROM corral_task_deps WHERE depends_on IN {_IDS}"
# Their places in other workflows, and the tasks themselves.
PRUNE_LINKS = f"DELETE FROM corral_workflow_links WHERE task_id IN {_IDS}"
PRUNE_TASKS = f"DELETE FROM corral_tasks WHERE id IN {_IDS}"
# Submit-id rows of the calls that stored the pruned tasks (same created_at): a call is remembered
# until its first task is pruned (checking all of a bulk call's ids would cost its size a batch).
PRUNE_SUBMITS = (
    "DELETE FROM corral_submits WHERE created_at IN (SELECT value FROM json_each(:times))"
)
_EMPTY_WORKFLOWS = """(
    SELECT w.id FROM corral_workflows w WHERE w.id IN (SELECT value FROM json_each(:ids))
      AND w.id < (SELECT max(id) FROM corral_workflows)
      AND NOT EXISTS (SELECT 1 FROM corral_tasks o WHERE o.workflow_id = w.id))"""
# The links of the workflows of pruned tasks that have no task of their own left...
PRUNE_EMPTY_WORKFLOW_LINKS = (
    f"DELETE FROM corral_workflow_links WHERE workflow_id IN {_EMPTY_WORKFLOWS}"
)
# ...and those workflows (the newest kept: SQLite would give its id out again).
PRUNE_EMPTY_WORKFLOWS = f"DELETE FROM corral_workflows WHERE id IN {_EMPTY_WORKFLOWS}"

# Fires (corral.retention's rule for them): made before the cutoff, none of their tasks still
# stored (their tasks' own retention decides, and an unfinished task is stored), not the latest
# fire nor the latest run of their schedule (overlap and `corral why` read them), not part of a
# backfill still running or paused (its status counts them); the oldest first (the made index).
# The newest fire row is kept: SQLite would give its id out again.
PRUNABLE_FIRES = """
SELECT f.id FROM corral_schedule_fires f INDEXED BY corral_schedule_fires_made
WHERE f.made_at < :cutoff AND f.id < (SELECT max(id) FROM corral_schedule_fires)
  AND NOT EXISTS (SELECT 1 FROM json_each(f.task_ids) j JOIN corral_tasks t ON t.id = j.value)
  AND f.logical_time < (SELECT max(l.logical_time) FROM corral_schedule_fires l
                        WHERE l.schedule_name = f.schedule_name)
  AND (f.outcome <> 'fired' OR f.logical_time < (
      SELECT max(r.logical_time) FROM corral_schedule_fires r
      WHERE r.schedule_name = f.schedule_name AND r.outcome = 'fired'))
  AND (f.backfill_id IS NULL OR NOT EXISTS (
      SELECT 1 FROM corral_backfills b WHERE b.id = f.backfill_id
      AND b.state IN ('running', 'paused')))
ORDER BY f.made_at LIMIT :limit
"""
# Delete those fires.
PRUNE_FIRES = f"DELETE FROM corral_schedule_fires WHERE id IN {_IDS}"
# Backfills that ended (done or cancelled) before the cutoff and have no fire left.
PRUNABLE_BACKFILLS = """
SELECT b.id FROM corral_backfills b INDEXED BY corral_backfills_ended
WHERE b.state IN ('done', 'cancelled') AND b.updated_at < :cutoff
  AND NOT EXISTS (SELECT 1 FROM corral_schedule_fires f WHERE f.backfill_id = b.id)
  AND b.id < (SELECT max(id) FROM corral_backfills)
ORDER BY b.updated_at LIMIT :limit
"""
# Delete those backfills (the newest kept: SQLite would give its id out again).
PRUNE_BACKFILLS = f"DELETE FROM corral_backfills WHERE id IN {_IDS}"
