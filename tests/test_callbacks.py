"""State-change callbacks on both backends: delivered from the event rows, each with its event;
isolated (a failing or slow callback harms neither the task, the worker nor the other callbacks);
one deliverer at a time under a lease; redelivered after a worker is SIGKILLed; and, on
PostgreSQL, no event skipped when ids commit out of order."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import T0, Services, submit, wait_until

import corral
from corral.callbacks import CallbackService
from corral.lifecycle import TERMINAL, State
from corral.scheduler.service import Scheduler
from corral.store import Store
from corral.store.contract import Lease, LeaseKind
from corral.worker.worker import WorkerConfig


def test_callbacks_get_their_events_and_bad_ones_harm_nothing(
    app: corral.App, services: Callable[..., Services], caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[corral.StateChange] = []
    dead: list[corral.StateChange] = []
    slow_done = threading.Event()
    lock = threading.Lock()

    def record(change: corral.StateChange) -> None:
        with lock:
            seen.append(change)

    def explode(change: corral.StateChange) -> None:
        raise RuntimeError("callback bug")

    def slow(change: corral.StateChange) -> None:
        time.sleep(2.0)
        slow_done.set()

    async def on_dead(change: corral.StateChange) -> None:
        dead.append(change)

    app.on("*")(record)
    app.on("succeeded")(explode)
    app.on("dead")(on_dead)

    @app.task(on_state={"succeeded": [slow, explode]})
    def ok(ctx: corral.Context, n: int) -> int:
        return n

    @app.task
    def broken(ctx: corral.Context) -> None:
        raise ValueError("boom")

    caplog.set_level(logging.ERROR, logger="corral.callbacks")
    ids = [ok.submit(n) for n in range(5)]
    failing = broken.submit()
    started = time.monotonic()
    services(app, worker=WorkerConfig(concurrency=4, callback_timeout=0.5, callback_poll=0.05))
    assert all(app.wait(i, timeout=20).state == State.SUCCEEDED for i in ids)
    assert app.wait(failing, timeout=20).state == State.DEAD

    def delivered_all() -> bool:
        with lock:
            got = {c.event.id for c in seen}
        return all(e.id in got for t in [*ids, failing] for e in app.store.event_list(t))

    wait_until(delivered_all, timeout=20)
    # Delivered once each (no crash here), with the event row as stored and its task.
    with lock:
        counts = Counter(c.event.id for c in seen)
        by_id = {c.event.id: c for c in seen}
    assert set(counts.values()) == {1}
    for task_id in [*ids, failing]:
        for event in app.store.event_list(task_id):
            change = by_id[event.id]
            assert change.event == event
            assert change.task_name == ("broken" if task_id == failing else "ok")
            assert change.group == "default" and change.workflow_id is None
    assert [c.task_id for c in dead] == [failing]
    assert dead[0].state == "dead" and dead[0].detail["outcome"] == "failed"
    assert dead[0].error is not None and dead[0].error.type == "ValueError"
    # The slow callback was abandoned after its time limit: the rest went on without it.
    assert time.monotonic() - started < 15
    wait_until(lambda: any("overran 0.5s; abandoned" in r.getMessage() for r in caplog.records))
    assert any("failed" in r.getMessage() and r.exc_info for r in caplog.records)


def test_callback_registration_is_checked(app: corral.App) -> None:
    with pytest.raises(corral.ConfigError, match="unknown event kind 'finished'"):
        app.on("finished")
    with pytest.raises(corral.ConfigError, match="at least one event kind"):
        app.on()
    with pytest.raises(corral.ConfigError, match="not callable"):

        @app.task(on_state={"dead": "page someone"})
        def job(ctx: corral.Context) -> None: ...


def test_one_deliverer_at_a_time_and_redelivery_after_its_lease(app: corral.App) -> None:
    """Two services on one store: the lease holder delivers; one that stalls mid-batch (its
    cursor not moved) loses the lease, and the other delivers the same events again."""
    got: list[int] = []
    app.on("submitted")(lambda change: got.append(change.event.id))
    first = CallbackService(app.store, app.registry, "first", lease=2.0)
    second = CallbackService(app.store, app.registry, "second", lease=2.0)
    ids = [submit(app.store, time.time()) for _ in range(3)]
    now = time.time()
    assert app.store.lease_acquire(Lease(LeaseKind.CONSUMER, "callbacks", "first", now + 2), now)
    assert second.run_once(now) == 0  # not the holder: delivers nothing
    feed = app.store.event_fetch_unseen("callbacks", 100)
    assert [f.event.task_id for f in feed] == ids
    # "first" stops here, as if killed: it delivered nothing and never moved the cursor.
    position = (feed[-1].xid, feed[-1].event.id)
    assert not app.store.consumer_advance("callbacks", "second", position, now)
    later = now + 3  # first's lease has expired
    assert second.run_once(later) == 3
    assert got == [f.event.id for f in feed]  # the same events, delivered by the other
    assert not app.store.consumer_advance("callbacks", "first", (0, 0), later)
    assert first.run_once(later + 0.1) == 0
    assert app.store.event_fetch_unseen("callbacks", 100) == []


@pytest.mark.postgres
def test_postgres_feed_waits_for_an_earlier_id_that_commits_later(store: Store) -> None:
    """Event ids come from a sequence: an event can commit after one with a higher id. A cursor
    on "the last id seen" would skip it; the feed holds back until it is committed."""
    if not store.url.startswith("postgres"):
        pytest.skip("SQLite assigns ids in commit order")
    import psycopg

    task_id = submit(store, T0)
    assert store.lease_acquire(Lease(LeaseKind.CONSUMER, "c", "me", T0 + 60), T0)
    first = store.event_fetch_unseen("c", 100)
    store.consumer_advance("c", "me", (first[-1].xid, first[-1].event.id), T0)
    insert = (
        "INSERT INTO corral_events (task_id, at, kind, attempt) VALUES (%s, %s, 'note', 0) "
        "RETURNING id"
    )
    # A transaction open in another database of the server holds nothing back here.
    elsewhere = psycopg.connect(store.url.rsplit("/", 1)[0] + "/postgres")
    elsewhere.execute("SELECT pg_current_xact_id()")  # it has a transaction id, and stays open
    ahead = submit(store, T0)
    assert [f.event.task_id for f in store.event_fetch_unseen("c", 100)] == [ahead]
    mark = store.event_fetch_unseen("c", 100)[-1]
    store.consumer_advance("c", "me", (mark.xid, mark.event.id), T0)
    elsewhere.close()
    with psycopg.connect(store.url) as slow:  # a transaction that stays open
        early = slow.execute(insert, (task_id, T0)).fetchone()
        with psycopg.connect(store.url, autocommit=True) as quick:
            late = quick.execute(insert, (task_id, T0)).fetchone()
        assert early is not None and late is not None and early[0] < late[0]
        assert store.event_fetch_unseen("c", 100) == []  # the open transaction holds it back
        slow.commit()
    feed = store.event_fetch_unseen("c", 100)
    assert [f.event.id for f in feed] == [early[0], late[0]]


# -- a real worker process, SIGKILLed -------------------------------------------------------------

WORKER_SCRIPT = """
import os, sys, time
import corral
from corral.worker.worker import WorkerConfig, run_worker

url, journal, hang = sys.argv[1], sys.argv[2], sys.argv[3]
app = corral.App(url)

def noted(change):
    with open(journal, "a") as f:
        f.write(f"{os.getpid()} {change.task_id} {change.event.id} {change.kind}\\n")
    while os.path.exists(hang):  # the first worker gets stuck here, and is killed
        time.sleep(0.05)

@app.task(on_state={"succeeded": noted})
def work(ctx, n):
    return n

run_worker(app, WorkerConfig(concurrency=4, lease=2, heartbeat=0.5, poll=0.05, grace=2,
                             callback_lease=2, callback_timeout=60, callback_poll=0.05))
"""


def journal(path: Path) -> list[tuple[int, int, int, str]]:
    if not path.exists():
        return []
    rows = [line.split() for line in path.read_text().splitlines()]
    return [(int(p), int(t), int(e), k) for p, t, e, k in rows]


def test_callbacks_are_delivered_after_a_worker_crash(
    app: corral.App, app_url: str, tmp_path: Path, scheduler: Scheduler
) -> None:
    @app.task
    def work(ctx: corral.Context, n: int) -> int: ...

    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(WORKER_SCRIPT))
    log, hang = tmp_path / "journal.txt", tmp_path / "hang"
    hang.touch()
    ids = [work.submit(n) for n in range(6)]
    command = [sys.executable, str(script), app_url, str(log), str(hang)]
    first = subprocess.Popen(command)
    second: subprocess.Popen[bytes] | None = None
    try:
        wait_until(
            lambda: all(s in TERMINAL for s in app.store.task_states(ids).values()), timeout=30
        )
        wait_until(lambda: journal(log), timeout=20)  # a callback started, and hangs
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        hang.unlink()
        second = subprocess.Popen(command)

        def succeeded_events() -> dict[int, int]:
            return {
                t: next(e.id for e in app.store.event_list(t) if e.kind == "succeeded") for t in ids
            }

        expected = succeeded_events()
        wait_until(
            lambda: (
                {(t, e) for p, t, e, _ in journal(log) if p == second.pid} >= set(expected.items())
            ),
            timeout=30,
        )
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(15)
    lines = journal(log)
    by_first = {(t, e) for p, t, e, _ in lines if p == first.pid}
    by_second = {(t, e) for p, t, e, _ in lines if p == second.pid}
    assert by_first and by_first <= by_second  # what the killed one started was delivered again
    assert by_second == set(expected.items())  # each with its own event
    assert all(kind == "succeeded" for *_, kind in lines)
    assert all(app.get(t).state == State.SUCCEEDED for t in ids)  # the tasks were unharmed


def test_stuck_callbacks_do_not_starve_the_others(app: corral.App) -> None:
    """With a pool of 2 threads and 2 callbacks that never return, every other call still runs:
    each stuck thread is replaced once its call overran."""
    release = threading.Event()
    quick: list[int] = []

    def stuck(change: corral.StateChange) -> None:
        release.wait(30)

    app.on("submitted")(stuck)
    app.on("submitted")(lambda change: quick.append(change.task_id))
    service = CallbackService(app.store, app.registry, "me", timeout=0.2, threads=2)
    assert app.store.lease_acquire(
        Lease(LeaseKind.CONSUMER, "callbacks", "me", time.time() + 60), time.time()
    )
    ids = [submit(app.store, time.time()) for _ in range(20)]
    feed = app.store.event_fetch_unseen("callbacks", 100)
    started = time.monotonic()
    service._deliver(feed[:2])  # per event: a stuck call, then a quick one
    app.callbacks["submitted"].remove(stuck)
    service._deliver(feed[2:])
    release.set()
    assert sorted(quick) == ids
    assert time.monotonic() - started < 5
