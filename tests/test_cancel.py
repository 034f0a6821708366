"""Cancellation on both backends: a running task is interrupted within about a second under each
executor (a notice: PostgreSQL's NOTIFY, SQLite's datagram), then its task type's on_cancel runs
with the context and releases what the task recorded in ctx.shared. Cancelling a task that ended
says so; a workflow is cancelled as a whole, from the API and the CLI."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import Services, wait_until

import corral
from corral.cli import cli
from corral.errors import TransitionRefused
from corral.lifecycle import State
from corral.worker.worker import WorkerConfig

INTERRUPT_WITHIN = 1.5
"""Seconds from `app.cancel` to the start of on_cancel: "about a second", with room for a busy CI
machine. The notice arrives at once on both backends (the heartbeat, every second, is the
fallback)."""


async def warehouse_query_async(ctx: corral.Context) -> None:
    ctx.set_shared("query_id", f"q-{ctx.task_id}")
    await asyncio.sleep(60)  # cancelled for real


def warehouse_query_thread(ctx: corral.Context) -> None:
    ctx.set_shared("query_id", f"q-{ctx.task_id}")
    while True:  # ignores ctx.cancelled: stopped by an injected exception after kill_grace
        time.sleep(0.01)


def warehouse_query_process(ctx: corral.Context) -> None:
    ctx.set_shared("query_id", f"q-{ctx.task_id}")
    time.sleep(60)  # ignores the cancel: its process is killed after kill_grace


HANDLERS: dict[str, Callable[..., Any]] = {
    "async": warehouse_query_async,
    "thread": warehouse_query_thread,
    "process": warehouse_query_process,
}


@pytest.mark.parametrize("executor", ["async", "thread", "process"])
def test_a_running_task_is_interrupted_and_cleaned_up(
    app: corral.App, services: Callable[..., Services], executor: str
) -> None:
    released: list[tuple[int, str, float]] = []
    lock = threading.Lock()

    def release_query(ctx: corral.Context) -> None:
        with lock:
            released.append((ctx.task_id, ctx.shared["query_id"], time.monotonic()))

    task = app.task(HANDLERS[executor], name="query", executor=executor, on_cancel=release_query)
    task_id = task.submit()
    # The heartbeat stays at its default (1 s): interruption must not wait for it.
    services(app, worker=WorkerConfig(concurrency=2, kill_grace=0.3))
    wait_until(lambda: app.get(task_id).shared, timeout=20)
    assert app.get(task_id).state == State.RUNNING

    asked = time.monotonic()
    assert app.cancel(task_id) is None  # running: requested, its worker interrupts it
    record = app.wait(task_id, timeout=10)
    assert record.state == State.CANCELLED
    assert [(t, q) for t, q, _ in released] == [(task_id, f"q-{task_id}")]
    assert released[0][2] - asked < INTERRUPT_WITHIN + 0.3  # + kill_grace, for the stubborn
    kinds = [e.kind for e in app.store.event_list(task_id)]
    assert kinds[-2:] == ["cancel_requested", "cancelled"]
    assert app.store.attempt_list(task_id)[-1].outcome == "cancelled"

    with pytest.raises(TransitionRefused, match=f"task {task_id} already ended: it is cancelled"):
        app.cancel(task_id)


def test_cancel_of_a_task_that_ended_says_so(
    app: corral.App, services: Callable[..., Services]
) -> None:
    @app.task
    def quick(ctx: corral.Context) -> str:
        return "done"

    task_id = quick.submit()
    waiting = quick.submit(depends_on=[task_id], delay=3600)
    services(app)
    assert app.wait(task_id, timeout=20).state == State.SUCCEEDED
    with pytest.raises(TransitionRefused, match=f"task {task_id} already ended: it is succeeded"):
        app.cancel(task_id)
    assert app.cancel(waiting) == State.CANCELLED  # a waiting one ends at once

    out = CliRunner().invoke(cli, ["--database-url", app.url, "cancel", str(task_id)])
    assert out.exit_code == 1
    assert f"task {task_id} already ended: it is succeeded" in out.output


def test_cancel_a_workflow_with_a_running_task(
    app: corral.App, services: Callable[..., Services]
) -> None:
    released: list[str] = []

    async def hold(ctx: corral.Context) -> None:
        ctx.set_shared("lock", f"lock-{ctx.task_id}")
        await asyncio.sleep(60)

    @app.task
    def after(ctx: corral.Context) -> None: ...

    holder = app.task(hold, on_cancel=lambda ctx: released.append(ctx.shared["lock"]))
    wf = app.workflow("cancel-me")
    head = wf.add(holder)
    tail = [wf.add(after, after=[head]) for _ in range(3)]
    workflow_id = wf.submit()
    services(app, worker=WorkerConfig(concurrency=2, heartbeat=0.1))
    wait_until(lambda: app.get(head.id).shared, timeout=20)

    out = CliRunner().invoke(
        cli, ["--database-url", app.url, "cancel", "--workflow", str(workflow_id)]
    )
    assert out.exit_code == 0, out.output
    assert "3 task(s) cancelled, 1 running task(s) asked to stop" in out.output
    assert app.wait(head.id, timeout=10).state == State.CANCELLED
    assert released == [f"lock-{head.id}"]
    status = app.workflow_status(workflow_id)
    assert (status.state, status.counts) == ("cancelled", {"cancelled": 4})
    assert all(app.get(s.id).state == State.CANCELLED for s in tail)

    again = CliRunner().invoke(
        cli, ["--database-url", app.url, "cancel", "--workflow", str(workflow_id)]
    )
    assert again.exit_code == 0 and "nothing to cancel" in again.output
    missing = CliRunner().invoke(cli, ["--database-url", app.url, "cancel", "--workflow", "999"])
    assert missing.exit_code == 1 and "no workflow with id 999" in missing.output
    shown = CliRunner().invoke(
        cli, ["--database-url", app.url, "status", "--workflow", str(workflow_id), "--json"]
    )
    assert shown.exit_code == 0 and '"state": "cancelled"' in shown.output
