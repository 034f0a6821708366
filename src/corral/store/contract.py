"""The Store contract: every state change and read that corral makes, one method each.

Names read entity first, then verb, so the list follows the lifecycle. Every transition is one
transaction that checks the state (and attempt) it expects and writes its event row beside it.
`now` is always the caller's: a store never reads the clock, so tests move time instead of
sleeping. Callers take it from the one clock the store offers (`clock()`, see corral.clock).
A store knows SQL and nothing of scheduling: policies live in the scheduler and the
lifecycle module, and reach the store as decided values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from ..clock import Clock
from ..lifecycle import State
from ..model import (
    AttemptRecord,
    AttemptReport,
    Bucket,
    ClaimedTask,
    ConsumerRecord,
    DispatchHeads,
    DispatchLoad,
    Event,
    ExpiredTask,
    FeedEvent,
    GroupConfig,
    GroupStats,
    HeadsWanted,
    LevelChange,
    LogLine,
    NewTask,
    NewWorkflow,
    Promotable,
    Submitted,
    TaskQuery,
    TaskRecord,
    WorkerInfo,
    WorkerRecord,
    WorkflowStatus,
    WorkflowSubmitted,
)
from ..ratelimit import RateLimit
from ..retention import PrunePlan, Retention
from .readside_contract import ReadSide

SCHEDULER_CHANNEL = "scheduler"
"""Notices that the scheduler has work: tasks submitted or retried, slots freed."""
WORKERS_CHANNEL = "workers"
"""Notices for workers: `admitted:<pool>` and `cancel:<task id>`."""


class Listener(Protocol):
    def wait(self, timeout: float) -> list[tuple[str, str]]:
        """Block up to `timeout` seconds; return the (channel, payload) notices that arrived,
        or nothing on timeout. A store without notifications just sleeps (callers poll)."""
        ...

    def close(self) -> None: ...


class Store(ReadSide, Protocol):
    url: str
    notifies: bool
    """Whether `listen` delivers notices (PostgreSQL) or only sleeps (SQLite: poll)."""

    # -- schema ---------------------------------------------------------------------------------
    def migrate(self) -> list[int]:
        """Apply the numbered migrations not yet applied; return their numbers."""
        ...

    def check_schema(self) -> None:
        """Raise DatabaseError, saying to run `corral migrate`, if the schema is missing or old."""
        ...

    def close(self) -> None:
        """Release connections. The store may not be used afterwards."""
        ...

    def clock(self) -> Clock:
        """The clock every process on this store takes `now` from (one source): the host's on
        SQLite, the database server's on PostgreSQL."""
        ...

    # -- submit and read ------------------------------------------------------------------------
    def task_insert_many(
        self, tasks: Sequence[NewTask], now: float, conn: Any = None, submit_id: str | None = None
    ) -> list[Submitted]:
        """Insert all tasks in one transaction (waiting or ready), each with a `submitted` event;
        a dedup key held by an unfinished task returns that task instead. All or nothing. With
        `conn` (the caller's own connection of this backend, in a transaction), the insert joins
        the caller's transaction. `submit_id` names the call: the ids it stored are recorded under
        it in the same transaction, and a call under a recorded id returns those tasks (created
        False), whatever their state, instead of storing them again: a retry adds nothing."""
        ...

    def task_get(self, task_id: int) -> TaskRecord | None:
        """One task, or None."""
        ...

    def task_list(self, query: TaskQuery) -> list[TaskRecord]:
        """Tasks matching the query, newest first."""
        ...

    def task_states(self, task_ids: Sequence[int]) -> dict[int, State]:
        """The current state of each existing task among `task_ids`."""
        ...

    # -- resolver and promoter ------------------------------------------------------------------
    def task_release_due(self, now: float, limit: int) -> int:
        """waiting (run_at reached, every dependency succeeded) and retry_wait (backoff over) ->
        ready. Returns how many moved."""
        ...

    def task_fail_upstream(self, now: float, limit: int) -> int:
        """waiting with a dependency dead, cancelled or upstream_failed -> upstream_failed."""
        ...

    def task_next_due(self) -> float | None:
        """The earliest run_at of waiting and retry_wait tasks (an index lookup): when the
        resolver next has work, so an idle scheduler knows how long it may sleep."""
        ...

    def task_fetch_promotable(self, now: float, limit: int) -> list[Promotable]:
        """Ready tasks whose promote_at has come (index on promote_at: never a backlog scan)."""
        ...

    def task_set_levels(self, changes: Sequence[LevelChange]) -> int:
        """Set level and next promote_at of tasks still ready."""
        ...

    # -- dispatcher -----------------------------------------------------------------------------
    def ready_groups_refresh(self, limit: int) -> int:
        """Fold up to `limit` hints (left by every change to a group's ready tasks): look the
        hinted groups' heads up again and record them among the per-group heads, or drop the
        groups with no ready task left. Leader only. Returns how many groups were looked up."""
        ...

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

    def task_admit_many(
        self, task_ids: Sequence[int], now: float, buckets: Sequence[Bucket] = ()
    ) -> list[int]:
        """ready -> admitted, in the given order (which is the claim order), and store the token
        buckets as these admissions left them. Returns those moved."""
        ...

    def task_count_ahead(self, pool: str, level: int) -> int:
        """How many ready tasks of `pool` stand at a level above `level` (for `corral why`)."""
        ...

    # -- rate limits ----------------------------------------------------------------------------
    def rate_limit_configure(self, key: str, rate: RateLimit | None) -> None:
        """Create, replace or (None) remove the named rate limit `key`; its bucket starts full."""
        ...

    def rate_limit_list(self) -> dict[str, RateLimit]:
        """The named rate limits."""
        ...

    def bucket_get_many(self, keys: Sequence[str]) -> dict[str, Bucket]:
        """The stored token buckets among `keys` (a missing one is full)."""
        ...

    # -- worker ---------------------------------------------------------------------------------
    def task_claim(
        self,
        worker_id: str,
        pools: Sequence[str],
        limit: int,
        lease_until: float,
        now: float,
        may_take_suspect: bool = False,
    ) -> list[ClaimedTask]:
        """admitted -> running for up to `limit` tasks of `pools` in admission order; each gets a
        new attempt number, an attempt row and a lease held by `worker_id`. Suspects run alone
        (corral.isolation): with `may_take_suspect` (the worker runs nothing) and none of the
        worker's tasks running in the rows either, the oldest admitted suspect alone, its attempt
        isolated; otherwise only tasks that are not suspects, and none while the worker runs a
        suspect. One statement either way."""
        ...

    def task_drain_mark(
        self,
        worker_id: str,
        pools: Sequence[str],
        overdue_before: float,
        hold_until: float,
        now: float,
    ) -> int | None:
        """The suspect `worker_id` drains for (corral.isolation): take or renew, until
        `hold_until`, the drain mark of the oldest suspect of `pools` admitted at or before
        `overdue_before` whose mark is free, lapsed (before `now`) or already this worker's (that
        one first); its id, or None. One worker holds a suspect's mark. An indexed read of the
        admitted suspects, writing only when it finds one; never a scan of the backlog."""
        ...

    def task_complete_many(self, reports: Sequence[AttemptReport], now: float) -> list[int]:
        """running -> the report's target state, only where (id, attempt) is still running (and
        held by report.worker_id when given). Returns the ids recorded; a stale report is
        refused silently, so an outcome is recorded once."""
        ...

    def task_save_checkpoint(self, task_id: int, attempt: int, checkpoint: str, now: float) -> bool:
        """Store the checkpoint if `attempt` is still the running attempt."""
        ...

    def task_save_shared(self, task_id: int, attempt: int, shared: str, now: float) -> bool:
        """Store what the task records for its clean-up, if `attempt` still runs."""
        ...

    def task_record_event(
        self, task_id: int, attempt: int, kind: str, detail: str | None, now: float
    ) -> bool:
        """Record an event of `attempt` that changes no state (such as `gil_held`, a handler
        that held the GIL); False if there is no such task."""
        ...

    def log_append_many(self, lines: Sequence[LogLine]) -> None:
        """Store log lines of attempts."""
        ...

    # -- operators ------------------------------------------------------------------------------
    def task_cancel(self, task_id: int, now: float) -> tuple[State, State | None]:
        """Cancel: an unstarted task -> cancelled at once; a running one gets cancel_requested
        (its worker interrupts it). Returns (state before, state after or None if requested)."""
        ...

    def task_retry(self, task_id: int, now: float) -> State:
        """dead / cancelled / upstream_failed -> ready with a fresh retry budget. Returns the
        state it left."""
        ...

    # -- reaper ---------------------------------------------------------------------------------
    def task_fetch_expired(self, now: float, limit: int) -> list[ExpiredTask]:
        """Running tasks whose lease has expired (their worker is gone or stuck)."""
        ...

    # -- workers, leader, groups -----------------------------------------------------------------
    def worker_register(self, worker: WorkerInfo, lease_until: float, now: float) -> None:
        """Announce a worker and its capacity per pool."""
        ...

    def worker_heartbeat(self, worker_id: str, lease_until: float, now: float) -> list[int]:
        """Extend the worker's lease and that of its running tasks; return the ids of its running
        tasks that were asked to cancel."""
        ...

    def worker_deregister(self, worker_id: str) -> None:
        """Remove a worker that stopped cleanly."""
        ...

    def worker_list(self, now: float) -> list[WorkerRecord]:
        """Workers whose lease hasn't expired."""
        ...

    def leader_acquire(self, name: str, holder: str, lease_until: float, now: float) -> bool:
        """Take or extend the leadership `name` for `holder` if it is free, expired or already
        `holder`'s."""
        ...

    def leader_release(self, name: str, holder: str) -> None:
        """Give up the leadership if `holder` has it."""
        ...

    def group_configure(self, config: GroupConfig) -> None:
        """Create or replace a group's settings (the name '*' holds the defaults of groups never
        configured); takes effect at the next dispatch; the group's bucket starts full."""
        ...

    def group_get(self, name: str) -> GroupConfig | None:
        """A configured group's settings."""
        ...

    def listen(self, channels: Sequence[str]) -> Listener:
        """A listener on the named channels (SCHEDULER_CHANNEL, WORKERS_CHANNEL)."""
        ...

    # -- history ---------------------------------------------------------------------------------
    def event_list(self, task_id: int) -> list[Event]:
        """A task's events, oldest first."""
        ...

    def event_fetch_after(self, after_id: int, limit: int) -> list[Event]:
        """Events with id > after_id, oldest first: the feed of callbacks and live views."""
        ...

    def attempt_list(self, task_id: int) -> list[AttemptRecord]:
        """A task's attempts, first first."""
        ...

    def log_list(self, task_id: int, attempt: int | None = None) -> list[LogLine]:
        """A task's stored log lines, oldest first."""
        ...

    def group_stats(self) -> list[GroupStats]:
        """Per group: tasks by state, mean and max wait of started tasks, its settings."""
        ...

    # -- workflows ---------------------------------------------------------------------------------
    def workflow_insert(
        self,
        workflow: NewWorkflow,
        tasks: Sequence[NewTask],
        now: float,
        conn: Any = None,
        submit_id: str | None = None,
    ) -> WorkflowSubmitted:
        """Insert a workflow and its tasks (their `after` edges by batch position) in one
        transaction, as `task_insert_many` does, and link the tasks its steps were deduplicated
        onto; all or nothing. A workflow already stored under `submit_id` is returned, with its
        tasks, instead of written again."""
        ...

    def workflow_get(self, workflow_id: int) -> WorkflowStatus | None:
        """A workflow with its tasks counted by state (its own and those its steps were
        deduplicated onto, each once), in one consistent read; or None."""
        ...

    def workflow_cancel(self, workflow_id: int, now: float) -> tuple[int, int]:
        """In one transaction: a workflow's unstarted tasks -> cancelled, its running ones get
        cancel_requested. Returns (cancelled, requested); TaskNotFound if there is no such
        workflow."""
        ...

    # -- cancel polling and event consumers --------------------------------------------------------
    def task_fetch_cancel_requests(self, worker_id: str) -> list[int]:
        """The worker's running tasks that were asked to cancel (a read: cheap to poll)."""
        ...

    def consumer_acquire(self, name: str, holder: str, lease_until: float, now: float) -> bool:
        """Take or extend the lease of event consumer `name` (created at the feed's origin) if it
        is free, expired or already `holder`'s."""
        ...

    def consumer_advance(
        self, name: str, holder: str, position: tuple[int, int], now: float
    ) -> bool:
        """Move the consumer's cursor to `position` (a FeedEvent's (xid, id)) if `holder` still
        holds its lease."""
        ...

    def consumer_release(self, name: str, holder: str) -> None:
        """Give up the consumer's lease if `holder` has it."""
        ...

    def event_fetch_unseen(self, name: str, limit: int) -> list[FeedEvent]:
        """Up to `limit` events after the consumer's cursor, in an order no later commit can
        change (SQLite: id; PostgreSQL: writing transaction then id, only transactions older
        than any that may still write an event)."""
        ...

    def consumer_create(self, name: str, at_head: bool) -> None:
        """Give event consumer `name` its row if it has none: its cursor at the head of the feed
        (past every event committed by now) if `at_head`, else at the feed's origin (the row
        '*'). A row it has is left as it is."""
        ...

    def consumer_list(self) -> list[ConsumerRecord]:
        """Every event consumer's row (lease and cursor), by name."""
        ...

    def consumer_retire(self, name: str, now: float) -> bool:
        """Delete consumer `name`'s row (its cursor no longer holds back retention) unless a
        process holds its lease at `now`; whether a row went."""
        ...

    # -- retention ---------------------------------------------------------------------------
    def retention_get(self) -> Retention:
        """The retention configured: the default, and the task types that have their own."""
        ...

    def retention_set(self, task_name: str, seconds: float | None) -> None:
        """Keep finished tasks of `task_name` (or '*', the default) this long; None: forget the
        type's own (it falls back to the default; the default falls back to 7 days)."""
        ...

    def task_prune(self, plan: PrunePlan) -> int:
        """Delete up to `plan.batch` finished tasks that corral.retention lets go, oldest first,
        with their attempts, events, logs, dependency links, submit-id rows and the workflows
        left empty, in one transaction. Returns how many tasks went."""
        ...
