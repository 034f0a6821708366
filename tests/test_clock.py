"""One clock per store: the host's on SQLite, the database server's on PostgreSQL; every
component takes "now" from it, and a test's own clock still drives them all.

(The PostgreSQL promises under a shifted process clock, with real processes, are in
tests/test_clock_skew_postgres.py.)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from conftest import T0, Services, register_worker, submit, wait_until

import corral
from corral import clock as clock_mod
from corral.callbacks import CallbackService
from corral.clock import DatabaseClock, ManualClock, SystemClock
from corral.lifecycle import State
from corral.scheduler.service import Scheduler, SchedulerConfig
from corral.store import Store
from corral.store.contract import AdmitParams, ClaimParams
from corral.worker.worker import Worker, WorkerConfig


def database_time(store: Store) -> tuple[float, float]:
    """The database server's clock read directly (PostgreSQL), and the time the read took."""
    import psycopg

    with psycopg.connect(store.url, autocommit=True) as conn:
        started = time.monotonic()
        row = conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()
        took = time.monotonic() - started
    assert row is not None
    return float(row[0]), took


def test_every_component_takes_the_store_clock(app: corral.App) -> None:
    """One source: the app, its workers, schedulers and callbacks read the store's clock."""
    store_clock = app.store.clock()
    assert app.store.clock() is store_clock
    assert app.clock is store_clock
    assert Worker.of(app, WorkerConfig()).clock is store_clock
    assert Scheduler(app.store).clock is store_clock
    assert CallbackService(app.store, app.registry, "me").clock is store_clock


def test_the_store_clock_is_the_hosts_on_sqlite_and_the_servers_on_postgres(store: Store) -> None:
    clock = store.clock()
    if store.url.startswith("sqlite"):
        assert isinstance(clock, SystemClock)
        before = time.time()
        now = clock.now()
        assert before <= now <= time.time()
        return
    assert clock.sample.skew == pytest.approx(0.0, abs=1.0)  # the server runs on this host
    assert isinstance(clock, DatabaseClock)
    server, took = database_time(store)
    # read after the server's reading: no earlier than it, by more than the clock's own error
    assert clock.now() >= server - clock.sample.error - 0.001
    after = clock.now()
    server_again, took_again = database_time(store)
    assert after <= server_again + clock.sample.error + 0.001
    assert clock.sample.error <= max(took, took_again, clock.sample.round_trip)


@pytest.fixture
def fresh_warning(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The skew warning is once per process: give this test a process-fresh flag."""
    monkeypatch.setattr(clock_mod, "_warned", threading.Event())
    yield


def test_database_clock_follows_the_servers_clock_not_the_hosts(fresh_warning: None) -> None:
    """A reading is the server's time at the sample plus the local elapsed time, so a host whose
    wall clock is wrong still reads the server's time; a refresh takes a new sample."""
    readings = iter([T0, T0 + 100.0])
    clock = DatabaseClock(lambda: next(readings), refresh=None, samples=1)
    assert T0 <= clock.now() < T0 + 5
    assert clock.sample.skew < -1e7  # the "server" is years behind this host
    clock.refresh()
    assert T0 + 100 <= clock.now() < T0 + 105


def test_database_clock_refreshes_by_itself_until_stopped(fresh_warning: None) -> None:
    offset = [0.0]
    clock = DatabaseClock(lambda: T0 + offset[0], refresh=0.05, samples=1)
    offset[0] = 1000.0  # the server's clock was stepped
    wait_until(lambda: clock.now() >= T0 + 1000, timeout=10)
    clock.stop()
    time.sleep(0.2)  # a refresh already under way may land
    offset[0] = 5000.0
    time.sleep(0.3)
    assert clock.now() < T0 + 5000


def test_a_skewed_host_is_warned_once_naming_the_offset(
    fresh_warning: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="corral.clock")
    clock = DatabaseClock(lambda: time.time() - 300.0, refresh=None)
    clock.refresh()
    clock.refresh()
    warnings = [r.getMessage() for r in caplog.records if r.name == "corral.clock"]
    assert len(warnings) == 1, warnings
    assert "+300.0" in warnings[0] and "ahead" in warnings[0]


@pytest.fixture
def manual_app(app_url: str) -> Iterator[tuple[corral.App, ManualClock]]:
    """An App on a fresh database whose clock stands still at T0 until the test moves it."""
    manual = ManualClock(T0)
    application = corral.App(app_url, clock=manual)
    yield application, manual
    application.close()


def test_an_injected_clock_drives_the_app_worker_and_scheduler(
    manual_app: tuple[corral.App, ManualClock], services: Callable[..., Services]
) -> None:
    """A test's own clock: submits, claims, leases and attempts are stamped with its time,
    whatever the host's clock says."""
    app, manual = manual_app

    @app.task
    def job(ctx: corral.Context) -> str:
        return "ok"

    task_id = job.submit()
    svc = services(app, worker=WorkerConfig(concurrency=2, heartbeat=0.1, lease=30))
    record = app.wait(task_id, timeout=30)
    assert record.state == State.SUCCEEDED
    assert record.enqueued_at == T0 and record.started_at == T0 and record.finished_at == T0
    assert [a.started_at for a in app.store.attempt_list(task_id)] == [T0]
    assert [w.lease_expires_at for w in app.store.worker_list(T0)] == [T0 + 30]
    assert svc.scheduler.clock is manual and app.clock is manual


def test_moving_the_injected_clock_expires_a_lease_without_sleeping(store: Store) -> None:
    """The scheduler's loop reads the injected clock: a lease that ends at T0 + 30 is kept while
    the clock says T0, and rescued as soon as the clock passes it."""
    manual = ManualClock(T0)
    register_worker(store, "w1", now=T0, lease=30)
    task_id = submit(store, T0)
    assert store.task_admit_many(AdmitParams([task_id], T0)) == [task_id]
    assert [c.id for c in store.task_claim(ClaimParams("w1", ["default"], 1, T0 + 30, T0))] == [
        task_id
    ]
    scheduler = Scheduler(store, SchedulerConfig(tick=0.01, reap_every=0.0), clock=manual)
    thread = threading.Thread(target=scheduler.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: scheduler.is_leader, timeout=15)
        time.sleep(0.3)  # rounds at T0: the lease holds
        assert store.task_states([task_id])[task_id] == State.RUNNING
        manual.advance(31)
        # Rescued: its attempt lost (a suspect now: it did not run isolated), nothing else moved.
        wait_until(lambda: store.task_states([task_id])[task_id] != State.RUNNING, timeout=15)
        assert [a.outcome for a in store.attempt_list(task_id)] == ["lost"]
    finally:
        scheduler.stop()
        thread.join(10)
