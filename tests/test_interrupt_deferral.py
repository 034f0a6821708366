"""Interrupts of thread handlers never land inside corral's own database calls: a handler that
saves checkpoints in a tight loop while it is time-sliced (or cancelled) over and over keeps every
connection sound (psycopg never logs a connection closed, rolled back or BAD, nor "another command
is already in progress"; SQLite never keeps a transaction open), its checkpoints are stored, and
the task succeeds."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import Services, wait_until

import corral
from corral.lifecycle import State
from corral.worker.worker import WorkerConfig

SLICES = 20
"""Time slices the counting task runs through (each one ended by an interrupt) before it
returns."""


@pytest.fixture
def db_warnings(caplog: pytest.LogCaptureFixture) -> Iterator[list[logging.LogRecord]]:
    """What psycopg and its pool log at WARNING or above during the test."""
    caplog.set_level(logging.WARNING, logger="psycopg")
    yield caplog.records
    # (read by the test before the fixture ends)


def psycopg_trouble(records: list[logging.LogRecord]) -> list[str]:
    return [r.getMessage() for r in records if r.name.startswith("psycopg")]


def pool_trouble(app: corral.App) -> dict[str, int]:
    """The PostgreSQL pool's counts of connections returned broken or found lost (none on
    SQLite)."""
    pool = getattr(app.store, "_pool", None)
    if pool is None:
        return {}
    stats = pool.get_stats()
    return {k: stats.get(k, 0) for k in ("returns_bad", "connections_lost") if stats.get(k, 0)}


def test_time_slices_never_interrupt_a_checkpoint_save(
    app: corral.App, services: Callable[..., Services], db_warnings: list[logging.LogRecord]
) -> None:
    @app.task(executor="thread", max_runtime=0.05, on_timeout="continue")
    def count(ctx: corral.Context) -> int:
        n = ctx.checkpoint or 0
        while True:  # no pause: the interrupt nearly always finds it inside corral's code
            n += 1
            ctx.save_checkpoint(n)
            if n % 50 == 0:
                ctx.set_shared("n", n)
                ctx.logger.info("at %d", n)
            if ctx.attempt > SLICES:
                return n

    task_id = count.submit()
    services(app, worker=WorkerConfig(concurrency=2, heartbeat=0.1, kill_grace=0.5))
    record = app.wait(task_id, timeout=120)

    assert record.state == State.SUCCEEDED, (record.state, record.error)
    attempts = app.store.attempt_list(task_id)
    assert [a.outcome for a in attempts] == ["sliced"] * SLICES + ["succeeded"]
    assert record.checkpoint == record.result  # the last checkpoint saved is the count returned
    assert int(record.result or 0) > SLICES
    assert psycopg_trouble(db_warnings) == []
    assert pool_trouble(app) == {}


def test_cancels_never_interrupt_a_checkpoint_save(
    app: corral.App, services: Callable[..., Services], db_warnings: list[logging.LogRecord]
) -> None:
    @app.task(executor="thread")
    def stubborn(ctx: corral.Context) -> None:
        n = 0
        while True:  # ignores ctx.cancelled: stopped by the interrupt after kill_grace
            n += 1
            ctx.save_checkpoint(n)

    @app.task(executor="thread")
    def after(ctx: corral.Context) -> str:
        ctx.save_checkpoint("after")
        return "ok"

    services(app, worker=WorkerConfig(concurrency=2, heartbeat=0.1, kill_grace=0.05))
    for _ in range(8):
        task_id = stubborn.submit()

        def saving(task_id: int = task_id) -> Any:
            record = app.get(task_id)
            return record.state == State.RUNNING and record.checkpoint not in (None, "null")

        wait_until(saving, timeout=30)
        app.cancel(task_id)
        assert app.wait(task_id, timeout=30).state == State.CANCELLED
    time.sleep(0.2)  # what the worker's threads do next runs on the same connections
    follow_up = after.submit()
    assert app.wait(follow_up, timeout=30).result == '"ok"'
    assert psycopg_trouble(db_warnings) == []
    assert pool_trouble(app) == {}
