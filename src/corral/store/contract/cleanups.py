"""The clean-ups of the store contract (corral.cleanup): the rows that a bad end of an attempt of
a task type with a clean-up leaves (written by `task_complete_many` with the report), claimed
under a lease by a worker that has the type, ended once. One params record per call."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ...cleanup import CleanupState
from ...model import ClaimedCleanup, CleanupRecord


@dataclass(frozen=True, slots=True)
class CleanupClaimParams:
    """`worker_id` claims up to `limit` due clean-ups of `task_names` (pending with next_try_at
    reached, or running with a lapsed lease), each leased until `lease_until`."""

    worker_id: str
    task_names: Sequence[str]
    limit: int
    lease_until: float
    now: float


@dataclass(frozen=True, slots=True)
class CleanupEndParams:
    """The end of the try `worker_id` holds on clean-up `cleanup_id`: `state` succeeded or
    failed (the task's held retry is released), or pending again at `next_try_at`."""

    cleanup_id: int
    worker_id: str
    state: CleanupState
    error: str | None
    now: float
    next_try_at: float | None = None


class Cleanups(Protocol):
    def cleanup_claim(self, params: CleanupClaimParams) -> list[ClaimedCleanup]:
        """pending (due) or running (lease lapsed) -> running, held by `worker_id` until
        `lease_until`, tries + 1, oldest due first; each with its task's payload. Two workers
        never hold one clean-up at once (SKIP LOCKED on PostgreSQL, the write lock on SQLite).
        An indexed read of the due clean-ups, never a scan of the tasks."""
        ...

    def cleanup_end(self, params: CleanupEndParams) -> bool:
        """Record the try's end if `worker_id` still holds it (compare-and-set on holder and
        state running). An end (succeeded, failed) writes its `cleanup_succeeded` /
        `cleanup_failed` event and releases the task held in retry_wait for this attempt (its
        run_at back to the retry's due time). False if the clean-up was not held by it."""
        ...

    def cleanup_list(self, task_id: int) -> list[CleanupRecord]:
        """A task's clean-ups, by attempt."""
        ...

    def cleanup_unfinished(self, limit: int) -> list[CleanupRecord]:
        """Up to `limit` clean-ups pending or running, soonest due first (the due index)."""
        ...
