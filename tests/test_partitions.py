"""PostgreSQL's day partitions of the history (events, logs, attempts): migration 0009 keeps the
rows, the pruner makes days ahead and drops whole days that corral.retention lets go, never one
that a stored task or an undelivered event needs; the event feed reads across days in commit
order. (SQLite has no partitions: its retention tests are tests/test_retention.py.)"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from conftest import Databases, finish, register_worker, start, submit

from corral.lifecycle import State
from corral.model import LogLine
from corral.retention import DAY, DEFAULT_RETENTION, day_of, plan
from corral.store import Store, open_store
from corral.store.contract import CancelParams, Lease, LeaseKind
from corral.store.postgres import queries as q
from corral.store.postgres.partitions import day_name
from corral.store.postgres.store import migrations

pytestmark = pytest.mark.postgres
D = day_of(1_700_000_000.0) + 3600  # one in the morning of a UTC day (2023-11-14)
LATE = day_of(D) + DAY + DEFAULT_RETENTION + 60  # that day ended more than a week before
HISTORY = ("corral_events", "corral_logs", "corral_attempts")


@pytest.fixture
def pg(tmp_path: Any) -> Iterator[Databases]:
    dbs = Databases("postgres", tmp_path)
    try:
        yield dbs
    finally:
        dbs.cleanup()


@pytest.fixture
def store(pg: Databases) -> Store:
    store = pg.new_store()
    register_worker(store, lease=1e9)
    return store


def sql(store: Store, statement: str, params: Any = None) -> list[Any]:
    with psycopg.connect(store.url, autocommit=True) as conn:
        cur = conn.execute(statement.encode() if params is None else statement, params)
        return cur.fetchall() if cur.description is not None else []


def partitions(store: Store) -> set[str]:
    rows = sql(
        store,
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = ANY(%s)",
        (list(HISTORY),),
    )
    return {r[0] for r in rows}


def where(store: Store, table: str, task_id: int) -> list[str]:
    """The partitions holding the task's rows of `table`, raw (reads hide a pruned task's)."""
    rows = sql(
        store,
        f"SELECT DISTINCT tableoid::regclass::text FROM {table} WHERE task_id = %s",
        (task_id,),
    )
    return sorted(r[0] for r in rows)


def prune(store: Store, now: float) -> int:
    return store.task_prune(plan(store.retention_get(), now))


def done(store: Store, now: float = D, **task: Any) -> int:
    """A task submitted, run (one log line) and succeeded at `now`."""
    task_id = submit(store, now, **task)
    claim = start(store, task_id, now)
    store.log_append_many([LogLine(task_id, claim.attempt, now, 20, "loaded")])
    finish(store, claim, State.SUCCEEDED, now)
    return task_id


def day(table: str, moment: float = D) -> str:
    return day_name(table, day_of(moment))


def test_the_migration_keeps_the_history(pg: Databases) -> None:
    """A database at migration 7 with history (recent days and one two months old): migrated to
    9, every row is still there and readable through the store, each in its day or DEFAULT."""
    url = pg.new_url(migrate=False)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(q.CREATE_MIGRATIONS)
        for version, script in migrations():
            # 12, 13, 14 and 20 add columns that today's code writes with every task, and 22
            # and 24 tables a single submit reads (the history below is written by it); they
            # touch nothing migration 9 moves.
            if version <= 7 or version in (12, 13, 14, 20, 22, 24):
                conn.execute(script.encode())
                conn.execute(q.RECORD_MIGRATION, (version, time.time()))
    store = open_store(url, migrate=False)
    try:
        register_worker(store, lease=1e9)
        now = time.time()
        old, recent = (done(store, now=t) for t in (now - 60 * DAY, now - 2 * DAY))
        before = {
            t: (store.event_list(t), store.attempt_list(t), store.log_list(t))
            for t in (old, recent)
        }
        assert all(all(parts) for parts in before.values())
        assert 9 in store.migrate()
        for task_id, history in before.items():
            assert (
                store.event_list(task_id),
                store.attempt_list(task_id),
                store.log_list(task_id),
            ) == history
        for table in HISTORY:
            assert where(store, table, recent) == [day(table, now - 2 * DAY)]
            assert where(store, table, old) == [f"{table}_default"]
            assert {day(table, now + n * DAY) for n in range(3)} <= partitions(store)
        event_id = max(e.id for e in before[recent][0])
        later = submit(store, now)  # the id sequences carry on
        assert min(e.id for e in store.event_list(later)) > event_id
    finally:
        store.close()


def test_the_pruner_makes_today_and_the_next_two_days(store: Store) -> None:
    assert not any(day(t) in partitions(store) for t in HISTORY)
    prune(store, D)
    made = partitions(store)
    assert {day(t, D + n * DAY) for t in HISTORY for n in range(3)} <= made
    prune(store, D + 60)
    assert partitions(store) == made  # made once
    task_id = done(store)
    assert [where(store, t, task_id) for t in HISTORY] == [[day(t)] for t in HISTORY]


def test_a_row_outside_every_day_lands_in_default_and_moves_in_when_its_day_is_made(
    store: Store,
) -> None:
    task_id = done(store, now=D)  # no day made yet: DEFAULT takes every row
    assert [where(store, t, task_id) for t in HISTORY] == [[f"{t}_default"] for t in HISTORY]
    history = store.event_list(task_id), store.attempt_list(task_id), store.log_list(task_id)
    prune(store, D)  # makes the day: its rows move in from DEFAULT
    assert [where(store, t, task_id) for t in HISTORY] == [[day(t)] for t in HISTORY]
    assert (
        store.event_list(task_id),
        store.attempt_list(task_id),
        store.log_list(task_id),
    ) == history


def test_a_day_that_only_pruned_tasks_used_is_dropped_whole(store: Store) -> None:
    prune(store, D)
    tasks = [done(store) for _ in range(3)]
    submit(store, LATE)  # a later task, kept
    assert prune(store, LATE) == 3
    assert not any(day(t) in partitions(store) for t in HISTORY)
    assert all(store.task_get(t) is None and not store.event_list(t) for t in tasks)
    assert day(HISTORY[0], D + DAY) in partitions(store)  # an empty day is dropped only once it
    assert day(HISTORY[0], LATE) in partitions(store)  # ended before the drop line too


def test_a_day_holding_a_stored_task_is_kept_and_hides_the_pruned_ones(store: Store) -> None:
    prune(store, D)
    pruned = done(store)
    unfinished = submit(store, D)  # never runs: its submission event holds the events' day
    assert prune(store, LATE) == 1
    assert store.task_get(pruned) is None
    assert store.event_list(pruned) == [] and store.attempt_list(pruned) == []
    assert store.log_list(pruned) == []
    assert where(store, "corral_events", pruned) == [day("corral_events")]  # left for the drop
    assert day("corral_events") in partitions(store)
    assert not {day("corral_logs"), day("corral_attempts")} & partitions(store)  # nothing held
    assert store.event_list(unfinished)
    store.task_cancel(CancelParams(unfinished, LATE))
    assert prune(store, LATE + DEFAULT_RETENTION + 60) == 1
    assert day("corral_events") not in partitions(store)


def test_a_day_holding_an_undelivered_event_is_kept(store: Store) -> None:
    prune(store, D)
    assert store.lease_acquire(Lease(LeaseKind.CONSUMER, "alerts", "me", LATE + 1e9), D)
    task_id = done(store)
    assert prune(store, LATE) == 0  # "alerts" has not read its events
    assert day("corral_events") in partitions(store)
    feed = [f for f in store.event_fetch_unseen("alerts", 1000) if f.event.task_id == task_id]
    last = max(feed, key=lambda f: (f.xid, f.event.id))
    assert store.consumer_advance("alerts", "me", (last.xid, last.event.id), D)
    assert prune(store, LATE) == 1
    assert not any(day(t) in partitions(store) for t in HISTORY)


def test_a_longer_retention_of_a_type_keeps_its_days_and_rows_go_one_by_one(store: Store) -> None:
    store.retention_set("audit", 30 * DAY)
    prune(store, D)
    plain, audit = done(store, name="job"), done(store, name="audit")
    submit(store, LATE)
    assert prune(store, LATE) == 1 and store.task_get(audit) is not None
    assert all(day(t) in partitions(store) for t in HISTORY)  # before the longest retention
    assert all(where(store, t, plain) == [] for t in HISTORY)  # deleted row by row
    assert prune(store, day_of(D) + DAY + 30 * DAY + 60) == 1
    assert not any(day(t) in partitions(store) for t in HISTORY)


def test_the_event_feed_reads_across_days_in_commit_order(store: Store) -> None:
    assert store.lease_acquire(Lease(LeaseKind.CONSUMER, "feed", "me", D + 1e9), D)
    prune(store, D)
    # submitted in this order, at times in day D+1, day D, DEFAULT (far future), day D+2
    moments = [D + DAY, D, D + 400 * DAY, D + 2 * DAY]
    ids = [done(store, now=t) for t in moments]
    assert [where(store, "corral_events", i)[0] for i in ids] == [
        day("corral_events", D + DAY),
        day("corral_events", D),
        "corral_events_default",
        day("corral_events", D + 2 * DAY),
    ]
    feed = store.event_fetch_unseen("feed", 1000)
    order = [(f.xid, f.event.id) for f in feed]
    assert order == sorted(order) and len(set(order)) == len(order)
    first_seen = list(dict.fromkeys(f.event.task_id for f in feed))
    assert first_seen == ids  # commit order, whatever day each event is in
    raw = sql(store, "SELECT count(*) FROM corral_events WHERE xid IS NOT NULL")[0][0]
    assert len(feed) == raw
