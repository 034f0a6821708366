"""A client reconnects, and a retried submit never stores a task twice.

On both backends: a submit id names one submit call, and a call under a known id returns the
tasks stored then (any state), adding nothing. On PostgreSQL, with the real server: every corral
session terminated (`pg_terminate_backend`) while an App, a scheduler and a worker run, after
which nothing reaches a caller as an error; and a TCP proxy in front of the server that loses the
reply to a COMMIT it forwarded (the server committed, the client can't know), after which a
submit, a `submit_many` (both insert paths), a workflow and a claim are each stored or taken once,
an operator's cancel is not repeated, and retries end, bounded, in a clear ConnectionLost.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import T0, Services, finish, new_task, register_worker, start, wait_until

import corral
from corral.errors import ConfigError, ConnectionLost
from corral.lifecycle import State
from corral.model import TaskQuery
from corral.store import Store, open_store
from corral.store.contract import AdmitParams, ClaimParams, InsertParams

try:  # without it the `databases` fixture skips (or fails) the PostgreSQL tests
    import psycopg
except ImportError:  # pragma: no cover
    psycopg = None  # type: ignore[assignment]

ON_POSTGRES = [
    pytest.mark.postgres,
    pytest.mark.parametrize("databases", ["postgres"], indirect=True),
]


def make_app(url: str) -> tuple[corral.App, corral.TaskType[Any, Any]]:
    app = corral.App(url)
    return app, with_task(app)


def with_task(app: corral.App) -> corral.TaskType[Any, Any]:
    @app.task
    def work(ctx: corral.Context, n: int) -> int:
        return n

    return work


# -- submit ids, on both backends -----------------------------------------------------------------


def test_a_submit_id_names_one_submit(app_url: str) -> None:
    app, work = make_app(app_url)
    try:
        first = work.submit(1, submit_id="order-42")
        assert work.submit(1, submit_id="order-42") == first
        batch = [work.prepare(n) for n in range(3)]
        ids = app.submit_many(batch, submit_id="nightly")
        assert app.submit_many(batch, submit_id="nightly") == ids
        assert len(set(ids)) == 3 and first not in ids
        with pytest.raises(ConfigError, match="names a submit of 3 tasks already stored"):
            app.submit_many(batch[:2], submit_id="nightly")
        # a call without a submit id of its own gets a new one: a second call adds tasks
        assert work.submit(1) not in (first, work.submit(1))
        assert len(app.store.task_list(TaskQuery(limit=100))) == 1 + 3 + 2
        with pytest.raises(ConfigError, match="submit_id must be a non-empty string"):
            work.submit(1, submit_id="")
        with pytest.raises(ConfigError, match="at most 200 characters"):
            work.submit(1, submit_id="x" * 201)
    finally:
        app.close()


def test_a_known_submit_id_returns_its_task_whatever_its_state(store: Store) -> None:
    stored = store.task_insert_many(InsertParams([new_task()], T0, submit_id="s1"))
    assert stored[0].created
    register_worker(store)
    finish(store, start(store, stored[0].id), State.SUCCEEDED)
    again = store.task_insert_many(InsertParams([new_task()], T0 + 1, submit_id="s1"))
    assert [(r.id, r.created) for r in again] == [(stored[0].id, False)]
    # a batch big enough for the bulk path (COPY on PostgreSQL), named twice
    big = [new_task(args=f"[{n}]") for n in range(250)]
    ids = [r.id for r in store.task_insert_many(InsertParams(big, T0, submit_id="big"))]
    assert [r.id for r in store.task_insert_many(InsertParams(big, T0, submit_id="big"))] == ids
    assert len(store.task_list(TaskQuery(limit=1000))) == 251
    assert [len(store.event_list(i)) for i in ids].count(1) == 250  # one `submitted` each


def test_a_known_submit_id_returns_its_workflow(app_url: str) -> None:
    app, work = make_app(app_url)
    try:

        def nightly() -> corral.Workflow:
            wf = app.workflow("nightly")
            first = wf.add(work, 1)
            wf.add(work, 2, after=[first])
            return wf

        wf = nightly()
        workflow_id = wf.submit(submit_id="nightly@2026-11-22")
        again = nightly()
        assert again.submit(submit_id="nightly@2026-11-22") == workflow_id
        assert again.ids == wf.ids
        assert wf.ids is not None and app.get(wf.ids[1]).depends_on == (wf.ids[0],)
        assert app.workflow_status(workflow_id).counts == {"ready": 1, "waiting": 1}
        assert len(app.store.task_list(TaskQuery(limit=100))) == 2
    finally:
        app.close()


# -- PostgreSQL: every session terminated ----------------------------------------------------------


def corral_sessions(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    return int(row[0]) if row else 0


def terminate_sessions(url: str) -> int:
    """pg_terminate_backend every other session on the database; how many there were."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return len(rows)


@pytest.mark.postgres
@pytest.mark.parametrize("databases", ["postgres"], indirect=True)
def test_terminated_sessions_reach_no_caller(
    app: corral.App, services: Callable[..., Services], caplog: pytest.LogCaptureFixture
) -> None:
    """After every corral session is terminated, the client's next submits and the worker's and
    the scheduler's next store calls go through: no error reaches any of them."""
    caplog.set_level(logging.INFO)
    app_url = app.url
    work = with_task(app)
    svc = services(app)
    # warm the pool: several connections at once
    threads = [
        threading.Thread(target=lambda: [work.submit(n) for n in range(5)]) for _ in "abcdef"
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    wait_until(lambda: all_succeeded(app, 30), timeout=30)
    assert corral_sessions(app_url) >= 4  # pooled ones, the leadership's, the listeners
    for _ in range(2):
        caplog.clear()
        assert terminate_sessions(app_url) >= 4
        began = time.monotonic()
        ids = [work.submit(0)]
        # the dead sessions are dropped at once, not lent one by one with the pool's back-off
        # between them (over 10 s for eight): this bound is far above what a submit takes
        assert time.monotonic() - began < 8.0
        ids += [work.submit(n) for n in range(1, 10)]
        ids += app.submit_many([work.prepare(n) for n in range(5)])
        wf = app.workflow("after-the-cut")
        wf.add(work, 1, after=[wf.add(work, 0)])
        wf.submit()
        assert wf.ids is not None
        ids += wf.ids
        wait_until(lambda: all_succeeded(app, None, ids), timeout=30)  # noqa: B023
        errors = [
            f"{r.name}: {r.getMessage()}"
            for r in caplog.records
            if r.name.startswith("corral") and r.levelno >= logging.WARNING
        ]
        assert not errors, errors
    wait_until(lambda: svc.scheduler.is_leader, timeout=10)


def all_succeeded(app: corral.App, count: int | None, ids: list[int] | None = None) -> bool:
    tasks = app.store.task_list(TaskQuery(ids=ids, limit=10_000))
    done = [t for t in tasks if t.state == State.SUCCEEDED]
    return len(done) == (len(ids) if ids is not None else count)


# -- PostgreSQL: the reply to a COMMIT lost ------------------------------------------------------


class Proxy:
    """A TCP proxy on 127.0.0.1 in front of the PostgreSQL server. `lose_replies(n)`: for the
    next n COMMITs (or statements containing `statement`), forward the statement, let the server
    answer it to the end (ReadyForQuery: it committed), and close both sides without passing the
    answer on: the client can't know it committed. `refuse`: close every connection, old and new
    (the server is unreachable)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._to_lose = 0
        self._statement = b""
        self.lost = 0
        self.refusing = False
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, dbname: str) -> str:
        return (
            f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"
            "?sslmode=disable&gssencmode=disable"
        )

    def lose_replies(self, count: int, statement: bytes = b"COMMIT\x00") -> None:
        with self._lock:
            self._to_lose = count
            self._statement = statement

    def refuse(self) -> None:
        with self._lock:
            self.refusing = True
            for sock in self._open:
                _close(sock)

    def heal(self) -> None:
        with self._lock:
            self.refusing = False
            self._to_lose = 0

    def close(self) -> None:
        self._listener.close()
        self.refuse()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.refusing:
                _close(client)
                continue
            server = socket.create_connection(self._target)
            with self._lock:
                self._open += [client, server]
            swallow = threading.Event()
            threading.Thread(target=self._up, args=(client, server, swallow), daemon=True).start()
            threading.Thread(target=self._down, args=(server, client, swallow), daemon=True).start()

    def _up(self, client: socket.socket, server: socket.socket, swallow: threading.Event) -> None:
        """Client to server, message by message (the first, the startup message, has no type)."""
        buffer, started = b"", False
        try:
            while data := client.recv(65536):
                buffer += data
                while True:
                    head = 4 if not started else 5
                    if len(buffer) < head:
                        break
                    size = int.from_bytes(buffer[head - 4 : head], "big") + head - 4
                    if len(buffer) < size:
                        break
                    message, buffer = buffer[:size], buffer[size:]
                    if started and message[:1] in (b"Q", b"P"):  # a query, or its parse
                        with self._lock:
                            if self._to_lose > 0 and self._statement in message:
                                self._to_lose -= 1
                                swallow.set()  # before it is sent: its answer is the next one
                    started = True
                    server.sendall(message)
        except OSError:
            pass
        _close(client)
        _close(server)

    def _down(self, server: socket.socket, client: socket.socket, swallow: threading.Event) -> None:
        answer = b""
        try:
            while data := server.recv(65536):
                if not swallow.is_set():
                    client.sendall(data)
                    continue
                answer += data  # the answer to the statement: lose it, once it is whole
                if READY_FOR_QUERY in answer:
                    with self._lock:
                        self.lost += 1
                    break
        except OSError:
            pass
        _close(server)
        _close(client)


READY_FOR_QUERY = b"Z\x00\x00\x00\x05"
"""The server's last message of an answer, sent once the statement's transaction ended."""


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


@pytest.fixture
def proxy(app_url: str) -> Iterator[Proxy]:
    info = psycopg.conninfo.conninfo_to_dict(app_url)
    through = Proxy((str(info.get("host") or "127.0.0.1"), int(info.get("port") or 5432)))
    yield through
    through.close()


def direct(url: str, query: str, params: Any = None) -> list[Any]:
    """Rows read past the proxy, straight from the server."""
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def dbname(url: str) -> str:
    return str(psycopg.conninfo.conninfo_to_dict(url)["dbname"])


@pytest.mark.postgres
@pytest.mark.parametrize("databases", ["postgres"], indirect=True)
@pytest.mark.parametrize("kind", ["submit", "submit_many", "submit_many_copy", "workflow"])
def test_a_submit_whose_commit_reply_is_lost_is_stored_once(
    app_url: str, proxy: Proxy, kind: str
) -> None:
    app, work = make_app(proxy.url(dbname(app_url)))
    try:
        work.submit(-1)  # the pool is open and the schema checked
        # A single submit is one statement that commits itself (store/postgres/queries.py
        # SUBMIT_ONE): its own reply is the commit's.
        proxy.lose_replies(1, b"synchronous_commit" if kind == "submit" else b"COMMIT\x00")
        if kind == "submit":
            ids = [work.submit(0)]
        elif kind == "workflow":
            wf = app.workflow("lost-reply")
            first = wf.add(work, 0)
            wf.add(work, 2, after=[wf.add(work, 1, after=[first])])
            wf.submit()
            assert wf.ids is not None
            ids = wf.ids
        else:
            count = 250 if kind == "submit_many_copy" else 3  # COPY, or pipelined INSERTs
            ids = app.submit_many([work.prepare(n) for n in range(count)])
        assert proxy.lost == 1, "the fault was not injected"
        stored = direct(app_url, "SELECT id FROM corral_tasks WHERE args <> '[-1]' ORDER BY id")
        assert [row[0] for row in stored] == sorted(ids)  # exactly one task per item
        events = direct(app_url, "SELECT task_id FROM corral_events WHERE kind = 'submitted'")
        assert len(events) == len(ids) + 1
        if kind == "workflow":
            assert direct(app_url, "SELECT count(*) FROM corral_workflows") == [(1,)]
            assert app.get(ids[2]).depends_on == (ids[1],)
    finally:
        app.close()


@pytest.mark.postgres
@pytest.mark.parametrize("databases", ["postgres"], indirect=True)
def test_a_claim_whose_reply_is_lost_hands_out_what_it_took(app_url: str, proxy: Proxy) -> None:
    store = open_store(proxy.url(dbname(app_url)))
    try:
        task_ids = [
            r.id for r in store.task_insert_many(InsertParams([new_task(), new_task()], T0))
        ]
        register_worker(store)
        assert store.task_admit_many(AdmitParams(task_ids, T0)) == task_ids
        proxy.lose_replies(1, b"WITH lone AS")  # the claim: one autocommitted statement
        claimed = store.task_claim(ClaimParams("w1", ["default"], 1, T0 + 30, T0 + 1))
        assert proxy.lost == 1, "the fault was not injected"
        assert [(c.id, c.attempt) for c in claimed] == [(task_ids[0], 1)]
        # taken once: one attempt, and the other task still waits for a claim
        assert [a.attempt for a in store.attempt_list(task_ids[0])] == [1]
        assert store.task_states(task_ids) == {task_ids[0]: State.RUNNING,
                                               task_ids[1]: State.ADMITTED}  # fmt: skip
        again = store.task_claim(ClaimParams("w1", ["default"], 1, T0 + 30, T0 + 2))
        assert [(c.id, c.attempt) for c in again] == [(task_ids[1], 1)]
    finally:
        store.close()


@pytest.mark.postgres
@pytest.mark.parametrize("databases", ["postgres"], indirect=True)
def test_an_operator_call_whose_commit_reply_is_lost_is_not_repeated(
    app_url: str, proxy: Proxy
) -> None:
    app, work = make_app(proxy.url(dbname(app_url)))
    try:
        task_id = work.submit(0)
        proxy.lose_replies(1)
        with pytest.raises(ConnectionLost, match="it may have been done") as lost:
            app.cancel(task_id)
        assert lost.value.may_have_committed
        assert app.get(task_id).state == State.CANCELLED  # it was: once
        kinds = [e.kind for e in app.store.event_list(task_id)]
        assert kinds == ["submitted", "cancelled"]
    finally:
        app.close()


@pytest.mark.postgres
@pytest.mark.parametrize("databases", ["postgres"], indirect=True)
def test_retries_end_in_a_clear_error_that_says_how_to_submit_again(
    app_url: str, proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    from corral.store.postgres import reconnect

    monkeypatch.setattr(reconnect, "POOL_TIMEOUT", 0.5)
    app, work = make_app(proxy.url(dbname(app_url)))
    try:
        work.submit(-1)
        # every try's reply is lost: it may have committed, and the error says how to be sure
        # (a single submit is one statement, and a try after a lost one first looks its submit
        # id up: both name corral_submits)
        proxy.lose_replies(reconnect.ATTEMPTS, b"corral_submits")
        with pytest.raises(ConnectionLost, match="failed 5 times in a row") as lost:
            work.submit(0)
        assert lost.value.may_have_committed and proxy.lost == reconnect.ATTEMPTS
        found = re.search(r"submit_id='([0-9a-f]+)'", str(lost.value))
        assert found, str(lost.value)
        proxy.heal()
        task_id = work.submit(0, submit_id=found.group(1))
        assert direct(app_url, "SELECT id FROM corral_tasks WHERE args = '[0]'") == [(task_id,)]
        # the server unreachable: nothing was written, and the caller hears so, in bounded time
        proxy.refuse()
        began = time.monotonic()
        with pytest.raises(ConnectionLost, match="nothing was written") as unreachable:
            work.submit(1)
        assert not unreachable.value.may_have_committed
        assert time.monotonic() - began < 60
        assert direct(app_url, "SELECT count(*) FROM corral_tasks WHERE args = '[1]'") == [(0,)]
    finally:
        app.close()
