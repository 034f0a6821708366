"""The transitions of the store contract: every state change, one method each, each taking one
frozen params record (params.py). Every transition is one transaction that checks the state (and
attempt) it expects and writes its event rows beside it; which states and which rows is decided
once, in corral.moves, from the lifecycle table. `now` is always the caller's."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ...lifecycle import State
from ...model import ClaimedTask, GroupConfig, LogLine, Submitted, WorkflowSubmitted
from ...ratelimit import RateLimit
from ...retention import PrunePlan
from .params import (
    AdmitParams,
    CancelParams,
    CheckpointParams,
    ClaimParams,
    CompleteParams,
    DrainParams,
    DueParams,
    EventParams,
    InsertParams,
    LevelParams,
    RetryParams,
    SharedParams,
    WorkflowCancelParams,
    WorkflowInsertParams,
)


class TaskTransitions(Protocol):
    def task_insert_many(self, params: InsertParams) -> list[Submitted]:
        """Insert all tasks in one transaction (waiting or ready), each with a `submitted` event;
        a dedup key held by an unfinished task returns that task instead. All or nothing. With
        `joined`, the insert joins the caller's transaction. A call under a recorded `submit_id`
        returns the tasks stored under it (created False), whatever their state: a retry adds
        nothing."""
        ...

    def task_release_due(self, params: DueParams) -> int:
        """waiting (run_at reached, every dependency succeeded) and retry_wait (backoff over) ->
        ready. Returns how many moved."""
        ...

    def task_fail_upstream(self, params: DueParams) -> int:
        """waiting with a dependency dead, cancelled or upstream_failed -> upstream_failed."""
        ...

    def task_set_levels(self, params: LevelParams) -> int:
        """Set level and next promote_at of tasks still ready."""
        ...

    def ready_groups_refresh(self, limit: int) -> int:
        """Fold up to `limit` hints (left by every change to a group's ready tasks): look the
        hinted groups' heads up again and record them among the per-group heads, or drop the
        groups with no ready task left. Leader only. Returns how many groups were looked up."""
        ...

    def task_admit_many(self, params: AdmitParams) -> list[int]:
        """ready -> admitted, in the given order (which is the claim order), and store the token
        buckets as these admissions left them. Returns those moved."""
        ...

    def task_claim(self, params: ClaimParams) -> list[ClaimedTask]:
        """admitted -> running for up to `limit` tasks of `pools` in admission order; each gets a
        new attempt number, an attempt row and a lease held by `worker_id`. Suspects run alone
        (corral.isolation): with `may_take_suspect` (the worker runs nothing) and none of the
        worker's tasks running in the rows either, the oldest admitted suspect alone, its attempt
        isolated; otherwise only tasks that are not suspects, and none while the worker runs a
        suspect. One statement either way."""
        ...

    def task_drain_mark(self, params: DrainParams) -> int | None:
        """The suspect the worker drains for (corral.isolation): take or renew the drain mark of
        the oldest overdue suspect whose mark is free, lapsed or already this worker's (that one
        first); its id, or None. An indexed read of the admitted suspects, writing only when it
        finds one; never a scan of the backlog."""
        ...

    def task_complete_many(self, params: CompleteParams) -> list[int]:
        """running -> the report's target state, only where (id, attempt) is still running (and
        held by report.worker_id when given). Returns the ids recorded; a stale report is
        refused silently, so an outcome is recorded once."""
        ...

    def task_save_checkpoint(self, params: CheckpointParams) -> bool:
        """Store the checkpoint if `attempt` is still the running attempt."""
        ...

    def task_save_shared(self, params: SharedParams) -> bool:
        """Store what the task records for its clean-up, if `attempt` still runs."""
        ...

    def task_record_event(self, params: EventParams) -> bool:
        """Record an event of `attempt` that changes no state (such as `gil_held`, a handler
        that held the GIL); False if there is no such task."""
        ...

    def log_append_many(self, lines: Sequence[LogLine]) -> None:
        """Store log lines of attempts."""
        ...

    def task_cancel(self, params: CancelParams) -> tuple[State, State | None]:
        """Cancel: an unstarted task -> cancelled at once; a running one gets cancel_requested
        (its worker interrupts it). Returns (state before, state after or None if requested)."""
        ...

    def task_retry(self, params: RetryParams) -> State:
        """dead / cancelled / upstream_failed -> ready with a fresh retry budget. Returns the
        state it left."""
        ...

    def task_prune(self, plan: PrunePlan) -> int:
        """Delete up to `plan.batch` finished tasks that corral.retention lets go, oldest first,
        with their attempts, events, logs, dependency links, submit-id rows and the workflows
        left empty, in one transaction. Returns how many tasks went."""
        ...


class WorkflowTransitions(Protocol):
    def workflow_insert(self, params: WorkflowInsertParams) -> WorkflowSubmitted:
        """Insert a workflow and its tasks (their `after` edges by batch position) in one
        transaction, as `task_insert_many` does, and link the tasks its steps were deduplicated
        onto; all or nothing. A workflow already stored under `submit_id` is returned, with its
        tasks, instead of written again."""
        ...

    def workflow_cancel(self, params: WorkflowCancelParams) -> tuple[int, int]:
        """In one transaction: a workflow's unstarted tasks -> cancelled, its running ones get
        cancel_requested. Returns (cancelled, requested); TaskNotFound if there is no such
        workflow."""
        ...


class SettingTransitions(Protocol):
    def group_configure(self, config: GroupConfig) -> None:
        """Create or replace a group's settings (the name '*' holds the defaults of groups never
        configured); takes effect at the next dispatch; the group's bucket starts full."""
        ...

    def rate_limit_configure(self, key: str, rate: RateLimit | None) -> None:
        """Create, replace or (None) remove the named rate limit `key`; its bucket starts full."""
        ...

    def retention_set(self, task_name: str, seconds: float | None) -> None:
        """Keep finished tasks of `task_name` (or '*', the default) this long; None: forget the
        type's own (it falls back to the default; the default falls back to 7 days)."""
        ...


class Transitions(TaskTransitions, WorkflowTransitions, SettingTransitions, Protocol):
    """Every state change of the store."""
