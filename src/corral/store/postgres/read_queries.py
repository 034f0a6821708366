"""The read side's SQL on PostgreSQL (corral.readside), named; each statement says which index
it walks. A page is one statement: an index scan in the page's order that stops at its LIMIT; the
other filters are checked on the rows that scan gives (`RESIDUAL`)."""

from __future__ import annotations

from ...lifecycle import TERMINAL, State
from ...moves import TERMINAL_SQL
from ..rows import GROUP_FIELDS
from .queries import TASK_COLUMNS

UNFINISHED = tuple(s for s in State if s not in TERMINAL)
UNFINISHED_SQL = "(" + ", ".join(f"'{s}'" for s in UNFINISHED) + ")"

RESIDUAL = """
  AND (%(states)s::text[] IS NULL OR t.state = ANY(%(states)s::text[]))
  AND (%(name)s::text IS NULL OR t.name = %(name)s::text)
  AND (%(group_name)s::text IS NULL OR t.group_name = %(group_name)s::text)
  AND (%(workflow_id)s::bigint IS NULL OR t.workflow_id = %(workflow_id)s::bigint)
  AND (%(pool)s::text IS NULL OR t.pool = %(pool)s::text)
  AND (%(created_from)s::float8 IS NULL OR t.created_at >= %(created_from)s::float8)
  AND (%(created_until)s::float8 IS NULL OR t.created_at < %(created_until)s::float8)
  AND (%(finished_from)s::float8 IS NULL OR t.finished_at >= %(finished_from)s::float8)
  AND (%(finished_until)s::float8 IS NULL OR t.finished_at < %(finished_until)s::float8)"""
"""The filters, each a no-op when its parameter is NULL."""


def _by(driving: str) -> str:
    return f"""
SELECT {TASK_COLUMNS} FROM corral_tasks t
WHERE {driving} AND t.id < %(after_id)s::bigint{RESIDUAL}
ORDER BY t.id DESC LIMIT %(limit)s
"""


# Newest first by id, walking the primary key (no filter that an index serves).
PAGE_BY_ID = _by("true")
# One task type, newest first (corral_tasks_name_id).
PAGE_BY_NAME = _by("t.name = %(name)s::text")
# One group, newest first (corral_tasks_group_id).
PAGE_BY_GROUP = _by("t.group_name = %(group_name)s::text")
# One workflow, newest first (corral_tasks_workflow).
PAGE_BY_WORKFLOW = _by("t.workflow_id = %(workflow_id)s::bigint")
# Some states, newest first: per state asked for, an ordered scan of corral_tasks_state_id
# stopped at the LIMIT, then the branches merged.
PAGE_BY_STATE = f"""
SELECT p.* FROM unnest(%(states)s::text[]) AS s(state)
CROSS JOIN LATERAL (
    SELECT {TASK_COLUMNS} FROM corral_tasks t
    WHERE t.state = s.state AND t.id < %(after_id)s::bigint{RESIDUAL}
    ORDER BY t.id DESC LIMIT %(limit)s
) p
ORDER BY p.id DESC LIMIT %(limit)s
"""
# Ended tasks by when they ended, newest first (corral_tasks_finished, then the id among ties).
PAGE_BY_FINISHED = f"""
SELECT {TASK_COLUMNS} FROM corral_tasks t
WHERE t.state IN {TERMINAL_SQL} AND t.finished_at <= %(after_key)s::float8
  AND (t.finished_at < %(after_key)s::float8 OR t.id < %(after_id)s::bigint){RESIDUAL}
ORDER BY t.finished_at DESC, t.id DESC LIMIT %(limit)s
"""
# Unfinished tasks by group, pool and state (corral_tasks_state_id over the unfinished states).
COUNT_UNFINISHED = f"""
SELECT group_name, pool, state, count(*) FROM corral_tasks
WHERE state IN {UNFINISHED_SQL} GROUP BY group_name, pool, state
"""
# Tasks first started since a moment, the latest first (corral_tasks_started).
RECENT_STARTS = """
SELECT group_name, pool, first_started_at, first_started_at - enqueued_at FROM corral_tasks
WHERE first_started_at IS NOT NULL AND first_started_at >= %(since)s
ORDER BY first_started_at DESC LIMIT %(limit)s
"""
# A task's log lines before (attempt, id), the latest first (corral_logs_task).
LOG_PAGE = """
SELECT id, task_id, attempt, at, level, message FROM corral_logs
WHERE task_id = %(id)s AND (attempt, id) < (%(attempt)s, %(before)s)
ORDER BY attempt DESC, id DESC LIMIT %(limit)s
"""
# Every configured group.
ALL_GROUPS = f"SELECT {GROUP_FIELDS} FROM corral_groups ORDER BY name"
# A task whose name does not start with the prefix: a scan that stops at the first one (a
# prefix is no index range under every collation; only the demo asks, and it runs on SQLite).
NAME_OUTSIDE = """
SELECT name FROM corral_tasks WHERE NOT starts_with(name, %(prefix)s) LIMIT 1
"""


def encode_list(values: list[str]) -> list[str]:
    """A list parameter: an array."""
    return values
