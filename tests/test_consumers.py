"""Event consumers on both backends: named readers of the feed, each with its own cursor; every
event once each, in commit order; where a new name starts; a failing handler retried without its
cursor moving, a poison event skipped and recorded only when asked; cursors across a restart;
real processes SIGKILLed mid-batch and handing the lease over; retiring a name; the worker and
the CLI running and showing them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import Services, finish, register_worker, start, submit, wait_until

import corral
from corral.backoff import Backoff
from corral.cli import cli
from corral.clock import ManualClock
from corral.consumers import SKIPPED_KIND, Consumer, ConsumerService, StateChange
from corral.lifecycle import State
from corral.retention import Retention, plan
from corral.store import Store
from corral.store.contract import Lease, LeaseKind
from corral.worker.worker import WorkerConfig

NO_JITTER = Backoff(base=1.0, factor=2.0, cap=60.0, jitter=0.0)


def feed_ids(store: Store) -> list[int]:
    """Every event id in the store's commit order, read by a fresh consumer from the origin."""
    store.consumer_create("reference", at_head=False)
    ids: list[int] = []
    while True:
        store.lease_acquire(
            Lease(LeaseKind.CONSUMER, "reference", "r", time.time() + 60), time.time()
        )
        batch = store.event_fetch_unseen("reference", 1000)
        if not batch:
            break
        ids += [f.event.id for f in batch]
        last = batch[-1]
        store.consumer_advance("reference", "r", (last.xid, last.event.id), time.time())
    store.consumer_retire("reference", time.time() + 120)
    return ids


def drain(service: ConsumerService, now: float) -> None:
    while service.run_once(now) > 0:
        pass


def cursor_of(store: Store, name: str) -> tuple[int, int] | None:
    return next((r.cursor for r in store.consumer_list() if r.name == name), None)


def recorder(into: list[int]) -> Callable[[list[StateChange]], None]:
    return lambda changes: into.extend(c.event.id for c in changes)


def test_two_named_consumers_see_every_event_once_each_in_commit_order(store: Store) -> None:
    seen_a: list[int] = []
    seen_b: list[int] = []
    a = ConsumerService(
        store, store.clock(), Consumer("a", recorder(seen_a), batch=3, start="beginning"), "h1"
    )
    b = ConsumerService(
        store, store.clock(), Consumer("b", recorder(seen_b), batch=3, start="beginning"), "h2"
    )
    register_worker(store, now=time.time())
    for round_ in range(3):
        ids = [submit(store, time.time()) for _ in range(4)]
        finish(store, start(store, ids[0], time.time()), State.SUCCEEDED, time.time())
        drain(a, time.time())
        if round_ == 2:  # "b" lags behind, then catches up
            drain(b, time.time())
    expected = feed_ids(store)
    assert len(expected) == 3 * (4 + 3)  # submitted x4, admitted, running, succeeded
    assert seen_a == expected and seen_b == expected  # each once, in commit order
    cursors = {r.name: r.cursor for r in store.consumer_list()}
    assert cursors["a"] == cursors["b"] and cursors["a"][1] == expected[-1]


def test_a_new_name_starts_now_unless_asked_for_the_beginning(store: Store) -> None:
    before = [submit(store, time.time()) for _ in range(3)]
    from_now: list[int] = []
    from_beginning: list[int] = []
    services = {
        "now": ConsumerService(
            store, store.clock(), Consumer("n", recorder(from_now), start="now"), "me"
        ),
        "beginning": ConsumerService(
            store, store.clock(), Consumer("b", recorder(from_beginning), start="beginning"), "me"
        ),
    }
    assert services["now"].run_once(time.time()) == 0  # creates its row at the head
    assert services["beginning"].run_once(time.time()) == 3  # at the origin: reads them all
    after = [submit(store, time.time()) for _ in range(2)]
    for service in services.values():
        drain(service, time.time())
    events = {e.id: t for t in before + after for e in store.event_list(t)}
    assert [events[e] for e in from_now] == after
    assert [events[e] for e in from_beginning] == before + after


def test_only_the_kinds_asked_for_and_the_cursor_goes_past_the_others(store: Store) -> None:
    got: list[StateChange] = []
    service = ConsumerService(
        store, store.clock(), Consumer("ends", got.extend, kinds=frozenset({"succeeded"}),
                                       start="beginning"), "me",
    )  # fmt: skip
    register_worker(store, now=time.time())
    ids = [submit(store, time.time()) for _ in range(3)]
    for task_id in ids:
        finish(store, start(store, task_id, time.time()), State.SUCCEEDED, time.time())
    assert service.run_once(time.time()) == 12  # every event read past...
    assert [(c.task_id, c.kind, c.state) for c in got] == [(i, "succeeded", "succeeded")
                                                            for i in ids]  # fmt: skip
    assert store.event_fetch_unseen("ends", 100) == []  # ...and the cursor with it


def test_a_failing_handler_is_retried_after_its_backoff_and_the_cursor_waits(
    store: Store,
) -> None:
    clock = ManualClock(time.time())
    calls: list[list[int]] = []
    failures = [RuntimeError("down"), RuntimeError("still down")]

    def handler(changes: list[StateChange]) -> None:
        calls.append([c.task_id for c in changes])
        if failures:
            raise failures.pop(0)

    service = ConsumerService(
        store, clock, Consumer("flaky", handler, start="beginning", backoff=NO_JITTER), "me"
    )
    ids = [submit(store, clock.now()) for _ in range(3)]
    assert service.run_once(clock.now()) == 0  # failed: nothing passed
    origin = cursor_of(store, "flaky")
    assert service.failures == 1
    assert service.run_once(clock.now()) == 0 and len(calls) == 1  # not before its backoff (1 s)
    clock.advance(1.0)
    assert service.run_once(clock.now()) == 0 and len(calls) == 2  # failed again: next is 2 s
    clock.advance(1.5)
    assert service.run_once(clock.now()) == 0 and len(calls) == 2
    assert cursor_of(store, "flaky") == origin  # the cursor never moved past them
    clock.advance(0.5)
    assert service.run_once(clock.now()) == 3
    assert calls == [ids, ids, ids] and service.failures == 0 and service.skipped == 0
    assert store.event_fetch_unseen("flaky", 100) == []


@pytest.mark.parametrize("per_event", [False, True], ids=["batch", "per-event"])
def test_a_poison_event_is_skipped_and_recorded_only_after_max_attempts(
    store: Store, per_event: bool
) -> None:
    clock = ManualClock(time.time())
    ids = [submit(store, clock.now()) for _ in range(5)]
    poison = ids[2]
    handled: list[int] = []

    def handle(change: StateChange) -> None:
        if change.kind != "submitted":
            return  # the skip record, later
        if change.task_id == poison:
            raise ValueError(f"can't handle task {change.task_id}")
        handled.append(change.task_id)

    def handler(value: StateChange | list[StateChange]) -> None:
        for change in [value] if isinstance(value, StateChange) else value:
            handle(change)

    consumer = Consumer("alerts", handler, per_event=per_event, start="beginning",
                        max_attempts=3, backoff=NO_JITTER)  # fmt: skip
    service = ConsumerService(store, clock, consumer, "me")
    for _ in range(12):
        service.run_once(clock.now())
        clock.advance(10)
    assert service.skipped == 1
    assert sorted(set(handled)) == [i for i in ids if i != poison]  # the others all delivered
    if per_event:
        assert handled == [i for i in ids if i != poison]  # each once: progress kept per event
    skips = [e for e in store.event_list(poison) if e.kind == SKIPPED_KIND]
    assert len(skips) == 1
    detail = json.loads(skips[0].detail or "{}")
    assert detail["consumer"] == "alerts" and detail["attempts"] == 3
    assert detail["error"]["type"] == "ValueError"
    assert "test_consumers.py" in detail["error"]["where"]
    # Its own skip record came past too (it is an event), and was handed over like any other.
    assert store.event_fetch_unseen("alerts", 100) == []


def test_without_max_attempts_a_poison_event_blocks_its_consumer(store: Store) -> None:
    clock = ManualClock(time.time())
    ids = [submit(store, clock.now()) for _ in range(3)]

    def handler(change: StateChange) -> None:
        if change.task_id == ids[1]:
            raise ValueError("poison")

    service = ConsumerService(
        store, clock, Consumer("strict", handler, per_event=True, start="beginning",
                               backoff=NO_JITTER), "me",
    )  # fmt: skip
    passed = [service.run_once(clock.now())]
    for _ in range(20):
        clock.advance(120)
        passed.append(service.run_once(clock.now()))
    assert passed == [1] + [0] * 20  # past the first event, then stuck on the second
    assert service.failures == 21 and service.skipped == 0
    assert [f.event.task_id for f in store.event_fetch_unseen("strict", 100)] == ids[1:]
    assert not [e for e in store.event_list(ids[1]) if e.kind == SKIPPED_KIND]


def test_cursors_survive_a_restart_and_retiring_frees_retention(app_url: str) -> None:
    first = corral.App(app_url)
    got: list[int] = []
    first.consumers.add("audit", lambda cs: got.extend(c.task_id for c in cs), start="beginning")
    ids = [submit(first.store, time.time()) for _ in range(4)]
    (service,) = first.consumers.services("one")
    drain(service, time.time())
    with pytest.raises(corral.TransitionRefused, match="'audit' runs: one holds its lease"):
        first.consumers.retire("audit")
    first.store.consumer_release("audit", "one")
    first.close()

    again = corral.App(app_url)  # a restart: another process, another holder
    again.consumers.add("audit", lambda cs: got.extend(c.task_id for c in cs), start="beginning")
    more = [submit(again.store, time.time()) for _ in range(2)]
    (service,) = again.consumers.services("two")
    drain(service, time.time())
    assert got == ids + more  # resumed from its cursor: nothing again, nothing skipped
    again.store.consumer_release("audit", "two")

    # A consumer that stopped reading holds back the pruning of what it has not read...
    register_worker(again.store, now=time.time())
    late = submit(again.store, time.time())
    finish(again.store, start(again.store, late, time.time()), State.SUCCEEDED, time.time())
    submit(again.store, time.time())  # a newer event (SQLite keeps the newest)
    prune = plan(Retention(default=1.0), time.time() + 3600)
    assert again.store.task_prune(prune) == 0
    assert late in again.store.task_states([late])
    # ...until it is retired.
    assert [r.name for r in again.consumers.list()] == ["audit"]
    again.consumers.retire("audit")
    assert again.consumers.list() == []
    assert again.store.task_prune(prune) == 1
    assert late not in again.store.task_states([late])
    with pytest.raises(corral.ConfigError, match="no event consumer named 'audit'"):
        again.consumers.retire("audit")
    again.close()


def test_consumer_registration_is_checked(app: corral.App) -> None:
    def handler(changes: list[StateChange]) -> None: ...

    with pytest.raises(corral.ConfigError, match="unknown event kind"):
        app.consumers.add("x", handler, kinds=["finished"])
    with pytest.raises(corral.ConfigError, match="kinds is empty"):
        app.consumers.add("x", handler, kinds=[])
    with pytest.raises(corral.ConfigError, match="batch"):
        app.consumers.add("x", handler, batch=0)
    with pytest.raises(corral.ConfigError, match="start must be one of"):
        app.consumers.add("x", handler, start="yesterday")  # type: ignore[arg-type]
    with pytest.raises(corral.ConfigError, match="max_attempts"):
        app.consumers.add("x", handler, max_attempts=0)
    with pytest.raises(corral.ConfigError, match="not callable"):
        app.consumers.add("x", "page someone")  # type: ignore[arg-type]
    with pytest.raises(corral.ConfigError, match="corral's own"):
        app.consumers.add("callbacks", handler)
    with pytest.raises(corral.ConfigError, match="reserved"):
        app.consumers.add("*", handler)
    with pytest.raises(corral.ConfigError, match="consumer name"):
        app.consumers.add("", handler)
    app.consumers("x", kinds="dead")(handler)
    with pytest.raises(corral.ConfigError, match="registered already"):
        app.consumers.add("x", handler)
    assert app.consumers.get("x").kinds == frozenset({"dead"})


def test_workers_run_the_apps_consumers(app: corral.App, services: Callable[..., Services]) -> None:
    got: list[tuple[int, str]] = []
    lock = threading.Lock()

    @app.consumers(
        "audit", kinds=["succeeded", "dead"], per_event=True, poll=0.05, start="beginning"
    )  # the worker may start it after the submits
    async def audit(change: StateChange) -> None:  # a coroutine handler
        with lock:
            got.append((change.task_id, change.kind))

    @app.task
    def ok(ctx: corral.Context, n: int) -> int:
        return n

    services(app, worker=WorkerConfig(concurrency=2, heartbeat=0.1, grace=2.0))
    ids = [ok.submit(n) for n in range(4)]
    assert all(app.wait(i, timeout=20).state == State.SUCCEEDED for i in ids)
    wait_until(lambda: len(got) >= 4, timeout=20)
    with lock:
        assert sorted(got) == [(i, "succeeded") for i in ids]


def test_notices_wake_the_consumer(app: corral.App) -> None:
    """With a poll of a minute, only a wake-up can deliver within the wait (PostgreSQL: NOTIFY;
    SQLite: a datagram from the submitting process, corral.store.sqlite.wake)."""
    got: list[int] = []
    app.consumers.add("fast", lambda cs: got.extend(c.task_id for c in cs), poll=60.0)
    stop = threading.Event()
    (service,) = app.consumers.services("me")
    thread = service.start(stop)
    try:
        wait_until(lambda: service.holds_lease, timeout=10)
        submitted: list[int] = []

        def woken() -> bool:  # a submit notifies the scheduler's channel
            submitted.append(submit(app.store, time.time()))
            return bool(got)

        wait_until(woken, timeout=15, interval=0.5)
        assert got[0] in submitted
    finally:
        stop.set()
        thread.join(5)


# -- real processes, SIGKILLed and handing over ---------------------------------------------------

CONSUMER_SCRIPT = """
import os, signal, sys, threading, time
import corral

url, journal, hang = sys.argv[1], sys.argv[2], sys.argv[3]
app = corral.App(url)

def noted(changes):
    with open(journal, "a") as f:
        for change in changes:
            f.write(f"{os.getpid()} {change.event.id}\\n")
    # The first process gets stuck here on a batch with an event from the one the file names.
    while os.path.exists(hang) and max(c.event.id for c in changes) >= int(open(hang).read()):
        time.sleep(0.05)

stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())  # a clean stop: the lease is released
app.consumers.add("journal", noted, batch=4, start="beginning", lease=2.0, poll=0.05)
app.consumers.run(stop=stop)
"""


def journal(path: Path) -> list[tuple[int, int]]:
    if not path.exists():
        return []
    return [(int(p), int(e)) for p, e in (ln.split() for ln in path.read_text().splitlines())]


def consumer_process(tmp_path: Path, app_url: str) -> Callable[[], subprocess.Popen[bytes]]:
    script = tmp_path / "consumer.py"
    script.write_text(textwrap.dedent(CONSUMER_SCRIPT))
    command = [sys.executable, str(script), app_url, str(tmp_path / "journal"),
               str(tmp_path / "hang")]  # fmt: skip
    return lambda: subprocess.Popen(command)


def stop_all(*procs: subprocess.Popen[bytes] | None) -> None:
    for proc in procs:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)


def test_a_consumer_killed_mid_batch_redelivers_from_its_cursor(
    app: corral.App, app_url: str, tmp_path: Path
) -> None:
    log, hang = tmp_path / "journal", tmp_path / "hang"
    for _ in range(12):
        submit(app.store, time.time())
    expected = feed_ids(app.store)
    hang.write_text(str(expected[4]))  # batches of 4: the first passes, the second hangs
    launch = consumer_process(tmp_path, app_url)
    first = launch()
    second = None
    try:
        wait_until(lambda: len(journal(log)) >= 8, timeout=30)
        time.sleep(0.3)  # stuck in the handler: nothing more comes
        assert len(journal(log)) == 8
        assert cursor_of(app.store, "journal") is not None
        assert cursor_of(app.store, "journal")[1] == expected[3]  # type: ignore[index]
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        hang.unlink()
        second = launch()  # takes the lease once the killed one's expires
        wait_until(lambda: {e for _, e in journal(log)} >= set(expected), timeout=30)
        wait_until(lambda: cursor_of(app.store, "journal") == (0, expected[-1])
                   or app.url.startswith("postgres"), timeout=30)  # fmt: skip
    finally:
        stop_all(first, second)
    lines = journal(log)
    by_first = [e for p, e in lines if p == first.pid]
    by_second = [e for p, e in lines if p == second.pid]
    assert by_first == expected[:8]
    assert by_second == expected[4:]  # from its cursor: the unacknowledged batch again, then on


def test_the_lease_passes_between_two_processes(
    app: corral.App, app_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "journal"
    launch = consumer_process(tmp_path, app_url)
    first, second = launch(), None
    try:
        wait_until(lambda: any(r.held(time.time()) for r in app.consumers.list()), timeout=30)
        second = launch()
        batch1 = [submit(app.store, time.time()) for _ in range(5)]
        wait_until(lambda: len(journal(log)) >= 5, timeout=30)
        holder = next(r.holder for r in app.consumers.list())
        assert holder is not None and holder.split(":")[1] == str(first.pid)
        first.send_signal(signal.SIGTERM)  # a clean stop releases the lease at once
        first.wait(15)
        batch2 = [submit(app.store, time.time()) for _ in range(5)]
        wait_until(lambda: len(journal(log)) >= 10, timeout=30)
    finally:
        stop_all(first, second)
    lines = journal(log)
    assert [p for p, _ in lines] == [first.pid] * 5 + [second.pid] * 5  # one reader at a time
    events = {e.id: e.task_id for t in batch1 + batch2 for e in app.store.event_list(t)}
    assert [events[e] for _, e in lines] == batch1 + batch2  # each once, nothing twice


def test_cli_lists_and_retires_consumers(app: corral.App, app_url: str) -> None:
    app.consumers.add("audit", lambda cs: None)
    (service,) = app.consumers.services("me")
    service.run_once(time.time())
    runner = CliRunner()
    shown = runner.invoke(cli, ["--database-url", app_url, "consumers"])
    assert shown.exit_code == 0 and shown.output.startswith("audit: held by me for ")
    refused = runner.invoke(cli, ["--database-url", app_url, "consumers", "retire", "audit"])
    assert refused.exit_code == 1 and "stop it first" in refused.output
    app.store.consumer_release("audit", "me")
    as_json = runner.invoke(cli, ["--database-url", app_url, "consumers", "--json"])
    assert json.loads(as_json.output)[0]["holder"] is None
    retired = runner.invoke(cli, ["--database-url", app_url, "consumers", "retire", "audit"])
    assert retired.exit_code == 0 and retired.output == "audit: retired\n"
    empty = runner.invoke(cli, ["--database-url", app_url, "consumers"])
    assert empty.output == "No event consumers stored yet.\n"
