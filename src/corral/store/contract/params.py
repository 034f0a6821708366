"""The parameter records of the store's transitions: one frozen record per call, so a transition
reads as one value, a new field is not a new positional argument, and a call can be logged or
replayed whole."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ...model import AttemptReport, Bucket, LevelChange, NewTask, NewWorkflow
from .transaction import JoinedTransaction


@dataclass(frozen=True, slots=True)
class InsertParams:
    """Submit `tasks` at `now`; `joined`: the caller's transaction to write in; `submit_id`: the
    call's name (a retry under it adds nothing)."""

    tasks: Sequence[NewTask]
    now: float
    joined: JoinedTransaction | None = None
    submit_id: str | None = None


@dataclass(frozen=True, slots=True)
class WorkflowInsertParams:
    """Submit `workflow` with its `tasks`, as InsertParams."""

    workflow: NewWorkflow
    tasks: Sequence[NewTask]
    now: float
    joined: JoinedTransaction | None = None
    submit_id: str | None = None


@dataclass(frozen=True, slots=True)
class DueParams:
    """Move up to `limit` tasks whose time (or whose dependencies' end) has come by `now`."""

    now: float
    limit: int


@dataclass(frozen=True, slots=True)
class LevelParams:
    """Set the level and next promote_at of ready tasks."""

    changes: Sequence[LevelChange]


@dataclass(frozen=True, slots=True)
class AdmitParams:
    """Admit `task_ids` in this (claim) order at `now`; store the `buckets` they left."""

    task_ids: Sequence[int]
    now: float
    buckets: Sequence[Bucket] = ()


@dataclass(frozen=True, slots=True)
class ClaimParams:
    """`worker_id` claims up to `limit` admitted tasks of `pools`, leased until `lease_until`."""

    worker_id: str
    pools: Sequence[str]
    limit: int
    lease_until: float
    now: float
    may_take_suspect: bool = False


@dataclass(frozen=True, slots=True)
class DrainParams:
    """`worker_id` takes or renews, until `hold_until`, the drain mark of the oldest suspect of
    `pools` admitted at or before `overdue_before`."""

    worker_id: str
    pools: Sequence[str]
    overdue_before: float
    hold_until: float
    now: float


@dataclass(frozen=True, slots=True)
class CompleteParams:
    """Record the ends of attempts at `now`."""

    reports: Sequence[AttemptReport]
    now: float


@dataclass(frozen=True, slots=True)
class CheckpointParams:
    """Store `checkpoint` for the running `attempt` of `task_id`."""

    task_id: int
    attempt: int
    checkpoint: str
    now: float


@dataclass(frozen=True, slots=True)
class SharedParams:
    """Store what the running `attempt` of `task_id` records for its clean-up."""

    task_id: int
    attempt: int
    shared: str
    now: float


@dataclass(frozen=True, slots=True)
class EventParams:
    """Record an event of `kind` about `attempt` that changes no state."""

    task_id: int
    attempt: int
    kind: str
    detail: str | None
    now: float


@dataclass(frozen=True, slots=True)
class CancelParams:
    task_id: int
    now: float


@dataclass(frozen=True, slots=True)
class RetryParams:
    task_id: int
    now: float


@dataclass(frozen=True, slots=True)
class WorkflowCancelParams:
    workflow_id: int
    now: float
