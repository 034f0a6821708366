"""The reads of the store contract: what the scheduler, workers and faces look up. None writes,
except that `dispatch_load` may first fold the leader's hints."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ...lifecycle import State
from ...model import (
    AttemptRecord,
    Bucket,
    DispatchHeads,
    DispatchLoad,
    Event,
    ExpiredTask,
    FeedEvent,
    GroupConfig,
    HeadsWanted,
    LogLine,
    Promotable,
    TaskQuery,
    TaskRecord,
    WorkflowStatus,
)
from ...ratelimit import RateLimit
from ...retention import Retention


class TaskReads(Protocol):
    def task_get(self, task_id: int) -> TaskRecord | None:
        """One task, or None."""
        ...

    def task_list(self, query: TaskQuery) -> list[TaskRecord]:
        """Tasks matching the query, newest first."""
        ...

    def task_states(self, task_ids: Sequence[int]) -> dict[int, State]:
        """The current state of each existing task among `task_ids`."""
        ...

    def task_next_due(self) -> float | None:
        """The earliest run_at of waiting and retry_wait tasks (an index lookup): when the
        resolver next has work, so an idle scheduler knows how long it may sleep."""
        ...

    def task_fetch_promotable(self, now: float, limit: int) -> list[Promotable]:
        """Ready tasks whose promote_at has come (index on promote_at: never a backlog scan)."""
        ...

    def task_fetch_expired(self, now: float, limit: int) -> list[ExpiredTask]:
        """Running tasks whose lease has expired (their worker is gone or stuck)."""
        ...

    def task_fetch_cancel_requests(self, worker_id: str) -> list[int]:
        """The worker's running tasks that were asked to cancel (a read: cheap to poll)."""
        ...

    def task_count_ahead(self, pool: str, level: int) -> int:
        """How many ready tasks of `pool` stand at a level above `level` (for `corral why`)."""
        ...

    def workflow_get(self, workflow_id: int) -> WorkflowStatus | None:
        """A workflow with its tasks counted by state (its own and those its steps were
        deduplicated onto, each once), in one consistent read; or None."""
        ...


class DispatchReads(Protocol):
    def dispatch_load(self, now: float, fold_hints: int = 0) -> DispatchLoad:
        """Live capacity per pool, slots held per pool and group, the groups an exclusive task
        holds, the settings of those groups and the defaults (one consistent read). With
        `fold_hints` (the leader), first `ready_groups_refresh(fold_hints)`, in the same round
        trip where the backend can."""
        ...

    def dispatch_heads(
        self, wants: Sequence[HeadsWanted], skip: Sequence[str], now: float
    ) -> DispatchHeads:
        """For each wanted pool, its best groups by head (index order, never a backlog scan)
        except those in `skip` and those whose own bucket is empty, with their first ready
        tasks; the settings, buckets and named rate limits these draw on."""
        ...

    def rate_limit_list(self) -> dict[str, RateLimit]:
        """The named rate limits."""
        ...

    def bucket_get_many(self, keys: Sequence[str]) -> dict[str, Bucket]:
        """The stored token buckets among `keys` (a missing one is full)."""
        ...

    def group_get(self, name: str) -> GroupConfig | None:
        """A configured group's settings."""
        ...

    def retention_get(self) -> Retention:
        """The retention configured: the default, and the task types that have their own."""
        ...


class HistoryReads(Protocol):
    def event_list(self, task_id: int) -> list[Event]:
        """A task's events, oldest first."""
        ...

    def event_fetch_after(self, after_id: int, limit: int) -> list[Event]:
        """Events with id > after_id, oldest first: the feed of callbacks and live views."""
        ...

    def event_fetch_unseen(self, name: str, limit: int) -> list[FeedEvent]:
        """Up to `limit` events after the consumer's cursor, in an order no later commit can
        change (SQLite: id; PostgreSQL: writing transaction then id, only transactions older
        than any that may still write an event)."""
        ...

    def attempt_list(self, task_id: int) -> list[AttemptRecord]:
        """A task's attempts, first first."""
        ...

    def log_list(self, task_id: int, attempt: int | None = None) -> list[LogLine]:
        """A task's stored log lines, oldest first."""
        ...


class Reads(TaskReads, DispatchReads, HistoryReads, Protocol):
    """Every read of the store."""
