"""Bulk transitions of the store contract (corral.bulk): cancel or retry a batch of tasks by id
in one transaction, each task's state checked inside it, so a task that moved since its caller
read it is skipped, not forced. The caller bounds the batch (corral.bulk: 500), so a bulk of any
size never holds one long transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ...lifecycle import State


@dataclass(frozen=True, slots=True)
class BulkParams:
    """Tasks `ids` (at most a batch), acted on at `now`, each only if its state is one of
    `states` (the caller's filter narrowed to what the action takes)."""

    ids: Sequence[int]
    states: frozenset[State]
    now: float


@dataclass(frozen=True, slots=True)
class BulkOutcome:
    """What a batch did: `changed` tasks moved (cancelled, or back to ready), `requested` running
    tasks asked to stop (a cancel), `skipped` tasks found in another state, gone, or (a retry)
    whose dedup key another unfinished task holds."""

    changed: list[int]
    requested: list[int]
    skipped: list[int]


class BulkTransitions(Protocol):
    def task_cancel_many(self, params: BulkParams) -> BulkOutcome:
        """Cancel each task still in one of `states`, in one transaction: one not running ends
        at once, a running one gets cancel_requested; the rest are skipped."""
        ...

    def task_retry_many(self, params: BulkParams) -> BulkOutcome:
        """Retry each task still in one of `states` (and retryable), in one transaction: back to
        ready with a fresh retry budget; the rest are skipped."""
        ...
