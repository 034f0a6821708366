"""The read side's SQL on PostgreSQL (corral.readside), named; each statement says which index
it walks. A page is one statement: an index scan in the page's order that stops at its LIMIT; the
other filters are checked on the rows that scan gives (`RESIDUAL`)."""

from __future__ import annotations

from ...lifecycle import TERMINAL, State
from ...moves import ENDED_SQL, TERMINAL_SQL
from ..rows import GROUP_FIELDS
from .queries import TASK_COLUMNS

UNFINISHED = tuple(s for s in State if s not in TERMINAL)
UNFINISHED_SQL = "(" + ", ".join(f"'{s}'" for s in UNFINISHED) + ")"

RESIDUAL = """
  AND (%(states)b::text[] IS NULL OR t.state = ANY(%(states)b::text[]))
  AND (%(name)s::text IS NULL OR t.name = %(name)s::text)
  AND (%(group_name)s::text IS NULL OR t.group_name = %(group_name)s::text)
  AND (%(workflow_id)s::bigint IS NULL OR t.workflow_id = %(workflow_id)s::bigint)
  AND (%(pool)s::text IS NULL OR t.pool = %(pool)s::text)
  AND (%(schedule)s::text IS NULL OR t.schedule_name = %(schedule)s::text)
  AND (%(created_from)s::float8 IS NULL OR t.created_at >= %(created_from)s::float8)
  AND (%(created_until)s::float8 IS NULL OR t.created_at < %(created_until)s::float8)
  AND (%(finished_from)s::float8 IS NULL OR t.finished_at >= %(finished_from)s::float8)
  AND (%(finished_until)s::float8 IS NULL OR t.finished_at < %(finished_until)s::float8)
  AND (%(scope_all)s::boolean OR t.group_name = ANY(%(scope_names)b::text[])
       OR EXISTS (SELECT 1 FROM unnest(%(scope_prefixes)b::text[]) p(v)
                  WHERE starts_with(t.group_name, p.v)))"""
"""The filters, each a no-op when its parameter is NULL."""


def _by(driving: str) -> str:
    return f"""
SELECT {TASK_COLUMNS} FROM corral_tasks t
WHERE {driving} AND t.id < %(after_id)s::bigint{RESIDUAL}
ORDER BY t.id DESC LIMIT %(limit)s
"""


def _branch(where: str, gate: str | None = None, *, backlog: bool = False) -> str:
    """One ordered part of a page, stopped at the LIMIT: its state is a literal, so the planner
    takes that state's partial index; `gate` (a parameter) skips it before its scan starts. A
    `backlog` branch (an unfinished state) sorts the rows of its state's partial index: ordered
    by `t.id + 0`, it can't walk the primary key backward past the whole history to fill a page
    that the backlog holds fewer rows for."""
    gated = "" if gate is None else f" AND {gate}"
    order = "t.id + 0" if backlog else "t.id"
    return f"(SELECT {TASK_COLUMNS} FROM corral_tasks t\nWHERE {where}{gated}" + (
        f" AND t.id < %(after_id)s::bigint{RESIDUAL}\nORDER BY {order} DESC LIMIT %(limit)s)"
    )


def _state_is(state: State) -> str:
    """A branch's state, worded so that the ended tasks' partial index is seen to hold it."""
    if state in TERMINAL:
        return f"{ENDED_SQL} AND t.state IN {TERMINAL_SQL} AND t.state = '{state}'"
    return f"t.state = '{state}'"


def _merged(branches: list[str]) -> str:
    return (
        "SELECT * FROM (\n"
        + "\nUNION ALL\n".join(branches)
        + "\n) AS p ORDER BY p.id DESC LIMIT %(limit)s"
    )


def _by_ended_index(driving: str) -> str:
    """The ended tasks of one type or group by their index, merged with the unfinished ones of
    each state (the backlog, by that state's partial index)."""
    ended = _branch(f"{ENDED_SQL} AND t.state IN {TERMINAL_SQL} AND {driving}")
    unfinished = [_branch(f"t.state = '{s}' AND {driving}", backlog=True) for s in UNFINISHED]
    return _merged([ended, *unfinished])


# Newest first by id, walking the primary key (no filter that an index serves).
PAGE_BY_ID = _by("true")
# One task type, newest first: the ended ones by corral_tasks_ended_name, the unfinished ones by
# their states' partial indexes.
PAGE_BY_NAME = _by_ended_index("t.name = %(name)s::text")
# One group, newest first: the ended ones by corral_tasks_ended_group, the unfinished ones by
# their states' partial indexes.
PAGE_BY_GROUP = _by_ended_index("t.group_name = %(group_name)s::text")
# One workflow, newest first (corral_tasks_workflow).
PAGE_BY_WORKFLOW = _by("t.workflow_id = %(workflow_id)s::bigint")
# The tasks of one schedule's fires, newest first (corral_tasks_schedule).
PAGE_BY_SCHEDULE = _by("t.schedule_name = %(schedule)s::text")
# Some states, newest first: per state asked for, its index (an unfinished state's partial index
# of the hot path; corral_tasks_ended_state for an ended one) stopped at the LIMIT, then merged.
PAGE_BY_STATE = _merged(
    [_branch(_state_is(s), f"%(want_{s})s::boolean", backlog=s not in TERMINAL) for s in State]
)
# Ended tasks by when they ended, newest first (corral_tasks_finished, then the id among ties).
PAGE_BY_FINISHED = f"""
SELECT {TASK_COLUMNS} FROM corral_tasks t
WHERE {ENDED_SQL} AND t.state IN {TERMINAL_SQL} AND t.finished_at <= %(after_key)s::float8
  AND (t.finished_at < %(after_key)s::float8 OR t.id < %(after_id)s::bigint){RESIDUAL}
ORDER BY t.finished_at DESC, t.id DESC LIMIT %(limit)s
"""
# Unfinished tasks by group, pool and state: per state, its partial index (the backlog).
COUNT_UNFINISHED = "\nUNION ALL\n".join(
    f"SELECT group_name, pool, '{s}', count(*) FROM corral_tasks WHERE state = '{s}'"
    " GROUP BY group_name, pool"
    for s in UNFINISHED
)
# The cluster figures' counts (corral.metrics.cluster), in one statement: the unfinished tasks by
# group, pool and state (COUNT_UNFINISHED, each state's partial index) ranked in the database, so
# only the top groups' rows come back (by ready tasks, then admitted and running, then name in
# code point order; `other` is never among them), then the totals by pool and state (group NULL),
# then how many groups have ready tasks (pool NULL).
COUNT_TOP_GROUPS = f"""
WITH c(group_name, pool, state, n) AS MATERIALIZED ({COUNT_UNFINISHED}),
top AS (
    SELECT group_name FROM c WHERE group_name <> 'other' GROUP BY group_name
    ORDER BY sum(CASE WHEN state = 'ready' THEN n ELSE 0 END) DESC,
             sum(CASE WHEN state IN ('admitted', 'running') THEN n ELSE 0 END) DESC,
             group_name COLLATE \"C\"
    LIMIT %(limit)s)
SELECT group_name, pool, state, n FROM c WHERE group_name IN (SELECT group_name FROM top)
UNION ALL
SELECT NULL, pool, state, sum(n) FROM c GROUP BY pool, state
UNION ALL
SELECT NULL, NULL, NULL, count(DISTINCT group_name) FROM c WHERE state = 'ready'
"""
# The busiest groups' unfinished tasks (COUNT_UNFINISHED, each state's partial index), ranked in
# the database like readside.busiest (ready, then admitted and running, then name in code point
# order), with the slots held by all groups and the number and summed weight of the groups with
# work (their settings by the primary key): rows for the groups shown, and two of totals.
BUSIEST_GROUPS = f"""
WITH c(group_name, pool, state, n) AS MATERIALIZED ({COUNT_UNFINISHED}),
ranked AS (
    SELECT group_name FROM c GROUP BY group_name
    ORDER BY sum(CASE WHEN state = 'ready' THEN n ELSE 0 END) DESC,
             sum(CASE WHEN state IN ('admitted', 'running') THEN n ELSE 0 END) DESC,
             group_name COLLATE \"C\"
    LIMIT %(limit)s),
busy AS (SELECT DISTINCT group_name FROM c WHERE state IN ('ready', 'admitted', 'running'))
SELECT 'row', group_name, pool, state, n, NULL::float8 FROM c
WHERE group_name IN (SELECT group_name FROM ranked)
UNION ALL
SELECT 'held', NULL, NULL, NULL, sum(n), NULL::float8 FROM c
WHERE state IN ('admitted', 'running')
UNION ALL
SELECT 'busy', NULL, NULL, NULL, count(*), sum(coalesce(g.weight, %(default_weight)s::float8))
FROM busy b LEFT JOIN corral_groups g ON g.name = b.group_name
"""
# Ready tasks per (pool, group) of some groups (or every group): the ready tasks' index.
COUNT_READY_GROUPS = """
SELECT pool, group_name, count(*) FROM corral_tasks
WHERE state = 'ready' AND (%(every)s OR group_name = ANY(%(groups)s))
GROUP BY pool, group_name
"""
# The oldest ready task's ready_at per pool: the ready tasks' partial index (the backlog, as the
# counts).
OLDEST_READY = "SELECT pool, min(ready_at) FROM corral_tasks WHERE state = 'ready' GROUP BY pool"
# Tasks first started since a moment, the latest first: their first attempts (corral_attempts_first
# on each day partition), each joined to its task by the primary key.
RECENT_STARTS = """
SELECT t.group_name, t.pool, a.started_at, a.started_at - t.enqueued_at
FROM corral_attempts a JOIN corral_tasks t ON t.id = a.task_id
WHERE a.attempt = 1 AND a.started_at >= %(since)s
ORDER BY a.started_at DESC LIMIT %(limit)s
"""
# A task's log lines before (attempt, id), the latest first (corral_logs_task).
LOG_PAGE = """
SELECT id, task_id, attempt, at, level, message FROM corral_logs
WHERE task_id = %(id)s AND (attempt, id) < (%(attempt)s, %(before)s)
ORDER BY attempt DESC, id DESC LIMIT %(limit)s
"""
# The dependency links of some tasks, as (task, the task it depends on) (the links' primary key).
EDGES = """
SELECT task_id, depends_on FROM corral_task_deps
WHERE task_id = ANY(%(ids)b::bigint[]) ORDER BY task_id, depends_on
"""
# Every configured group.
ALL_GROUPS = f"SELECT {GROUP_FIELDS} FROM corral_groups ORDER BY name"
# A task whose name does not start with the prefix: a scan that stops at the first one (a
# prefix is no index range under every collation; only the demo asks, and it runs on SQLite).
NAME_OUTSIDE = """
SELECT name FROM corral_tasks WHERE NOT starts_with(name, %(prefix)s) LIMIT 1
"""

# The newest event's id (0: none): the primary key's last entry in each day's partition.
EVENT_HEAD = "SELECT coalesce(max(id), 0) FROM corral_events"


def encode_list(values: list[str]) -> list[str]:
    """A list parameter: an array."""
    return values


def encode_ids(values: list[int]) -> list[int]:
    """A list of ids: an array."""
    return values
