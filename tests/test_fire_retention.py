"""Retention of schedule fires and backfills, on both backends with a moved clock: a fire goes
once it is older than the default retention and its tasks are pruned; the latest fire and the
latest run of a schedule stay (overlap and `corral why` read them), as do the fires of a
backfill still running or paused; an ended backfill goes once none of its fires is left."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from conftest import finish, register_worker, start, submit
from schedule_apps import services, three_schedules

import corral
from corral.clock import ManualClock
from corral.lifecycle import State
from corral.retention import DEFAULT_RETENTION, plan
from corral.scheduler.pruner import Pruner
from corral.store import Store
from corral.store.contract.schedules import FIRED, MISSED

HOUR = 3600
T0 = 1_795_000_000 - 1_795_000_000 % HOUR
AFTER_WEEK = T0 + 5 * HOUR + DEFAULT_RETENTION + 60


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def app(app_url: str, clock: ManualClock) -> Iterator[corral.App]:
    application = three_schedules(app_url, clock)
    yield application
    application.close()


def succeed(store: Store, task_ids: list[int], now: float) -> None:
    register_worker(store, now=now)
    for task_id in task_ids:
        if store.task_states([task_id])[task_id] == State.READY:
            finish(store, start(store, task_id, now), State.SUCCEEDED, now)


def keep_newest(store: Store) -> None:
    """A later unfinished task: on SQLite the newest task and event are never pruned (their ids
    would come back), so every fire's tasks may go on both backends."""
    submit(store, T0, name="later", run_at=T0 + 1e10)


def times(app: corral.App, name: str) -> list[int]:
    return sorted(int(f.logical_time) for f in app.schedules.fires(name, 1000))


def prune(store: Store, now: float) -> tuple[int, int]:
    rule = plan(store.retention_get(), now)
    return store.task_prune(rule), store.fire_prune(rule)


def test_old_fires_go_once_their_tasks_are_pruned_and_the_latest_stay(
    app: corral.App, clock: ManualClock
) -> None:
    ticker, _ = services(app)
    ticker.run(T0)
    clock.set(T0 + 5 * HOUR + 1)
    ticker.run(clock.now())
    store = app.store
    hourly = {int(f.logical_time): f for f in app.schedules.fires("hourly", 100)}
    assert sorted(hourly) == [T0 + n * HOUR for n in range(1, 6)]
    unfinished = hourly[T0 + 4 * HOUR]
    succeed(store, [i for t, f in hourly.items() if f is not unfinished for i in f.task_ids], T0)
    latest = {int(f.logical_time): f.outcome for f in app.schedules.fires("latest", 100)}
    assert sorted(latest.values()) == [FIRED, MISSED, MISSED, MISSED, MISSED]
    succeed(store, [i for f in app.schedules.fires("latest", 100) for i in f.task_ids], T0)
    keep_newest(store)

    assert prune(store, T0 + DEFAULT_RETENTION - 60) == (0, 0)  # not a week yet
    assert store.fire_prune(plan(store.retention_get(), AFTER_WEEK)) == 4  # the missed ones
    pruned_tasks, pruned_fires = prune(store, AFTER_WEEK)
    assert (pruned_tasks, pruned_fires) == (5, 3)  # hourly's 1st..3rd: their tasks went first
    assert times(app, "hourly") == [T0 + 4 * HOUR, T0 + 5 * HOUR]  # unfinished, and the latest
    assert times(app, "latest") == [T0 + 5 * HOUR]  # the latest (and latest run) stays
    assert store.fire_last_run("latest") is not None

    succeed(store, list(unfinished.task_ids), AFTER_WEEK)
    keep_newest(store)  # and the newest event (SQLite)
    assert prune(store, AFTER_WEEK + DEFAULT_RETENTION + 1) == (1, 1)
    assert times(app, "hourly") == [T0 + 5 * HOUR]
    assert prune(store, AFTER_WEEK + 10 * DEFAULT_RETENTION) == (0, 0)


def test_the_latest_run_stays_behind_later_missed_fires(
    app: corral.App, clock: ManualClock
) -> None:
    """The overlap rule reads a schedule's latest run: it stays while later fires are missed."""
    ticker, _ = services(app)
    ticker.run(T0)
    clock.set(T0 + HOUR + 1)
    ticker.run(clock.now())
    (run,) = app.schedules.fires("latest")
    succeed(app.store, list(run.task_ids), clock.now())
    app.schedules.pause("latest")
    clock.set(T0 + 3 * HOUR + 1)
    ticker.run(clock.now())
    assert [f.outcome for f in app.schedules.fires("latest")] == [MISSED, MISSED, FIRED]
    keep_newest(app.store)
    assert prune(app.store, AFTER_WEEK) == (1, 1)  # its task, then the missed fire of 2h
    assert [(int(f.logical_time), f.outcome) for f in app.schedules.fires("latest")] == [
        (T0 + 3 * HOUR, MISSED),
        (T0 + HOUR, FIRED),
    ]


def test_backfills_keep_their_fires_until_they_end_then_go(
    app: corral.App, clock: ManualClock
) -> None:
    store = app.store
    _, maker = services(app)
    done = app.backfill("daily", start=date(2025, 1, 1), end=date(2025, 1, 5))
    assert done.total == 5
    while maker.run(T0):
        succeed(store, [i for f in store.backfill_fires(done.id) for i in f.task_ids], T0)
    assert app.backfills.status(done.id).state == "done"
    going = app.backfill("daily", start=date(2025, 3, 1), end=date(2025, 6, 8))
    assert maker.run(T0) > 0  # a first batch, the rest waits for it
    made = store.backfill_fires(going.id)
    succeed(store, [i for f in made for i in f.task_ids], T0)
    app.backfills.pause(going.id)
    keep_newest(store)

    assert prune(store, AFTER_WEEK) == (len(made) + 5, 5 + 1)  # the done one: fires and row
    assert store.backfill_get(done.id) is None and store.backfill_fires(done.id) == []
    assert len(store.backfill_fires(going.id)) == len(made)  # paused: its status counts them

    app.backfills.cancel(going.id)
    assert prune(store, AFTER_WEEK) == (0, len(made) - 1)  # the latest fire of daily stays
    assert store.backfill_get(going.id) is not None  # ...and so its backfill


def test_the_pruner_prunes_fires_too(app: corral.App, clock: ManualClock) -> None:
    ticker, _ = services(app)
    ticker.run(T0)
    clock.set(T0 + 3 * HOUR + 1)
    ticker.run(clock.now())
    keep_newest(app.store)
    assert Pruner(app.store).run(AFTER_WEEK) == 2  # latest's two missed fires
    assert [f.outcome for f in app.schedules.fires("latest")] == [FIRED]
