"""Row shaping shared by the SQLite and PostgreSQL stores: what a new task's row holds, and how
rows become records. Pure; no SQL."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import fields, replace
from typing import Any

from .. import aging
from ..cleanup import FAILED_EVENT, SUCCEEDED_EVENT
from ..codec import dumps
from ..errors import ConfigError
from ..lifecycle import State
from ..model import (
    DEFAULTS_GROUP,
    Bucket,
    ClaimedCleanup,
    ClaimedTask,
    DispatchLoad,
    GroupConfig,
    HeadsWanted,
    NewTask,
    ReadyTask,
    Submitted,
    TaskRecord,
)
from ..ratelimit import RateLimit, buckets_of

NO_AGING = dumps(aging.none.to_json())
"""How a task without ageing stores its ageing function; such a task never needs promoting."""


ROW_FIELDS = (
    "id", "name", "pool", "group_name", "state", "priority", "level", "aging", "promote_at",
    "args", "kwargs", "dedup_key", "max_retries", "backoff", "max_runtime", "on_timeout", "now",
    "enqueued_at", "run_at", "ready_at", "rank", "exclusive", "rate_key", "workflow_id",
    "on_upstream_failure", "deps_left", "quarantine_after", "cleanup", "logical_time",
    "data_start", "trace_context", "schedule_name",
)  # fmt: skip
"""The values of a new task's row, in the order `new_task_values` gives them (`now` is its
created_at): the stores' bulk inserts list their columns in this order."""
STATE_AT = ROW_FIELDS.index("state")
POOL_AT = ROW_FIELDS.index("pool")
GROUP_AT = ROW_FIELDS.index("group_name")
_READY, _WAITING = str(State.READY), str(State.WAITING)


def new_task_values(
    task: NewTask, task_id: int, now: float, deps: int | None = None
) -> tuple[Any, ...]:
    """The row of a task submitted at `now`, as values in ROW_FIELDS order: waiting if it has
    dependencies or a delay, else ready at once. `deps`: how many distinct tasks it depends on
    (default: `depends_on`'s). A tuple, not a dict: a bulk insert binds it as it is."""
    enqueued = max(now, task.run_at or now)
    deps_left = len(set(task.depends_on)) if deps is None else deps
    waiting = deps_left > 0 or enqueued > now
    return (
        task_id, task.name, task.pool, task.group, _WAITING if waiting else _READY,
        task.priority, task.level, task.aging, None if waiting else task.promote_at, task.args,
        task.kwargs, task.dedup_key, task.max_retries, task.backoff, task.max_runtime,
        task.on_timeout, now, enqueued, enqueued, None if waiting else now, task.rank,
        task.exclusive, task.rate_key, task.workflow_id, task.on_upstream_failure, deps_left,
        task.quarantine_after, task.cleanup, task.logical_time, task.data_start,
        task.trace_context, task.schedule_name,
    )  # fmt: skip


def new_task_row(
    task: NewTask, task_id: int, now: float, deps: int | None = None
) -> dict[str, Any]:
    """`new_task_values` by name (ROW_FIELDS), as the named statements take it."""
    return dict(zip(ROW_FIELDS, new_task_values(task, task_id, now, deps), strict=True))


def submitted_again(
    submit_id: str, recorded: Sequence[Any], count: int, workflow: bool = True
) -> tuple[int, list[Submitted]]:
    """What a submit call under a recorded `submit_id` returns: the workflow and the tasks that
    the first call under it stored, as found (not created). `recorded`: (task ids, workflow id)."""
    task_ids, workflow_id = recorded
    if len(task_ids) != count or (workflow_id is None) == workflow:
        what = "a workflow" if workflow_id is not None else "a submit"
        raise ConfigError(
            f"submit_id {submit_id!r} names {what} of {len(task_ids)} tasks already stored; "
            "give each submit call an id of its own"
        )
    return int(workflow_id or 0), [Submitted(int(i), created=False) for i in task_ids]


def batch_edges(tasks: Sequence[NewTask], ids: Sequence[int]) -> list[list[int]]:
    """Each task's distinct dependencies as ids: its `depends_on`, and its `after` positions
    mapped to the ids the batch gave them (`ids[i]`: the id task i got)."""
    edges: list[list[int]] = []
    for task in tasks:
        deps = dict.fromkeys(task.depends_on)
        deps.update(dict.fromkeys(ids[position] for position in task.after))
        edges.append(list(deps))
    return edges


def deduplicated_onto(results: Sequence[Submitted]) -> list[int]:
    """The tasks of a batch's results that the batch did not create (their dedup key was held by
    an unfinished task before it): what a workflow relies on beside its own tasks."""
    created = {r.id for r in results if r.created}
    return sorted({r.id for r in results if not r.created and r.id not in created})


def task_record(row: Sequence[Any], deps: tuple[int, ...] = ()) -> TaskRecord:
    """A TaskRecord from a row of the stores' TASK_COLUMNS."""
    values = list(row)
    values[4] = State(values[4])
    values[23] = bool(values[23])
    values[29] = bool(values[29])
    values[34] = bool(values[34])  # suspect
    record = TaskRecord(*values)
    return replace(record, depends_on=deps) if deps else record


_CLAIMED_FIELDS = tuple(f.name for f in fields(ClaimedTask))
_new = object.__new__


def claimed_task(row: Sequence[Any]) -> ClaimedTask:
    """A ClaimedTask from a row of the stores' CLAIM: its fields in order (`isolated` is the
    task's suspect flag, 0/1 on SQLite), then admitted_at (the claim order only).

    Built without the frozen dataclass's __init__, which sets each of its 22 fields through
    object.__setattr__: that was half this function's cost, and a claim builds one a task. The
    record is the same (equal, hashable, frozen)."""
    task = _new(ClaimedTask)
    values = dict(zip(_CLAIMED_FIELDS, row, strict=False))
    values["isolated"] = bool(values["isolated"])
    task.__dict__.update(values)
    return task


GROUP_FIELDS = "name, max_parallel, weight, rate_limit, per_second, burst"
"""The columns of a group's settings, in the order `group_config` reads them."""


def group_config(row: Sequence[Any]) -> GroupConfig:
    """A GroupConfig from a row of GROUP_FIELDS."""
    name, cap, weight, spec, per_second, burst = row
    rate = None if spec is None else RateLimit(spec, float(per_second), float(burst))
    return GroupConfig(name, cap, float(weight), rate)


def consumer_position(
    name: str, holder: str, position: tuple[int, int], now: float
) -> dict[str, Any]:
    """The parameters that move an event consumer's cursor to (transaction id, event id)."""
    return {"name": name, "holder": holder, "xid": position[0], "event_id": position[1], "now": now}


def rate_params(rate: RateLimit | None) -> dict[str, Any]:
    """The columns that store a rate limit (all NULL for none)."""
    if rate is None:
        return {"rate_limit": None, "per_second": None, "burst": None}
    return {"rate_limit": rate.spec, "per_second": rate.per_second, "burst": rate.burst}


def load_from_rows(
    capacity: dict[str, int],
    active: Iterable[Sequence[Any]],
    groups: dict[str, GroupConfig],
    paused: Iterable[str] = (),
) -> DispatchLoad:
    """A DispatchLoad from capacity per pool, rows of (group, pool, count, exclusive held), the
    settings of those groups (with the defaults under '*') and the paused groups' names."""
    by_pool: dict[str, int] = {}
    by_group: dict[str, int] = {}
    exclusive: set[str] = set()
    for group, pool, count, held_exclusive in active:
        by_pool[pool] = by_pool.get(pool, 0) + count
        by_group[group] = by_group.get(group, 0) + count
        if held_exclusive:
            exclusive.add(group)
    defaults = groups.pop(DEFAULTS_GROUP, None) or GroupConfig(DEFAULTS_GROUP)
    return DispatchLoad(
        capacity, by_pool, by_group, frozenset(exclusive), groups, defaults, frozenset(paused)
    )


def heads_per_group(want: HeadsWanted, found: int) -> int:
    """How many ready tasks to read of each of the `found` best groups of a pool."""
    return max(1, math.ceil(want.tasks / max(found, 1)))


def heads_from_rows(rows: Iterable[Sequence[Any]]) -> tuple[list[ReadyTask], frozenset[Any]]:
    """Ready tasks from rows of (id, pool, group, level, ready_at, rank, exclusive, rate_key,
    per), where up to per + 1 rows were read of each group: the extra one only says the group
    has more, and is dropped."""
    by_group: dict[tuple[str, str], list[ReadyTask]] = {}
    per_of: dict[tuple[str, str], int] = {}
    for task_id, pool, group, level, ready_at, rank, exclusive, rate_key, per in rows:
        task = ReadyTask(task_id, pool, group, level, ready_at, rank, bool(exclusive), rate_key)
        by_group.setdefault((pool, group), []).append(task)
        per_of[(pool, group)] = per
    ready: list[ReadyTask] = []
    more: set[tuple[str, str]] = set()
    for key, tasks in by_group.items():
        tasks.sort(key=lambda t: (-t.level, -t.rank, t.ready_at, t.id))
        if len(tasks) > per_of[key]:
            more.add(key)
            tasks = tasks[: per_of[key]]
        ready.extend(tasks)
    return ready, frozenset(more)


def bucket_keys(ready: Iterable[ReadyTask]) -> list[str]:
    """The token buckets that these tasks' groups and named rate limits keep."""
    return sorted({key for task in ready for key in buckets_of(task.group, task.rate_key)})


def buckets_from_rows(rows: Iterable[Sequence[Any]]) -> dict[str, Bucket]:
    return {row[0]: Bucket(row[0], *(float(v) for v in row[1:])) for row in rows}


def rate_limits_from_rows(rows: Iterable[Sequence[Any]]) -> dict[str, RateLimit]:
    """Named rate limits from rows of (key, rate_limit, per_second, burst)."""
    return {key: RateLimit(spec, float(rate), float(burst)) for key, spec, rate, burst in rows}


def claimed_cleanup(row: Sequence[Any], task: Sequence[Any] | None) -> ClaimedCleanup:
    """A claimed clean-up from its row (id, task_id, task_name, attempt, reason, shared, tries)
    and its task's (group_name, args, kwargs, dedup_key), if the task is still stored."""
    group, args, kwargs, dedup_key = task if task is not None else ("", "[]", "{}", None)
    return ClaimedCleanup(
        int(row[0]), int(row[1]), row[2], int(row[3]), row[4], row[5], int(row[6]),
        group, args, kwargs, dedup_key,
    )  # fmt: skip


def cleanup_end_event(
    state: str, error: str | None, now: float, ended: Sequence[Any]
) -> dict[str, Any]:
    """The event a clean-up's end writes: `cleanup_succeeded` or `cleanup_failed`, its detail
    the reason, the tries and the error (what an alert rule matches). `ended`: the ended row's
    task_id, attempt, reason, tries."""
    task_id, attempt, reason, tries = ended[:4]
    kind = SUCCEEDED_EVENT if state == "succeeded" else FAILED_EVENT
    detail = dumps({"reason": reason, "tries": tries, "error": error})
    return {"id": task_id, "now": now, "kind": kind, "attempt": attempt, "detail": detail}
