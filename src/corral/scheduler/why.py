"""`corral why TASK`: what holds a task back, in words, from the same rules the scheduler uses.

Reads only (no scheduler needs to run): the task, its dependencies, and for a ready task the
load, its group's settings and the token buckets it draws on, handed to the admission policy's
`explain`.
"""

from __future__ import annotations

from ..admission import Reason, explain
from ..errors import TaskNotFound
from ..isolation import QUARANTINED
from ..lifecycle import TERMINAL, State
from ..model import DispatchSnapshot, ReadyTask, TaskRecord
from ..ratelimit import buckets_of
from ..store import Store


def why(store: Store, task_id: int, now: float) -> tuple[TaskRecord, list[Reason]]:
    """The task and what holds it back now (empty: nothing; it goes at the next round)."""
    record = store.task_get(task_id)
    if record is None:
        raise TaskNotFound(f"no task with id {task_id}")
    if record.state in TERMINAL:
        ended = [Reason("ended", f"it ended: {record.state}")]
        if record.state == State.DEAD and (record.error or "").startswith(QUARANTINED):
            ended.append(Reason(QUARANTINED, record.error or QUARANTINED))
        return record, ended
    if record.state == State.RUNNING:
        alone = " alone (a suspect)" if record.suspect else ""
        return record, [Reason("running", f"it runs{alone} (attempt {record.attempt}) on worker "
                               f"{record.worker_id}")]  # fmt: skip
    if record.state == State.RETRY_WAIT and record.run_at is None:
        return record, [_cleanup(store, record)]
    if record.state == State.RETRY_WAIT:
        left = max(0.0, (record.run_at or now) - now)
        return record, [Reason("backoff", f"it failed {record.failures} time(s) and backs off: "
                               f"ready again in {left:.1f}s")]  # fmt: skip
    if record.state == State.WAITING:
        return record, _waiting_reasons(store, record, now)
    reasons = _queued_reasons(store, record, now)
    if record.suspect:
        reasons = [_suspect(record), *(r for r in reasons if r.code not in ("admitted", "next"))]
    return record, reasons


def _cleanup(store: Store, record: TaskRecord) -> Reason:
    """A retry held until the failed attempt's clean-up ended (corral.cleanup)."""
    found = [c for c in store.cleanup_list(record.id) if c.attempt == record.attempt]
    if not found:
        return Reason("cleanup", "it waits for the clean-up of its attempt before it retries")
    c = found[0]
    error = f", last error: {c.last_error}" if c.last_error else ""
    return Reason("cleanup", f"it waits for the clean-up of attempt {c.attempt} ({c.reason}) "
                  f"before it retries: {c.state}, {c.tries} tries{error}")  # fmt: skip


def _suspect(record: TaskRecord) -> Reason:
    """A suspect runs alone, to show whether it is what takes its worker down."""
    text = "suspect: waits for a worker with nothing else running (it was lost with its worker"
    if record.isolated_crashes:
        text += (f" {record.isolated_crashes} time(s) while running alone; quarantined at "
                 f"{record.quarantine_after})")  # fmt: skip
    else:
        text += " while other tasks could run beside it)"
    return Reason("suspect", text)


def _waiting_reasons(store: Store, record: TaskRecord, now: float) -> list[Reason]:
    reasons = []
    if record.run_at is not None and record.run_at > now:
        reasons.append(Reason("delayed", f"it may not start before its run_at, in "
                              f"{record.run_at - now:.1f}s"))  # fmt: skip
    states = store.task_states(record.depends_on)
    pending = {dep: state for dep, state in states.items() if state != State.SUCCEEDED}
    if pending:
        listed = ", ".join(f"{dep} ({state})" for dep, state in sorted(pending.items())[:10])
        more = f" and {len(pending) - 10} more" if len(pending) > 10 else ""
        reasons.append(Reason("dependencies", f"it waits for {len(pending)} dependencies to "
                              f"succeed: {listed}{more}"))  # fmt: skip
    return reasons or [Reason("releasing", "its dependencies are done: the resolver releases "
                              "it at the next round")]  # fmt: skip


def _queued_reasons(store: Store, record: TaskRecord, now: float) -> list[Reason]:
    load = store.dispatch_load(now)
    config = store.group_get(record.group)
    groups = dict(load.groups)
    if config is not None:
        groups[record.group] = config
    snapshot = DispatchSnapshot(
        capacity=load.capacity,
        active_by_pool=load.active_by_pool,
        active_by_group=load.active_by_group,
        groups=groups,
        defaults=load.defaults,
        exclusive_groups=load.exclusive_groups,
        buckets=store.bucket_get_many(buckets_of(record.group, record.rate_key)),
        rate_limits=store.rate_limit_list(),
        paused_groups=load.paused_groups,
    )
    ready_at = record.ready_at or now
    task = ReadyTask(record.id, record.pool, record.group, record.level, ready_at, record.rank,
                     record.exclusive, record.rate_key)  # fmt: skip
    if record.state == State.ADMITTED:
        reasons = [r for r in explain(snapshot, task, 0, now) if r.code == "no_worker"]
        return reasons or [Reason("admitted", f"it is admitted: the next free worker of pool "
                                  f"{record.pool!r} claims it")]  # fmt: skip
    ahead = store.task_count_ahead(record.pool, record.level)
    return explain(snapshot, task, ahead, now) or [
        Reason("next", "nothing holds it back: the dispatcher admits it at its next round")
    ]
