"""Bulk cancel and retry (the contract: store/contract/bulk.py), written once for both backends:
one write transaction a batch, every task's state read inside it, the same plans and statements
as one task's cancel and retry (corral.moves), a task that moved or whose retry finds its dedup
key held skipped. A backend gives its transaction, how it reads the batch's states (PostgreSQL
locks the rows in id order, so two bulks over the same tasks can't deadlock), how one retry is
undone alone, and the wake-ups it sends."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from types import ModuleType
from typing import Any

from ..errors import TransitionRefused
from ..lifecycle import State
from ..moves import plan_cancel, plan_retry
from .contract.bulk import BulkOutcome, BulkParams
from .rows import NO_AGING


class NamedBulk:
    """The bulk transitions, mixed into each backend's store."""

    queries: ModuleType

    def _bulk_tx(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _bulk_states(self, tx: Any, ids: Sequence[int]) -> dict[int, tuple[State, int]]:
        """The (state, attempt) of the batch's tasks, read in its transaction."""
        raise NotImplementedError

    def _bulk_retry_one(self, tx: Any, args: dict[str, Any]) -> bool:
        """Run one retry's statement; False (and nothing changed) if its dedup key is held."""
        raise NotImplementedError

    def _bulk_cancel_requested(self, tx: Any, task_id: int) -> None:
        """A running task was asked to stop: tell its worker (where the backend notifies)."""

    def _bulk_made_ready(self, tx: Any) -> None:
        """Some tasks went back to ready: wake the scheduler (where the backend notifies)."""

    def _takeable(self, tx: Any, params: BulkParams, out: BulkOutcome
                  ) -> Iterator[tuple[int, State, int]]:  # fmt: skip
        """The batch's tasks still in a state the action takes, with their attempt; the others
        are counted skipped."""
        found = self._bulk_states(tx, params.ids)
        for task_id in params.ids:
            state, attempt = found.get(task_id, (None, 0))
            if state is None or state not in params.states:
                out.skipped.append(task_id)
                continue
            yield task_id, state, attempt

    def task_cancel_many(self, params: BulkParams) -> BulkOutcome:
        q, out = self.queries, BulkOutcome([], [], [])
        with self._bulk_tx() as tx:
            for task_id, state, attempt in self._takeable(tx, params, out):
                try:
                    plan = plan_cancel(task_id, state, attempt, params.now)
                except TransitionRefused:
                    out.skipped.append(task_id)
                    continue
                if plan.after is None:
                    tx.execute(q.REQUEST_CANCEL, {"id": task_id})
                    self._bulk_cancel_requested(tx, task_id)
                    out.requested.append(task_id)
                else:
                    args = {"id": task_id, "now": params.now, "expected": str(plan.before)}
                    tx.execute(q.CANCEL_NOW, args)
                    out.changed.append(task_id)
                tx.execute(q.INSERT_EVENT, plan.event)
        return out

    def task_retry_many(self, params: BulkParams) -> BulkOutcome:
        q, out = self.queries, BulkOutcome([], [], [])
        with self._bulk_tx() as tx:
            for task_id, state, attempt in self._takeable(tx, params, out):
                try:
                    event = plan_retry(task_id, state, attempt, params.now)
                except TransitionRefused:
                    out.skipped.append(task_id)
                    continue
                args = {"id": task_id, "now": params.now, "expected": str(state),
                        "no_aging": NO_AGING}  # fmt: skip
                if not self._bulk_retry_one(tx, args):
                    out.skipped.append(task_id)  # its dedup key is held by another task
                    continue
                tx.execute(q.INSERT_EVENT, event)
                out.changed.append(task_id)
            if out.changed:
                self._bulk_made_ready(tx)
        return out
