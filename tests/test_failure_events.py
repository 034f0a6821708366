"""The state-change event of a failure carries the error: a callback on `dead` or `retry_wait`
gets its type, message and where it came from (the traceback's last frame, or the part of corral
that ended the attempt) in the StateChange, without reading the attempt. Both backends."""

from __future__ import annotations

import threading
from collections.abc import Callable

from conftest import T0, Services, register_worker, start, submit, wait_until

import corral
from corral.lifecycle import State
from corral.scheduler.reaper import rescue_expired
from corral.store import Store
from corral.worker.worker import WorkerConfig


def test_callbacks_on_dead_and_retry_wait_get_the_error(
    app: corral.App, services: Callable[..., Services]
) -> None:
    changes: list[corral.StateChange] = []
    lock = threading.Lock()

    @app.on("retry_wait", "dead")
    def record(change: corral.StateChange) -> None:
        with lock:
            changes.append(change)

    @app.task(max_retries=1, backoff=corral.Backoff(base=0.05, jitter=0.0))
    def flaky(ctx: corral.Context, table: str) -> None:
        raise ValueError(f"{table}: attempt {ctx.attempt} found no rows")

    task_id = flaky.submit("orders")
    services(app, worker=WorkerConfig(concurrency=2, heartbeat=0.1, callback_poll=0.05))
    assert app.wait(task_id, timeout=30).state == State.DEAD
    wait_until(lambda: len(changes) == 2, timeout=30)
    by_kind = {c.kind: c for c in changes}
    for kind, attempt in (("retry_wait", 1), ("dead", 2)):
        change = by_kind[kind]
        assert change.task_id == task_id and change.event.attempt == attempt
        assert change.detail["outcome"] == "failed"
        error = change.error
        assert error is not None
        assert error.type == "ValueError"
        assert error.message == f"orders: attempt {attempt} found no rows"
        assert error.where.endswith(" in flaky") and "test_failure_events.py:" in error.where
    # The attempt row says the same, at length.
    attempts = app.store.attempt_list(task_id)
    assert [a.error for a in attempts] == [
        f"ValueError: orders: attempt {n} found no rows" for n in (1, 2)
    ]


def test_a_lost_worker_and_a_success_say_where_or_nothing(store: Store) -> None:
    register_worker(store)
    lost = submit(store, max_retries=1)
    start(store, lost)
    assert rescue_expired(store, T0 + 1e7) == 1  # its lease ran out: back to ready
    event = store.event_list(lost)[-1]
    change = corral.StateChange(event, "job", "default", None)
    assert (change.kind, change.state) == ("ready", "ready")
    assert change.error is not None
    assert change.error.type == "WorkerLost"
    assert "w1 lost (lease expired)" in change.error.message
    assert change.error.where.startswith("reaper")

    first = store.event_list(lost)[0]
    assert corral.StateChange(first, "job", "default", None).error is None  # submitted
