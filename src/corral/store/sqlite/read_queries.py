"""The read side's SQL on SQLite (corral.readside), named; each statement says which index it
walks. A page is one statement: an index scan in the page's order that stops at its LIMIT; the
other filters are checked on the rows that scan gives (`RESIDUAL`)."""

from __future__ import annotations

import json

from ...lifecycle import TERMINAL, State
from ...moves import ENDED_SQL, TERMINAL_SQL
from ..rows import GROUP_FIELDS
from .queries import TASK_COLUMNS

UNFINISHED = tuple(s for s in State if s not in TERMINAL)
UNFINISHED_SQL = "(" + ", ".join(f"'{s}'" for s in UNFINISHED) + ")"

RESIDUAL = """
  AND (:states IS NULL OR +t.state IN (SELECT value FROM json_each(:states)))
  AND (:name IS NULL OR +t.name = :name)
  AND (:group_name IS NULL OR +t.group_name = :group_name)
  AND (:workflow_id IS NULL OR +t.workflow_id = :workflow_id)
  AND (:pool IS NULL OR +t.pool = :pool)
  AND (:schedule IS NULL OR +t.schedule_name = :schedule)
  AND (:created_from IS NULL OR +t.created_at >= :created_from)
  AND (:created_until IS NULL OR +t.created_at < :created_until)
  AND (:finished_from IS NULL OR +t.finished_at >= :finished_from)
  AND (:finished_until IS NULL OR +t.finished_at < :finished_until)
  AND (:scope_all OR +t.group_name IN (SELECT value FROM json_each(:scope_names))
       OR EXISTS (SELECT 1 FROM json_each(:scope_prefixes) p
                  WHERE substr(t.group_name, 1, length(p.value)) = p.value))"""
"""The filters, each a no-op when its parameter is NULL; the unary + keeps them from being
taken for the index constraint (the page's own index drives the scan, in its order)."""


STATE_INDEX: dict[State, str] = {
    State.WAITING: "corral_tasks_waiting",
    State.READY: "corral_tasks_group_ready",
    State.ADMITTED: "corral_tasks_admitted",
    State.RUNNING: "corral_tasks_lease",
    State.RETRY_WAIT: "corral_tasks_retry",
    **dict.fromkeys(TERMINAL, "corral_tasks_ended_state"),
}
"""The index holding a state's tasks: each unfinished state's partial index of the hot path (its
rows are the backlog in that state), and the ended tasks' (state, id)."""


def _branch(index: str, where: str, gate: str | None = None) -> str:
    """One ordered part of a page, stopped at the LIMIT; `gate` (a parameter) skips it before its
    scan starts."""
    gated = "" if gate is None else f" AND {gate}"
    return (
        f"SELECT * FROM (SELECT {TASK_COLUMNS} FROM corral_tasks t INDEXED BY {index}"
        f"\nWHERE {where}{gated} AND t.id < :after_id{RESIDUAL}"
        "\nORDER BY t.id DESC LIMIT :limit)"
    )


def _state_is(state: State) -> str:
    """A branch's state, worded so that the ended tasks' partial index is seen to hold it."""
    if state in TERMINAL:
        return f"{ENDED_SQL} AND t.state IN {TERMINAL_SQL} AND t.state = '{state}'"
    return f"t.state = '{state}'"


def _merged(branches: list[str]) -> str:
    return (
        "SELECT * FROM (\n" + "\nUNION ALL\n".join(branches) + "\n) ORDER BY id DESC LIMIT :limit"
    )


def _by_ended_index(index: str, driving: str) -> str:
    """The ended tasks of one type or group by their index, merged with the unfinished ones of
    each state (the backlog)."""
    ended = _branch(index, f"{ENDED_SQL} AND t.state IN {TERMINAL_SQL} AND {driving}")
    unfinished = [_branch(STATE_INDEX[s], f"t.state = '{s}' AND {driving}") for s in UNFINISHED]
    return _merged([ended, *unfinished])


# Newest first by id, walking the primary key (no filter that an index serves).
PAGE_BY_ID = f"""
SELECT {TASK_COLUMNS} FROM corral_tasks t
WHERE t.id < :after_id{RESIDUAL}
ORDER BY t.id DESC LIMIT :limit
"""
# One task type, newest first: the ended ones by corral_tasks_ended_name, the unfinished ones by
# their states' indexes.
PAGE_BY_NAME = _by_ended_index("corral_tasks_ended_name", "t.name = :name")
# One group, newest first: the ended ones by corral_tasks_ended_group, the unfinished ones by
# their states' indexes.
PAGE_BY_GROUP = _by_ended_index("corral_tasks_ended_group", "t.group_name = :group_name")
# One workflow, newest first (corral_tasks_workflow).
PAGE_BY_WORKFLOW = f"""
SELECT {TASK_COLUMNS} FROM corral_tasks t INDEXED BY corral_tasks_workflow
WHERE t.workflow_id = :workflow_id AND t.id < :after_id{RESIDUAL}
ORDER BY t.id DESC LIMIT :limit
"""
# The tasks of one schedule's fires, newest first (corral_tasks_schedule).
PAGE_BY_SCHEDULE = f"""
SELECT {TASK_COLUMNS} FROM corral_tasks t INDEXED BY corral_tasks_schedule
WHERE t.schedule_name = :schedule AND t.id < :after_id{RESIDUAL}
ORDER BY t.id DESC LIMIT :limit
"""
# Some states, newest first: per state its index (STATE_INDEX), stopped at the LIMIT (a state not
# asked for is skipped before its scan starts), then the branches merged.
PAGE_BY_STATE = _merged([_branch(STATE_INDEX[s], _state_is(s), f":want_{s}") for s in State])
# Ended tasks by when they ended, newest first (corral_tasks_finished: (finished_at, rowid)).
PAGE_BY_FINISHED = f"""
SELECT {TASK_COLUMNS} FROM corral_tasks t INDEXED BY corral_tasks_finished
WHERE {ENDED_SQL} AND t.state IN {TERMINAL_SQL} AND t.finished_at <= :after_key
  AND (t.finished_at < :after_key OR t.id < :after_id){RESIDUAL}
ORDER BY t.finished_at DESC, t.id DESC LIMIT :limit
"""
# Unfinished tasks by group, pool and state: per state, its partial index (the backlog); the
# state is written as a constant, so a partial index that holds group and pool covers the count.
COUNT_UNFINISHED = "\nUNION ALL\n".join(
    f"SELECT group_name, pool, '{s}', count(*) FROM corral_tasks INDEXED BY {STATE_INDEX[s]}"
    f" WHERE state = '{s}' GROUP BY group_name, pool"
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
             group_name
    LIMIT :limit)
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
             group_name
    LIMIT :limit),
busy AS (SELECT DISTINCT group_name FROM c WHERE state IN ('ready', 'admitted', 'running'))
SELECT 'row', group_name, pool, state, n, NULL FROM c
WHERE group_name IN (SELECT group_name FROM ranked)
UNION ALL
SELECT 'held', NULL, NULL, NULL, sum(n), NULL FROM c WHERE state IN ('admitted', 'running')
UNION ALL
SELECT 'busy', NULL, NULL, NULL, count(*), sum(coalesce(g.weight, :default_weight))
FROM busy b LEFT JOIN corral_groups g ON g.name = b.group_name
"""
# Ready tasks per (pool, group) of some groups (or every group): the ready tasks' index.
COUNT_READY_GROUPS = """
SELECT pool, group_name, count(*) FROM corral_tasks INDEXED BY corral_tasks_group_ready
WHERE state = 'ready' AND (:every OR group_name IN (SELECT value FROM json_each(:groups)))
GROUP BY pool, group_name
"""
# The oldest ready task's ready_at per pool: the ready tasks' partial index (the backlog, as the
# counts).
OLDEST_READY = (
    "SELECT pool, min(ready_at) FROM corral_tasks INDEXED BY corral_tasks_group_ready"
    " WHERE state = 'ready' GROUP BY pool"
)
# Tasks first started since a moment, the latest first: their first attempts
# (corral_attempts_first), each joined to its task by the primary key.
RECENT_STARTS = """
SELECT t.group_name, t.pool, a.started_at, a.started_at - t.enqueued_at
FROM corral_attempts a INDEXED BY corral_attempts_first JOIN corral_tasks t ON t.id = a.task_id
WHERE a.attempt = 1 AND a.started_at >= :since
ORDER BY a.started_at DESC LIMIT :limit
"""
# A task's log lines before (attempt, id), the latest first (corral_logs_task).
LOG_PAGE = """
SELECT id, task_id, attempt, at, level, message FROM corral_logs
WHERE task_id = :id AND (attempt < :attempt OR (attempt = :attempt AND id < :before))
ORDER BY attempt DESC, id DESC LIMIT :limit
"""
# The dependency links of some tasks, as (task, the task it depends on) (the links' primary key).
EDGES = """
SELECT task_id, depends_on FROM corral_task_deps
WHERE task_id IN (SELECT value FROM json_each(:ids)) ORDER BY task_id, depends_on
"""
# Every configured group.
ALL_GROUPS = f"SELECT {GROUP_FIELDS} FROM corral_groups ORDER BY name"
# A task whose name sorts before the prefix, or at or after its end: a scan that stops at the
# first one (only the demo asks, of its own small database).
NAME_OUTSIDE = """
SELECT name FROM (
    SELECT name FROM (SELECT name FROM corral_tasks WHERE name < :prefix LIMIT 1)
    UNION ALL
    SELECT name FROM (SELECT name FROM corral_tasks WHERE name >= :prefix_end LIMIT 1)
) LIMIT 1
"""

# The newest event's id (0: none): one probe of the primary key, where a live view starts.
EVENT_HEAD = "SELECT coalesce(max(id), 0) FROM corral_events"


def encode_list(values: list[str]) -> str:
    """A list parameter, as json_each reads it."""
    return json.dumps(values)


def encode_ids(values: list[int]) -> str:
    """A list of ids, as json_each reads it."""
    return json.dumps(values)
