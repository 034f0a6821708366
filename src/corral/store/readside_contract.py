"""The store's part of the read side: the reads behind corral.readside, one named statement each,
every one an index scan bounded by its page, its window or the unfinished tasks, never by all
of history. `Store` inherits it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..model import GroupConfig, TaskRecord
from ..read_model import (
    BusiestGroups,
    GroupCounts,
    PagedLog,
    PageQuery,
    RecentStart,
    StateCount,
)

READ_SIDE_METHODS = (
    "task_page", "task_count_unfinished", "task_recent_starts", "log_page", "group_list",
    "task_name_outside", "task_oldest_ready", "task_count_groups", "task_ready_counts",
    "task_edges",
    "event_head", "task_busiest_groups",
)  # fmt: skip
"""The methods below (reads: PostgreSQL retries them after a lost connection)."""


class ReadSide(Protocol):
    def task_page(self, query: PageQuery) -> list[TaskRecord]:
        """Up to `query.limit` tasks matching the filter after the keyset position, newest first
        in the query's order: one ordered index scan (type, group, workflow or state, with the
        id; the finished order: the finished index)."""
        ...

    def task_count_unfinished(self) -> list[StateCount]:
        """Unfinished tasks counted by group, pool and state (the (state, id) index over the
        unfinished states: the cost follows the backlog, never the history)."""
        ...

    def task_count_groups(self, limit: int | None) -> GroupCounts:
        """The unfinished tasks by pool and state, and by group for the top `limit` groups
        (None: every group), ranked in the database: one statement over the unfinished states'
        partial indexes, returning rows for the pools and the groups shown only, so the caller's
        cost does not follow the number of groups."""
        ...

    def task_busiest_groups(self, limit: int, default_weight: float) -> BusiestGroups:
        """The unfinished tasks by group, pool and state of the `limit` busiest groups, ranked
        in the database (a group named `other` included), with the slots every group holds and
        the number and summed weight (`default_weight` where a group has no settings) of the
        groups with work: one statement over the unfinished states' partial indexes, whose
        answer does not grow with the number of groups."""
        ...

    def task_ready_counts(self, groups: Sequence[str] | None) -> dict[tuple[str, str], int]:
        """Ready tasks per (pool, group) of the groups named (None: every group), from the
        ready tasks' partial index."""
        ...

    def task_oldest_ready(self) -> dict[str, float]:
        """Per pool with ready tasks, the earliest ready_at among them (the ready tasks' partial
        index: the cost follows the ready backlog)."""
        ...

    def task_recent_starts(self, since: float, limit: int) -> list[RecentStart]:
        """Up to `limit` tasks that first started at or after `since`, the latest first (the
        index on the first start)."""
        ...

    def log_page(self, task_id: int, before: tuple[int, int] | None, limit: int) -> list[PagedLog]:
        """A task's log lines before the position (attempt, id), the latest first, at most
        `limit` (its (task, attempt, id) index)."""
        ...

    def task_edges(self, task_ids: Sequence[int]) -> list[tuple[int, int]]:
        """The dependency links of the tasks named, as (task, the task it depends on), by task
        (the links' primary key: the cost follows the tasks named)."""
        ...

    def group_list(self) -> list[GroupConfig]:
        """Every configured group, the defaults ('*') among them."""
        ...

    def task_name_outside(self, prefix: str) -> str | None:
        """The name of a task whose type does not start with `prefix`, if there is one (two
        probes of the (name, id) index)."""
        ...

    def event_head(self) -> int:
        """The newest event's id, 0 if there is none (one probe of the primary key): where a
        live view that shows only what comes next starts reading."""
        ...
