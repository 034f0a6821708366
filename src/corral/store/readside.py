"""The read side's store methods (store/readside_contract.py), once for both backends: each runs
its backend's named statement (`read_queries.X`) and shapes the rows the same way."""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

from ..lifecycle import State
from ..limits import ID_MAX, MAX_TIME
from ..model import GroupConfig, LogLine, TaskRecord
from ..read_model import BusiestGroups, GroupCounts, PagedLog, PageQuery, RecentStart, StateCount
from ..scopes import sql_params as scope_params
from .rows import group_config, task_record


class ReadSideReads:
    read_queries: ModuleType
    """The backend's module of the read side's named statements."""

    def _read(self, query: str, params: Any = None) -> list[Any]:
        raise NotImplementedError

    def task_page(self, query: PageQuery) -> list[TaskRecord]:
        rq, f = self.read_queries, query.filter
        params: dict[str, Any] = {
            "states": rq.encode_list([str(s) for s in f.states]) if f.states else None,
            "name": f.name,
            "group_name": f.group,
            "workflow_id": f.workflow_id,
            "pool": f.pool,
            "schedule": f.schedule,
            "created_from": f.created_from,
            "created_until": f.created_until,
            "finished_from": f.finished_from,
            "finished_until": f.finished_until,
            "after_id": ID_MAX if query.after_id is None else query.after_id,
            "after_key": MAX_TIME + 1 if query.after_key is None else query.after_key,
            "limit": query.limit,
        }
        params |= {f"want_{s}": s in f.states for s in State}
        every, names, prefixes = scope_params(f.scope)
        params |= {
            "scope_all": every,
            "scope_names": rq.encode_list(names),
            "scope_prefixes": rq.encode_list(prefixes),
        }
        return [task_record(row) for row in self._read(_page_statement(rq, query), params)]

    def task_count_unfinished(self) -> list[StateCount]:
        rows = self._read(self.read_queries.COUNT_UNFINISHED)
        return [StateCount(group, pool, State(state), int(n)) for group, pool, state, n in rows]

    def task_count_groups(self, limit: int | None) -> GroupCounts:
        params = {"limit": 2**62 if limit is None else limit}
        by_pool: dict[tuple[str, State], int] = {}
        groups: list[StateCount] = []
        backlogged = 0
        for group, pool, state, n in self._read(self.read_queries.COUNT_TOP_GROUPS, params):
            if pool is None:
                backlogged = int(n)
            elif group is None:
                by_pool[(pool, State(state))] = int(n)
            else:
                groups.append(StateCount(group, pool, State(state), int(n)))
        return GroupCounts(by_pool, groups, backlogged)

    def task_busiest_groups(self, limit: int, default_weight: float) -> BusiestGroups:
        params = {"limit": limit, "default_weight": default_weight}
        groups: list[StateCount] = []
        held = busy = 0
        weight = 0.0
        for kind, group, pool, state, n, w in self._read(self.read_queries.BUSIEST_GROUPS, params):
            if kind == "row":
                groups.append(StateCount(group, pool, State(state), int(n)))
            elif kind == "held":
                held = int(n or 0)
            else:
                busy, weight = int(n or 0), float(w or 0.0)
        return BusiestGroups(groups, held, busy, weight)

    def task_ready_counts(self, groups: Sequence[str] | None) -> dict[tuple[str, str], int]:
        rq = self.read_queries
        params = {"every": groups is None, "groups": rq.encode_list(list(groups or ()))}
        rows = self._read(rq.COUNT_READY_GROUPS, params)
        return {(str(pool), str(group)): int(n) for pool, group, n in rows}

    def task_oldest_ready(self) -> dict[str, float]:
        rows = self._read(self.read_queries.OLDEST_READY)
        return {str(pool): float(at) for pool, at in rows if at is not None}

    def task_recent_starts(self, since: float, limit: int) -> list[RecentStart]:
        rows = self._read(self.read_queries.RECENT_STARTS, {"since": since, "limit": limit})
        return [RecentStart(g, p, float(at), float(wait)) for g, p, at, wait in rows]

    def log_page(self, task_id: int, before: tuple[int, int] | None, limit: int) -> list[PagedLog]:
        attempt, before_id = before if before is not None else (2**31 - 1, ID_MAX)
        params = {"id": task_id, "attempt": attempt, "before": before_id, "limit": limit}
        rows = self._read(self.read_queries.LOG_PAGE, params)
        return [PagedLog(row[0], LogLine(*row[1:])) for row in rows]

    def task_edges(self, task_ids: Sequence[int]) -> list[tuple[int, int]]:
        rq = self.read_queries
        rows = self._read(rq.EDGES, {"ids": rq.encode_ids([int(i) for i in task_ids])})
        return [(int(a), int(b)) for a, b in rows]

    def group_list(self) -> list[GroupConfig]:
        return [group_config(row) for row in self._read(self.read_queries.ALL_GROUPS)]

    def task_name_outside(self, prefix: str) -> str | None:
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1) if prefix else ""
        rows = self._read(self.read_queries.NAME_OUTSIDE, {"prefix": prefix, "prefix_end": end})
        return str(rows[0][0]) if rows else None

    def event_head(self) -> int:
        return int(self._read(self.read_queries.EVENT_HEAD)[0][0])


def _page_statement(rq: ModuleType, query: PageQuery) -> str:
    """The statement whose index drives the page: the finished order has one; else the
    narrowest filter an index serves (a workflow; a schedule; unfinished states, which the
    backlog bounds; a group; a type; any states), else the primary key."""
    f = query.filter
    if query.order == "finished":
        return str(rq.PAGE_BY_FINISHED)
    if f.workflow_id is not None:
        return str(rq.PAGE_BY_WORKFLOW)
    if f.schedule is not None:
        return str(rq.PAGE_BY_SCHEDULE)
    if f.states and not any(s in rq.TERMINAL for s in f.states):
        return str(rq.PAGE_BY_STATE)
    if f.group is not None:
        return str(rq.PAGE_BY_GROUP)
    if f.name is not None:
        return str(rq.PAGE_BY_NAME)
    if f.states:
        return str(rq.PAGE_BY_STATE)
    return str(rq.PAGE_BY_ID)
