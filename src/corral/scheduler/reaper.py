"""Reaper: a running task whose lease expired lost its worker. Who is to blame is decided by
`isolation.lost_verdict`: a task lost beside others becomes a suspect and goes back to ready
without its loss counted; a task lost while it ran alone counts the failure, and is quarantined
(dead) at its limit (cancelled if a cancel was pending). A task type with a clean-up leaves a
clean-up row with the report and waits, held, for its end (corral.cleanup). The compare-and-set
on the attempt keeps a late report of the old worker out. Cost follows the expired leases, never
the backlog."""

from __future__ import annotations

from ..cleanup import held_target
from ..isolation import lost_verdict
from ..lifecycle import OnTimeout
from ..model import AttemptReport
from ..store import Store
from ..store.contract import CompleteParams


def rescue_expired(
    store: Store, now: float, batch: int = 500, lost: dict[str, int] | None = None
) -> int:
    """Record the expired leases' attempts lost; returns how many were recorded, and counts
    them by task type into `lost` (a late report of the old worker recorded first is not)."""
    expired = store.task_fetch_expired(now, batch)
    if not expired:
        return 0
    reports = []
    for task in expired:
        on_timeout: OnTimeout = task.on_timeout  # type: ignore[assignment]
        verdict = lost_verdict(
            isolated=task.isolated,
            failures_before=task.failures,
            max_retries=task.max_retries,
            on_timeout=on_timeout,
            isolated_crashes_before=task.isolated_crashes,
            quarantine_after=task.quarantine_after,
            cancel_requested=task.cancel_requested,
            worker_id=task.worker_id,
        )
        # A task type with a clean-up: the lost attempt leaves one, and its next attempt waits
        # in retry_wait, held until the clean-up ended (corral.cleanup).
        target = held_target(verdict.target) if task.cleanup else verdict.target
        reports.append(
            AttemptReport(
                task_id=task.id,
                attempt=task.attempt,
                outcome="lost",
                target=target,
                cleanup="lost" if task.cleanup else None,
                retry_at=now if task.cleanup else None,
                counts_as_failure=verdict.counts_as_failure,
                error=verdict.error,
                flag=verdict.flag,
                suspect=verdict.suspect,
                isolated_crashes=verdict.isolated_crashes,
            )
        )
    recorded = store.task_complete_many(CompleteParams(reports, now))
    if lost is not None:
        names = {task.id: task.name for task in expired}
        for task_id in recorded:
            lost[names[task_id]] = lost.get(names[task_id], 0) + 1
    return len(recorded)


class Reaper:
    """The leader service around `rescue_expired`; `lost`: the attempts it found lost in this
    process, by task type (corral.metrics.scheduler exports them)."""

    name = "reap"

    def __init__(self, store: Store, interval: float, batch: int = 500) -> None:
        self.store = store
        self.interval = interval
        self.batch = batch
        self.lost: dict[str, int] = {}

    def run(self, now: float) -> int:
        return rescue_expired(self.store, now, self.batch, self.lost)
