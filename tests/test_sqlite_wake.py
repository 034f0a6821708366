"""Wake-ups between processes on SQLite (corral.store.sqlite.wake): real processes, real sockets.

A notice sent by one process wakes a listener in another; it is sent only once its write has
committed, so the woken process reads the row; a SIGKILLed listener's socket is unlinked by the
next send; a full socket buffer neither blocks nor raises in the sender; a cancel reaches the
worker of a running task from another process without waiting for the worker's heartbeat. No
timing is asserted: the timeouts are only there so that a broken wake-up fails rather than hangs.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import Services, new_task, wait_until

import corral
from corral.lifecycle import State
from corral.model import NewTask, TaskQuery
from corral.store.contract import SCHEDULER_CHANNEL, WORKERS_CHANNEL, InsertParams
from corral.store.sqlite.listener import PollingListener
from corral.store.sqlite.store import SQLiteStore
from corral.store.sqlite.wake import Notifier, SocketListener, folder_for
from corral.worker.worker import WorkerConfig

WAIT = 5.0
"""The longest a test waits for a notice: generous, never a bound on the latency."""

LISTEN_THEN_READ = """
import json, sys, time
from corral.model import TaskQuery
from corral.store.sqlite.store import SQLiteStore
store = SQLiteStore(sys.argv[1])
listener = store.listen([sys.argv[2]])
print("ready", flush=True)
deadline = time.monotonic() + float(sys.argv[3])
while time.monotonic() < deadline:
    notices = listener.wait(0.5)
    if notices:
        # woken: the rows the notice announces are committed, so this read finds them
        ids = [t.id for t in store.task_list(TaskQuery(limit=100))]
        print(json.dumps({"notices": notices, "ids": ids}), flush=True)
        break
listener.close()
"""


def _task() -> NewTask:
    return new_task()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(str(tmp_path / "wake.db"))
    store.migrate()
    assert store.notifies
    yield store
    store.close()


def _child(script: str, *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *args], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert _line(proc) == "ready"
    return proc


def _line(proc: subprocess.Popen[str], timeout: float = 20.0) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "the child said nothing"
    return proc.stdout.readline().strip()


def test_a_submit_in_one_process_wakes_a_listener_in_another_that_reads_it(
    db: SQLiteStore,
) -> None:
    child = _child(LISTEN_THEN_READ, db.path, SCHEDULER_CHANNEL, str(WAIT * 4))
    try:
        (submitted,) = db.task_insert_many(InsertParams([_task()], time.time()))
        got = json.loads(_line(child, WAIT * 4))
    finally:
        child.kill()
        child.wait()
    assert got["notices"][0] == [SCHEDULER_CHANNEL, ""]
    assert submitted.id in got["ids"]


def test_a_notice_waits_for_its_commit_and_a_rollback_sends_none(db: SQLiteStore) -> None:
    listener = db.listen([WORKERS_CHANNEL])
    try:
        with db._write():
            db._notice(WORKERS_CHANNEL, "admitted:default")
            assert listener.wait(0.2) == []  # not committed yet: not sent
        assert listener.wait(WAIT) == [(WORKERS_CHANNEL, "admitted:default")]

        with pytest.raises(RuntimeError), db._write():
            db._notice(WORKERS_CHANNEL, "admitted:default")
            raise RuntimeError("rolled back")
        assert listener.wait(0.2) == []
    finally:
        listener.close()


def test_a_listener_hears_only_its_channels(db: SQLiteStore) -> None:
    workers, scheduler = db.listen([WORKERS_CHANNEL]), db.listen([SCHEDULER_CHANNEL])
    try:
        db.task_insert_many(InsertParams([_task()], time.time()))
        assert scheduler.wait(WAIT) == [(SCHEDULER_CHANNEL, "")]
        assert workers.wait(0.2) == []
    finally:
        workers.close()
        scheduler.close()


def test_a_sigkilled_listeners_socket_is_unlinked_by_the_next_notice(db: SQLiteStore) -> None:
    folder = Path(folder_for(db.path) or "")
    child = _child(LISTEN_THEN_READ, db.path, SCHEDULER_CHANNEL, "60")
    (socket_file,) = [p for p in folder.iterdir() if p.name.split(".")[1] == str(child.pid)]
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert socket_file.exists()  # nobody closed it
    db.task_insert_many(InsertParams([_task()], time.time()))
    assert not socket_file.exists()
    assert (folder.stat().st_mode & 0o777) == 0o700


def test_a_full_buffer_neither_blocks_nor_raises_and_later_notices_still_arrive(
    db: SQLiteStore,
) -> None:
    listener = db.listen([WORKERS_CHANNEL])
    notifier = Notifier(str(folder_for(db.path)))
    try:
        notifier.send((WORKERS_CHANNEL, f"cancel:{i}") for i in range(20_000))  # never read
        got = listener.wait(0)
        assert 0 < len(got) < 20_000  # the buffer filled: the rest were dropped, not queued
        notifier.send([(WORKERS_CHANNEL, "admitted:default")])
        assert listener.wait(WAIT) == [(WORKERS_CHANNEL, "admitted:default")]
    finally:
        listener.close()
        notifier.close()


def test_a_closed_listener_unbinds_and_binds_again_on_its_next_wait(db: SQLiteStore) -> None:
    listener = db.listen([SCHEDULER_CHANNEL])
    assert isinstance(listener, SocketListener)
    first = listener.path
    listener.close()  # a stand-by scheduler's
    assert first is not None and not os.path.exists(first)
    assert listener.wait(0) == []
    assert listener.path is not None and os.path.exists(listener.path)
    db.task_insert_many(InsertParams([_task()], time.time()))
    assert listener.wait(WAIT) == [(SCHEDULER_CHANNEL, "")]
    listener.close()


def test_a_long_path_uses_a_short_folder_keyed_by_the_database(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    store = SQLiteStore(str(deep / "corral.db"))
    try:
        store.migrate()
        folder = folder_for(store.path)
        assert folder is not None and not folder.startswith(str(deep))
        assert folder == folder_for(str(deep / "corral.db"))  # every process finds the same
        listener = store.listen([SCHEDULER_CHANNEL])
        store.task_insert_many(InsertParams([_task()], time.time()))
        assert listener.wait(WAIT) == [(SCHEDULER_CHANNEL, "")]
        listener.close()
    finally:
        store.close()


def test_without_af_unix_the_store_polls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr("socket.AF_UNIX")
    store = SQLiteStore(str(tmp_path / "no-wake.db"))
    assert not store.notifies
    assert isinstance(store.listen([SCHEDULER_CHANNEL]), PollingListener)
    store.close()


def test_a_cancel_from_another_process_reaches_the_worker_before_its_heartbeat(
    tmp_path: Path, services: Callable[..., Services]
) -> None:
    url = f"sqlite:///{tmp_path / 'cancel.db'}"
    app = corral.App(url)
    try:

        async def wait_forever(ctx: corral.Context) -> None:
            import asyncio

            ctx.set_shared("started", True)
            await asyncio.sleep(600)

        task = app.task(wait_forever, name="forever")
        task_id = task.submit()
        # A heartbeat (which also reads cancel requests) far beyond the test: only the notice
        # can bring the cancel.
        worker = WorkerConfig(concurrency=1, heartbeat=300, lease=900, companion=False)
        services(app, worker=worker)
        wait_until(lambda: app.get(task_id).shared, timeout=20)
        cancel = (
            "import sys, time\n"
            "from corral.store.contract import CancelParams\n"
            "from corral.store.sqlite.store import SQLiteStore\n"
            "store = SQLiteStore(sys.argv[1])\n"
            "print(store.task_cancel(CancelParams(int(sys.argv[2]), time.time())))\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", cancel, str(tmp_path / "cancel.db"), str(task_id)],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        assert "running" in done.stdout.lower()
        assert app.wait(task_id, timeout=WAIT * 4).state == State.CANCELLED
        assert app.store.task_list(TaskQuery(ids=(task_id,)))[0].state == State.CANCELLED
    finally:
        app.close()
