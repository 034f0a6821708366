"""The SQL of retention (PostgreSQL), named, each with a line saying what it does. The rule it
executes is corral.retention's; lists travel as arrays."""

from __future__ import annotations

from ...moves import ENDED_SQL, TERMINAL_SQL
from .partition_queries import PARENTS

# The retention configured, per task type ('*': the default).
GET_RETENTION = "SELECT task_name, seconds FROM corral_retention"
# Set one task type's retention (or the default's).
SET_RETENTION = """
INSERT INTO corral_retention (task_name, seconds) VALUES (%s, %s)
ON CONFLICT (task_name) DO UPDATE SET seconds = excluded.seconds
"""
# Forget one task type's retention.
UNSET_RETENTION = "DELETE FROM corral_retention WHERE task_name = %s"
# Where the slowest event consumer stands, in its (xid, id) order ('*' is the origin new
# consumers start from, not a consumer).
SLOWEST_CURSOR = """
SELECT cursor_xid, cursor_id FROM corral_consumers WHERE name <> '*'
ORDER BY cursor_xid, cursor_id LIMIT 1
"""

_UNFINISHED_WORKFLOW = f"""(
    EXISTS (SELECT 1 FROM corral_tasks o
            WHERE o.workflow_id = {{wf}} AND o.state NOT IN {TERMINAL_SQL})
    OR EXISTS (SELECT 1 FROM corral_workflow_links k JOIN corral_tasks o ON o.id = k.task_id
               WHERE k.workflow_id = {{wf}} AND o.state NOT IN {TERMINAL_SQL}))"""
_PRUNABLE = f"""
SELECT t.id, t.workflow_id, t.created_at FROM corral_tasks t
WHERE {ENDED_SQL} AND t.state IN {TERMINAL_SQL} AND {{name_filter}} AND t.finished_at < %(cutoff)s
  AND NOT EXISTS (SELECT 1 FROM corral_task_deps d JOIN corral_tasks w ON w.id = d.task_id
                  WHERE d.depends_on = t.id AND w.state NOT IN {TERMINAL_SQL})
  AND NOT (%(has_consumer)s AND EXISTS (
      SELECT 1 FROM corral_events e WHERE e.task_id = t.id AND e.xid IS NOT NULL
      AND (e.xid, e.id) > (%(cursor_xid)s::bigint, %(cursor_id)s::bigint)))
  AND (t.workflow_id IS NULL OR NOT {_UNFINISHED_WORKFLOW.format(wf="t.workflow_id")})
  AND NOT EXISTS (SELECT 1 FROM corral_workflow_links l WHERE l.task_id = t.id
                  AND {_UNFINISHED_WORKFLOW.format(wf="l.workflow_id")})
ORDER BY t.finished_at LIMIT %(limit)s
FOR UPDATE OF t SKIP LOCKED
"""
# Up to %(limit)s finished tasks of one type that retention lets go, oldest first (index by
# name), locked so that no transition races the delete.
PRUNABLE_OF_TYPE = _PRUNABLE.format(name_filter="t.name = %(name)s")
# Up to %(limit)s finished tasks of the types without their own retention, oldest first.
PRUNABLE_DEFAULT = _PRUNABLE.format(name_filter="NOT (t.name = ANY(%(own)b::text[]))")

_IDS = "ANY(%(ids)b::bigint[])"
# The workflows the pruned tasks are linked into (not their own): they may be left empty too.
LINKED_WORKFLOWS = f"SELECT DISTINCT workflow_id FROM corral_workflow_links WHERE task_id = {_IDS}"
# The history of the pruned tasks, but not their rows in the days to be dropped whole: those are
# all the day partitions that end by %(line)s (corral.retention's drop line, rounded down to a
# day's end), so the partitions of newer days hold every other row, found by task id with the
# older days pruned from the plan; the DEFAULT partition is never dropped, so its older rows go
# too. Each delete an index range per task, in the partitions that may hold one of its rows.
PRUNE_HISTORY = tuple(
    statement.format(table=table, key=key, ids=_IDS)
    for table, key in PARENTS.items()
    for statement in (
        "DELETE FROM {table} WHERE task_id = {ids} AND {key} >= %(line)s",
        "DELETE FROM {table}_default WHERE task_id = {ids} AND {key} < %(line)s",
    )
)
# Their ended clean-ups (one still to run keeps its row: it runs from what the row holds).
PRUNE_CLEANUPS = (
    f"DELETE FROM corral_cleanups WHERE task_id = {_IDS} AND state IN ('succeeded', 'failed')"
)
# Their dependency links, both ways (their dependents are all finished).
PRUNE_DEPS = f"DELETE FROM corral_task_deps WHERE task_id = {_IDS}"
PRUNE_DEPENDENTS = f"DELETE FROM corral_task_deps WHERE depends_on = {_IDS}"
# Their places in other workflows, and the tasks themselves.
PRUNE_LINKS = f"DELETE FROM corral_workflow_links WHERE task_id = {_IDS}"
PRUNE_TASKS = f"DELETE FROM corral_tasks WHERE id = {_IDS}"
# Submit-id rows of the calls that stored the pruned tasks (same created_at): a call is remembered
# until its first task is pruned (checking all of a bulk call's ids would cost its size a batch).
PRUNE_SUBMITS = "DELETE FROM corral_submits WHERE created_at = ANY(%(times)s::double precision[])"
_EMPTY_WORKFLOWS = """(
    SELECT w.id FROM corral_workflows w WHERE w.id = ANY(%(ids)b::bigint[])
      AND NOT EXISTS (SELECT 1 FROM corral_tasks o WHERE o.workflow_id = w.id))"""
# The links of the workflows of pruned tasks that have no task of their own left...
PRUNE_EMPTY_WORKFLOW_LINKS = (
    f"DELETE FROM corral_workflow_links WHERE workflow_id IN {_EMPTY_WORKFLOWS}"
)
# ...and those workflows.
PRUNE_EMPTY_WORKFLOWS = f"DELETE FROM corral_workflows WHERE id IN {_EMPTY_WORKFLOWS}"

# Fires (corral.retention's rule for them): made before the cutoff, none of their tasks still
# stored (their tasks' own retention decides, and an unfinished task is stored), not the latest
# fire nor the latest run of their schedule (overlap and `corral why` read them), not part of a
# backfill still running or paused (its status counts them); the oldest first (the made index).
PRUNABLE_FIRES = """
SELECT f.id FROM corral_schedule_fires f
WHERE f.made_at < %(cutoff)s
  AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements_text(f.task_ids::jsonb) j
                  JOIN corral_tasks t ON t.id = j.value::bigint)
  AND f.logical_time < (SELECT max(l.logical_time) FROM corral_schedule_fires l
                        WHERE l.schedule_name = f.schedule_name)
  AND (f.outcome <> 'fired' OR f.logical_time < (
      SELECT max(r.logical_time) FROM corral_schedule_fires r
      WHERE r.schedule_name = f.schedule_name AND r.outcome = 'fired'))
  AND (f.backfill_id IS NULL OR NOT EXISTS (
      SELECT 1 FROM corral_backfills b WHERE b.id = f.backfill_id
      AND b.state IN ('running', 'paused')))
ORDER BY f.made_at LIMIT %(limit)s
"""
# Delete those fires.
PRUNE_FIRES = f"DELETE FROM corral_schedule_fires WHERE id = {_IDS}"
# Backfills that ended (done or cancelled) before the cutoff and have no fire left.
PRUNABLE_BACKFILLS = """
SELECT b.id FROM corral_backfills b
WHERE b.state IN ('done', 'cancelled') AND b.updated_at < %(cutoff)s
  AND NOT EXISTS (SELECT 1 FROM corral_schedule_fires f WHERE f.backfill_id = b.id)
ORDER BY b.updated_at LIMIT %(limit)s
"""
# Delete those backfills.
PRUNE_BACKFILLS = f"DELETE FROM corral_backfills WHERE id = {_IDS}"
