"""Table upkeep (corral/upkeep.py, scheduler/upkeep.py): where the server's autovacuum is off, as
this machine's packaged PostgreSQL has it, the leader vacuums and analyzes corral's tables by
autovacuum's own thresholds on the server's counters; with it on, and on SQLite, nothing runs.
The store's part on both backends, the rule as a pure function, the service's thread."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest
from conftest import T0, new_task, wait_until

from corral.scheduler.service import Scheduler, SchedulerConfig
from corral.scheduler.upkeep import Upkeep
from corral.store import Store
from corral.store.contract import CancelParams, InsertParams
from corral.upkeep import TableCounts, TableWork, due


def counts(name: str = "corral_tasks", live: int = 1000, dead: int = 0, changed: int = 0,
           inserted: int = 0) -> TableCounts:  # fmt: skip
    return TableCounts(name, live, dead, changed, inserted)


def test_a_table_is_due_by_autovacuums_default_thresholds() -> None:
    # 1,000 live rows: vacuum past 50 + 200 dead, or 1000 + 200 inserted; analyze past 50 + 100
    assert due([counts(dead=250, changed=150)], autovacuum_on=False) == []
    assert due([counts(dead=251)], False) == [TableWork("corral_tasks", vacuum=True)]
    assert due([counts(inserted=1201)], False) == [TableWork("corral_tasks", vacuum=True)]
    assert due([counts(changed=151)], False) == [TableWork("corral_tasks", vacuum=False)]
    assert due([counts(dead=251, changed=151)], False) == [TableWork("corral_tasks", True)]
    assert due([counts(live=0, dead=51)], False) == [TableWork("corral_tasks", True)]


def test_nothing_is_due_where_autovacuum_is_on() -> None:
    assert due([counts(dead=10**6, changed=10**6, inserted=10**6)], autovacuum_on=True) == []


def test_due_tables_come_in_name_order() -> None:
    tables = [counts("corral_tasks", dead=10**4), counts("corral_events_default", changed=10**4)]
    assert [w.name for w in due(tables, False)] == ["corral_events_default", "corral_tasks"]


def _churn(store: Store, count: int = 400) -> list[int]:
    """Tasks submitted and cancelled: rows changed since the last analyze, dead row versions."""
    results = store.task_insert_many(InsertParams([new_task() for _ in range(count)], T0))
    ids = [r.id for r in results]
    for task_id in ids:
        store.task_cancel(CancelParams(task_id, T0 + 1))
    return ids


def _server_counters(store: Store, table: str) -> tuple[Any, ...]:
    import psycopg

    with psycopg.connect(store.url, autocommit=True) as conn:  # type: ignore[attr-defined]
        row = conn.execute(
            "SELECT n_dead_tup, n_mod_since_analyze, last_vacuum, last_analyze"
            " FROM pg_stat_user_tables WHERE relname = %s",
            (table,),
        ).fetchone()
        assert row is not None
        return tuple(row)


def _autovacuum_on(store: Store) -> bool:
    import psycopg

    with psycopg.connect(store.url, autocommit=True) as conn:  # type: ignore[attr-defined]
        row = conn.execute("SHOW autovacuum").fetchone()
        return row is not None and row[0] == "on"


def test_the_store_vacuums_and_analyzes_the_tables_that_churned(store: Store) -> None:
    ids = _churn(store)
    if type(store).__name__ == "SQLiteStore":
        # SQLite: freed pages are reused from its free list; no statistics are kept
        assert store.table_upkeep() == []
        assert len(store.task_states(ids)) == 400
        return
    if _autovacuum_on(store):
        pytest.skip("this server's autovacuum is on: corral leaves the tables to it")
    # the server's counters reach its statistics views within about a second of the writes
    work = wait_until(
        lambda: [w for w in store.table_upkeep() if w.name == "corral_tasks"], timeout=20
    )
    assert work == [TableWork("corral_tasks", vacuum=True)]
    dead, changed, last_vacuum, last_analyze = wait_until(
        lambda: (c := _server_counters(store, "corral_tasks"))[2] is not None and c, timeout=20
    )
    assert last_vacuum is not None and last_analyze is not None
    assert dead == 0 and changed == 0
    # done: corral_tasks is no longer due, and the tasks are all there
    assert "corral_tasks" not in [w.name for w in store.table_upkeep()]
    assert len(store.task_states(ids)) == 400


def test_the_leaders_upkeep_runs_off_its_round_one_interval_after_it_started(
    store: Store,
) -> None:
    scheduler = Scheduler(store, SchedulerConfig(upkeep_every=30.0, fast_lane=False))
    upkeep = next(s for s in scheduler.services if isinstance(s, Upkeep))
    calls: list[float] = []
    real = store.table_upkeep

    def counted() -> list[TableWork]:
        calls.append(time.monotonic())
        return real()

    store.table_upkeep = counted  # type: ignore[method-assign]
    scheduler.run_once(T0)
    assert calls == []  # the first run is the interval's start
    scheduler.run_once(T0 + 10)
    assert calls == []  # not due yet
    _churn(store)
    time.sleep(1.5)  # PostgreSQL: the counters reach the statistics views
    scheduler.run_once(T0 + 31)
    upkeep.wait(30)
    assert len(calls) == 1
    scheduler.run_once(T0 + 62)  # reports what the last run did, and starts another
    upkeep.wait(30)
    assert len(calls) == 2
    on_postgres = type(store).__name__ == "PostgresStore"
    if on_postgres and not _autovacuum_on(store):
        assert scheduler.work["upkeep"] >= 1
    else:
        assert scheduler.work.get("upkeep", 0) == 0


class _Held:
    """A store whose upkeep waits for the test, or fails."""

    def __init__(self, fail: bool = False) -> None:
        self.release = threading.Event()
        self.calls = 0
        self.fail = fail

    def table_upkeep(self) -> list[TableWork]:
        self.calls += 1
        if self.fail:
            raise RuntimeError("the server went away")
        self.release.wait(10)
        return [TableWork("corral_tasks", True), TableWork("corral_events_default", False)]


def test_a_run_while_the_last_one_works_starts_nothing_and_its_work_is_reported_after() -> None:
    held = _Held()
    upkeep = Upkeep(held, interval=1.0)  # type: ignore[arg-type]
    assert upkeep.run(T0) == 0 and held.calls == 0
    assert upkeep.run(T0 + 1) == 0
    wait_until(lambda: held.calls == 1)
    assert upkeep.run(T0 + 2) == 0  # still working: no second thread
    assert held.calls == 1
    held.release.set()
    upkeep.wait(10)
    assert upkeep.run(T0 + 3) == 2  # the two tables, and a new run starts
    upkeep.wait(10)
    assert held.calls == 2


def test_a_failed_upkeep_is_logged_and_tried_again_at_the_next_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failing = _Held(fail=True)
    upkeep = Upkeep(failing, interval=1.0)  # type: ignore[arg-type]
    upkeep.run(T0)
    with caplog.at_level(logging.WARNING, logger="corral.scheduler"):
        upkeep.run(T0 + 1)
        upkeep.wait(10)
    assert "table upkeep failed: the server went away" in caplog.text
    assert upkeep.run(T0 + 2) == 0
    upkeep.wait(10)
    assert failing.calls == 2


def test_no_upkeep_service_when_its_interval_is_zero(store: Store) -> None:
    scheduler = Scheduler(store, SchedulerConfig(upkeep_every=0.0))
    assert not any(isinstance(s, Upkeep) for s in scheduler.services)
