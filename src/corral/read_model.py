"""The records of the read side: what a face asks for (a filter, a page) and what it gets back
(pages of tasks, one task in detail, figures per group and per pool). Plain data, no I/O: the
store reads rows into the first few, `corral.readside` builds the rest."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .lifecycle import State
from .model import AttemptRecord, CleanupRecord, Event, LogLine, TaskRecord, WorkflowStatus

Order = Literal["created", "finished"]
"""A task list's order, newest first: by creation (the id), or by when the task ended."""


@dataclass(frozen=True)
class TaskFilter:
    """Which tasks a list shows; every field left out matches all. Times are UNIX seconds, a
    range includes its start and excludes its end."""

    states: tuple[State, ...] = ()
    name: str | None = None
    """The task type."""
    group: str | None = None
    workflow_id: int | None = None
    pool: str | None = None
    created_from: float | None = None
    created_until: float | None = None
    finished_from: float | None = None
    finished_until: float | None = None
    scope: tuple[str, ...] = ()
    """The groups a caller may see (a scoped API token's): names, or prefixes ending in '*';
    () sees every group. Unlike `group`, a bound the caller can't lift."""
    schedule: str | None = None
    """The schedule whose fires made the tasks."""


@dataclass(frozen=True)
class PageQuery:
    """One page as the store reads it: the rows after a keyset position, in `order`."""

    filter: TaskFilter
    order: Order
    after_key: float | None
    """The last row's sort key (its finished_at in the `finished` order; unused by `created`)."""
    after_id: int | None
    """The last row's id; None: the first page."""
    limit: int


@dataclass(frozen=True)
class StateCount:
    """How many unfinished tasks of a group and pool stand in a state."""

    group: str
    pool: str
    state: State
    count: int


@dataclass(frozen=True)
class GroupCounts:
    """The unfinished tasks counted for the cluster figures, bounded by the groups shown: per
    pool and state (every group), per group, pool and state for the top groups only (by ready
    tasks, then admitted and running, then name; a group named `other` never among them), and
    how many groups have ready tasks."""

    by_pool: dict[tuple[str, State], int]
    groups: list[StateCount]
    backlogged: int


@dataclass(frozen=True)
class BusiestGroups:
    """The unfinished tasks of the busiest groups (by ready tasks, then admitted and running,
    then name), and what the shares of every group need: the slots held by all, and how many
    groups have work and their summed weight."""

    groups: list[StateCount]
    held: int
    busy: int
    busy_weight: float


@dataclass(frozen=True)
class RecentStart:
    """A task that first started within the window: where it ran and how long it waited."""

    group: str
    pool: str
    started_at: float
    wait: float


@dataclass(frozen=True)
class PagedLog:
    """A stored log line with its id, the key that pages a task's logs."""

    id: int
    line: LogLine


@dataclass(frozen=True)
class TaskPage:
    tasks: list[TaskRecord]
    next: str | None
    """The cursor of the next page (opaque: pass it back as `after`), or None at the end."""


@dataclass(frozen=True)
class TaskDetail:
    task: TaskRecord
    attempts: list[AttemptRecord]
    events: list[Event]
    logs: list[LogLine]
    """The most recent log lines, oldest first."""
    older_logs: str | None
    """The cursor of the log lines before these, or None if there are none."""
    cleanups: list[CleanupRecord] = field(default_factory=list)
    """Each failed attempt's clean-up and its outcome (corral.cleanup), by attempt."""


@dataclass(frozen=True)
class Waits:
    """Queue waits (ready to first start) of the tasks started in a recent window."""

    started: int
    mean: float | None
    p95: float | None
    max: float | None
    p50: float | None = None
    """The median (nearest rank)."""


class _Counted:
    """The figures read off unfinished tasks by state, for groups and pools alike."""

    counts: dict[str, int]

    @property
    def ready(self) -> int:
        return self.counts.get("ready", 0)

    @property
    def active(self) -> int:
        """Tasks holding a slot: admitted or running."""
        return self.counts.get("admitted", 0) + self.counts.get("running", 0)


@dataclass(frozen=True)
class GroupFigures(_Counted):
    """A group now: its unfinished tasks by state, its settings, its share of the slots held and
    of the weight of the groups with work, and its recent queue waits."""

    group: str
    counts: dict[str, int]
    """Unfinished tasks by state (waiting, ready, admitted, running, retry_wait)."""
    max_parallel: int | None
    weight: float
    rate_limit: str | None
    share: float
    """Its fraction of the slots held now (admitted + running) across all groups."""
    fair_share: float
    """Its weight over the weights of the groups with ready or held tasks (0 if it has none)."""
    waits: Waits


@dataclass(frozen=True)
class PoolFigures(_Counted):
    """A pool now: its unfinished tasks by state, the slots its live workers offer, and its
    recent queue waits."""

    pool: str
    counts: dict[str, int]
    workers: int
    capacity: int
    waits: Waits


@dataclass(frozen=True)
class WorkflowGraph:
    """A workflow with its own tasks (newest first, at most the limit read) and the dependency
    edges among them, (task id, the id it depends on): what a DAG view draws."""

    status: WorkflowStatus
    tasks: list[TaskRecord]
    edges: list[tuple[int, int]]
    truncated: bool
    """More tasks than the limit: the graph shows the newest only."""
