"""Shared fixtures: a store and a database URL on every backend, a deterministic clock, task
builders, a deadline-based wait, and in-process scheduler + worker services for App tests.

Every behaviour test takes `store`, `store_factory`, `app_url` or `app`, which are parametrised
over the backends: SQLite always, PostgreSQL once `corral.store.postgres` exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
import itertools
import os
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from receivers import Receiver

import corral
from corral.clock import ManualClock
from corral.codec import dumps
from corral.lifecycle import State
from corral.model import AttemptReport, ClaimedTask, NewTask, WorkerInfo
from corral.scheduler.service import Scheduler, SchedulerConfig
from corral.store import Store, open_store
from corral.store.contract import AdmitParams, ClaimParams, CompleteParams, InsertParams
from corral.worker.worker import Worker, WorkerConfig

PG_SERVER = os.environ.get(
    "CORRAL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
).rsplit("/", 1)[0]
REQUIRE_POSTGRES = os.environ.get("CORRAL_REQUIRE_POSTGRES") == "1"
"""Set by CI: there the PostgreSQL half of the suite must run, and fails rather than skips."""
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]
T0 = 1_700_000_000.0
"""The start of the clock of store-level tests: `now` is always passed, never read."""
NO_AGING = dumps({"kind": "none"})
BACKOFF = dumps({"base": 1.0, "cap": 300.0, "factor": 2.0, "jitter": 0.0})


# -- backends ------------------------------------------------------------------------------------


def psycopg_errors() -> tuple[type[BaseException], ...]:
    """A database a test left unreachable (a stopped server, a dropped database) is not checked."""
    try:
        import psycopg
    except ImportError:
        return ()
    return (psycopg.OperationalError,)


@functools.cache
def _postgres_unavailable() -> str | None:
    """Why the PostgreSQL tests can't run here, or None when they can."""
    try:
        if importlib.util.find_spec("psycopg") is None:
            return "psycopg is not installed (pip install -e '.[dev]')"
        import psycopg

        psycopg.connect(f"{PG_SERVER}/postgres", connect_timeout=3).close()
    except Exception as exc:
        return f"no PostgreSQL server answers at {PG_SERVER} ({exc})"
    return None


def _create_database() -> str:
    import psycopg

    name = f"corral_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


_POOLS: weakref.WeakSet[Any] = weakref.WeakSet()
"""Every psycopg pool the tests open (see `_track_pools`), to find one a test left open."""


def _track_pools() -> None:
    """Remember each pool made, so one a test leaves open is closed before its database is
    dropped (not left reconnecting to it and logging into a later test) and fails that test."""
    if importlib.util.find_spec("psycopg_pool") is None:
        return
    import psycopg_pool

    init = psycopg_pool.ConnectionPool.__init__

    def tracked(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        _POOLS.add(self)

    psycopg_pool.ConnectionPool.__init__ = tracked  # type: ignore[method-assign]


_track_pools()


def _close_open_pools(names: list[str]) -> list[str]:
    """Close the pools still open on the databases `names`; say which they were."""
    left: list[str] = []
    for pool in list(_POOLS):
        if pool.closed or not any(f"/{name}" in pool.conninfo for name in names):
            continue
        left.append(f"{pool.name} on {pool.conninfo.rsplit('/', 1)[-1]}")
        with contextlib.suppress(Exception):
            pool.close(timeout=1)
    return left


def _drop_databases(names: list[str]) -> None:
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


ENDED_MISMATCH = (
    "SELECT id, state, finished_at FROM corral_tasks WHERE (finished_at IS NOT NULL) <> "
    "(state IN ('succeeded', 'dead', 'cancelled', 'upstream_failed')) LIMIT 5"
)
"""Tasks whose finished_at disagrees with their state: the indexes over history are partial on
`finished_at IS NOT NULL` (migration 0015), so it must be set exactly when a task has ended."""


def _ended_mismatches(url: str) -> list[Any]:
    """Checked at the end of every test that made a database, on both backends."""
    if url.startswith("sqlite:///"):
        import sqlite3

        path = url.removeprefix("sqlite:///")
        if not os.path.exists(path):
            return []
        with contextlib.closing(sqlite3.connect(path, timeout=30)) as conn:
            try:
                return conn.execute(ENDED_MISMATCH).fetchall()
            except sqlite3.OperationalError:  # never migrated, or not corral's
                return []
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        try:
            return conn.execute(ENDED_MISMATCH).fetchall()
        except psycopg.errors.UndefinedTable:
            return []


class Databases:
    """Fresh, migrated databases of one backend, dropped at the end of the test (after checking
    that every task's finished_at agrees with its state)."""

    def __init__(self, backend: str, tmp_path: Any) -> None:
        if backend == "postgres" and (why := _postgres_unavailable()) is not None:
            if REQUIRE_POSTGRES:
                pytest.fail(f"CORRAL_REQUIRE_POSTGRES=1 but {why}")
            pytest.skip(f"PostgreSQL tests skipped: {why}; set CORRAL_TEST_POSTGRES_URL")
        self.backend = backend
        self._tmp_path = tmp_path
        self._counter = itertools.count()
        self._created: list[str] = []
        self._urls: list[str] = []
        self._stores: list[Store] = []

    def new_url(self, migrate: bool = True) -> str:
        """The URL of a fresh database, with the corral schema unless `migrate` is False."""
        n = next(self._counter)
        if self.backend == "sqlite":
            url = f"sqlite:///{self._tmp_path}/t{n}.db"
        else:
            name = _create_database()
            self._created.append(name)
            url = f"{PG_SERVER}/{name}"
        self._urls.append(url)
        if migrate:
            fresh = open_store(url, migrate=False)  # as `corral migrate` does
            fresh.migrate()
            fresh.close()
        return url

    def new_store(self) -> Store:
        """A store on a fresh database: opened, then migrated."""
        store = open_store(self.new_url(migrate=False), migrate=False)
        store.migrate()
        self._stores.append(store)
        return store

    def ended_mismatches(self) -> list[Any]:
        found: list[Any] = []
        for url in self._urls:
            with contextlib.suppress(psycopg_errors()):
                found.extend(_ended_mismatches(url))
        return found

    def cleanup(self) -> None:
        for store in self._stores:
            with contextlib.suppress(Exception):
                store.close()
        if self._created:
            left = _close_open_pools(self._created)
            _drop_databases(self._created)
            # Closed before the drop (else their threads reconnect into later tests), and a
            # failure of the test that left them: a full run leaves none (stop 26's CI).
            assert not left, f"the test left connection pools open: {left}"


@pytest.fixture(params=BACKENDS)
def databases(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Databases]:
    dbs = Databases(request.param, tmp_path)
    try:
        yield dbs
        mismatched = dbs.ended_mismatches()
        assert not mismatched, f"finished_at disagrees with the state of tasks {mismatched}"
    finally:
        dbs.cleanup()


@pytest.fixture
def store_factory(databases: Databases) -> Callable[[], Store]:
    """Call it for a fresh migrated store (e.g. one per hypothesis example)."""
    return databases.new_store


@pytest.fixture
def store(databases: Databases) -> Store:
    """A fresh migrated store on each backend."""
    return databases.new_store()


@pytest.fixture
def app_url(databases: Databases) -> str:
    """The URL of a fresh database on each backend, for tests that build an App (or processes)."""
    return databases.new_url()


@pytest.fixture
def clock() -> ManualClock:
    """A clock the test moves (`clock.advance(s)`), at T0: give it to an App (`clock=`)."""
    return ManualClock(T0)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on 127.0.0.1 (tests/receivers.py), closed at the end of the test."""
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def app(app_url: str) -> Iterator[corral.App]:
    application = corral.App(app_url)
    yield application
    application.close()


# -- helpers -------------------------------------------------------------------------------------


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll `predicate` until it returns something truthy (returned); fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout}s: {predicate}")
        time.sleep(interval)


def new_task(**overrides: Any) -> NewTask:
    """A NewTask with plain defaults (pool and group "default", no ageing, no retries)."""
    base = NewTask(
        name="job",
        pool="default",
        group="default",
        priority=0,
        level=0,
        aging=NO_AGING,
        args="[]",
        kwargs="{}",
        max_retries=0,
        backoff=BACKOFF,
        max_runtime=None,
        on_timeout="retry",
    )
    return replace(base, **overrides)


def submit(store: Store, now: float = T0, **overrides: Any) -> int:
    """Insert one task; return its id."""
    return store.task_insert_many(InsertParams([new_task(**overrides)], now))[0].id


def register_worker(
    store: Store, worker_id: str = "w1", now: float = T0, concurrency: int = 4, lease: float = 1e6
) -> None:
    info = WorkerInfo(worker_id, "test-host", 1, ("default",), concurrency)
    store.worker_register(info, now + lease, now)


def start(store: Store, task_id: int, now: float = T0, worker_id: str = "w1") -> ClaimedTask:
    """Admit and claim one ready task (nothing else may be admitted); return the claim."""
    assert store.task_admit_many(AdmitParams([task_id], now)) == [task_id]
    claimed = store.task_claim(ClaimParams(worker_id, ["default"], 1, now + 30, now))
    assert [c.id for c in claimed] == [task_id]
    return claimed[0]


def finish(
    store: Store, claim: ClaimedTask, target: State, now: float = T0, worker_id: str = "w1"
) -> None:
    """Record the end of a claimed attempt with the outcome that leads to `target`."""
    outcome = {
        State.SUCCEEDED: "succeeded",
        State.DEAD: "failed",
        State.RETRY_WAIT: "failed",
        State.CANCELLED: "cancelled",
        State.READY: "released",
    }[target]
    report = AttemptReport(
        task_id=claim.id,
        attempt=claim.attempt,
        outcome=outcome,  # type: ignore[arg-type]
        target=target,
        counts_as_failure=outcome == "failed",
        worker_id=worker_id,
        retry_at=now + 1 if target == State.RETRY_WAIT else None,
    )
    assert store.task_complete_many(CompleteParams([report], now)) == [claim.id]


# -- in-process services -------------------------------------------------------------------------


class Services:
    """A Scheduler in one thread and a Worker (on its own asyncio loop) in another, both on
    `app`'s database, for the duration of a test."""

    def __init__(
        self,
        app: corral.App,
        worker: WorkerConfig | None = None,
        scheduler: SchedulerConfig | None = None,
    ) -> None:
        self.app = app
        self.worker_config = worker or WorkerConfig(concurrency=4, heartbeat=0.1, grace=2.0)
        self.scheduler = Scheduler(
            app.store,
            scheduler or SchedulerConfig(reap_every=0.2),
            clock=app.clock,
            services=app.schedules.services(interval=0.05),
        )
        self.worker: Worker | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._worker_ready = threading.Event()
        self._errors: list[BaseException] = []
        self._scheduler_thread = threading.Thread(
            target=self._guard, args=(self.scheduler.run,), name="test-scheduler", daemon=True
        )
        self._worker_thread = threading.Thread(
            target=self._guard, args=(self._run_worker,), name="test-worker", daemon=True
        )

    def _guard(self, target: Callable[[], Any]) -> None:
        try:
            target()
        except BaseException as exc:  # surfaced by stop()
            self._errors.append(exc)
            self._worker_ready.set()

    def _run_worker(self) -> None:
        async def main() -> None:
            self.worker = Worker.of(self.app, self.worker_config)
            self._loop = asyncio.get_running_loop()
            self._worker_ready.set()
            await self.worker.run()

        asyncio.run(main())

    def start(self) -> Services:
        self._scheduler_thread.start()
        self._worker_thread.start()
        assert self._worker_ready.wait(10), "the worker did not start"
        return self

    def stop_scheduler(self, timeout: float = 10.0) -> None:
        self.scheduler.stop()
        self._scheduler_thread.join(timeout)
        assert not self._scheduler_thread.is_alive(), "the scheduler did not stop"

    def request_worker_stop(self) -> None:
        """What SIGTERM does: stop claiming, drain within the grace period, release the rest."""
        if self._loop is not None and self.worker is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self.worker.request_stop)

    def stop_worker(self, timeout: float = 15.0) -> None:
        self.request_worker_stop()
        self._worker_thread.join(timeout)
        assert not self._worker_thread.is_alive(), "the worker did not stop"

    def stop(self) -> None:
        if self._scheduler_thread.is_alive():
            self.stop_scheduler()
        if self._worker_thread.is_alive():
            self.stop_worker()
        if self._errors:
            raise self._errors[0]


@pytest.fixture
def services() -> Iterator[Callable[..., Services]]:
    """`services(app, worker=WorkerConfig(...), scheduler=SchedulerConfig(...))` starts a
    scheduler and a worker; they are stopped (and their errors raised) at the end of the test."""
    started: list[Services] = []

    def run(app: corral.App, **configs: Any) -> Services:
        svc = Services(app, **configs).start()
        started.append(svc)
        return svc

    yield run
    for svc in reversed(started):
        svc.stop()


@pytest.fixture
def scheduler(app: corral.App) -> Iterator[Scheduler]:
    """A scheduler thread in the test process that reaps expired leases quickly (for tests
    whose workers are real processes)."""
    config = SchedulerConfig(tick=0.05, reap_every=0.2, prefetch=4)
    sched = Scheduler(app.store, config, clock=app.clock)
    thread = threading.Thread(target=sched.run, daemon=True)
    thread.start()
    yield sched
    sched.stop()
    thread.join(10)
