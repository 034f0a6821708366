"""Reaper: a running task whose lease expired lost its worker. The attempt counts as failed; the
task goes back to ready, or to dead when it has no retries left (cancelled if a cancel was
pending). The compare-and-set on the attempt keeps a late report of the old worker out."""

from __future__ import annotations

from ..lifecycle import OnTimeout, State, next_state
from ..model import AttemptReport
from ..store import Store


def rescue_expired(store: Store, now: float, batch: int = 500) -> int:
    expired = store.task_fetch_expired(now, batch)
    if not expired:
        return 0
    reports = []
    for task in expired:
        if task.cancel_requested:
            target = State.CANCELLED
        else:
            on_timeout: OnTimeout = task.on_timeout  # type: ignore[assignment]
            target = next_state(
                "lost",
                failures_before=task.failures,
                max_retries=task.max_retries,
                on_timeout=on_timeout,
            )
        reports.append(
            AttemptReport(
                task_id=task.id,
                attempt=task.attempt,
                outcome="lost",
                target=target,
                counts_as_failure=target != State.CANCELLED,
                error=f"worker {task.worker_id} lost (lease expired)",
            )
        )
    return len(store.task_complete_many(reports, now))
