"""Real worker processes whose thread handlers hold the GIL in C code: the leases live on (the
heartbeat companion renews them), the holds are reported, max_runtime still ends a handler, a
SIGKILLed worker is recovered within the lease, and a hung one within hung_after + lease.

The GIL is held in C code two ways, both called through `ctypes.PyDLL`, which keeps the GIL
during the call: a busy loop compiled here with the system compiler, and libc's `usleep` (a C
call that waits holding the GIL, as a driver that doesn't release it does).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import wait_until

import corral
from corral.cli import cli
from corral.lifecycle import TERMINAL, State
from corral.scheduler.service import Scheduler
from corral.store import Store
from corral.store.contract import EventParams
from corral.worker.gil import GilHold, GilMonitor
from corral.worker.heartbeat import BUSY_SHARE, Liveness

LEASE = 1.5
HEARTBEAT = 0.3

SPIN_C = r"""
#include <time.h>
static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}
/* Busy for `seconds` of wall time; called through ctypes.PyDLL it never releases the GIL. */
double corral_spin(double seconds) {
    double end = now() + seconds;
    volatile unsigned long n = 0;
    while (now() < end) n++;
    return (double)n;
}
"""

WORKER_SCRIPT = """
import asyncio, ctypes, json, logging, sys, threading, time
import corral
from corral.worker.worker import WorkerConfig, run_worker

url, journal, spin_path, options = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
app = corral.App(url)
spin = ctypes.PyDLL(spin_path).corral_spin
spin.argtypes, spin.restype = [ctypes.c_double], ctypes.c_double
usleep = ctypes.PyDLL(None).usleep
usleep.argtypes = [ctypes.c_uint]

def note(kind, ctx):
    with open(journal, "a") as f:
        f.write(f"{kind} {ctx.task_id} {ctx.attempt}\\n")

@app.task(executor="thread", max_retries=2)
def hold_busy(ctx, seconds):
    note("start", ctx)
    spin(seconds)
    note("done", ctx)

@app.task(executor="thread", max_retries=2)
def hold_sleep(ctx, seconds):
    note("start", ctx)
    usleep(int(seconds * 1e6))
    note("done", ctx)

@app.task(executor="thread", max_retries=2)
def nap(ctx, seconds):
    note("start", ctx)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)
    note("done", ctx)

@app.task(max_retries=2)
async def nap_async(ctx, seconds):
    note("start", ctx)
    await asyncio.sleep(seconds)
    note("done", ctx)

@app.task(max_retries=0)
async def deadlock(ctx):
    note("start", ctx)
    lock = threading.Lock()
    lock.acquire()
    lock.acquire()  # blocks the event loop for good, the GIL released: a hung worker

@app.task(executor="thread", max_runtime=2, on_timeout="fail")
def spin_long(ctx, chunks):
    note("start", ctx)
    for _ in range(chunks):
        spin(1.0)
    note("done", ctx)

run_worker(app, WorkerConfig(poll=0.05, grace=5, lease=LEASE, heartbeat=HEARTBEAT, **options))
""".replace("LEASE", str(LEASE)).replace("HEARTBEAT", str(HEARTBEAT))


def declare(app: corral.App) -> dict[str, Any]:
    """The worker's task types as the submitting side knows them (same names and options)."""

    @app.task(executor="thread", max_retries=2)
    def hold_busy(ctx: corral.Context, seconds: float) -> None: ...

    @app.task(executor="thread", max_retries=2)
    def hold_sleep(ctx: corral.Context, seconds: float) -> None: ...

    @app.task(executor="thread", max_retries=2)
    def nap(ctx: corral.Context, seconds: float) -> None: ...

    @app.task(max_retries=2)
    async def nap_async(ctx: corral.Context, seconds: float) -> None: ...

    @app.task(max_retries=0)
    async def deadlock(ctx: corral.Context) -> None: ...

    @app.task(executor="thread", max_runtime=2, on_timeout="fail")
    def spin_long(ctx: corral.Context, chunks: int) -> None: ...

    return {f.name: f for f in (hold_busy, hold_sleep, nap, nap_async, deadlock, spin_long)}


@pytest.fixture(scope="session")
def spin_lib(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A shared library with `corral_spin(seconds)`, built with the system C compiler."""
    folder = tmp_path_factory.mktemp("spin")
    source, library = folder / "spin.c", folder / "spin.so"
    source.write_text(SPIN_C)
    compiler = os.environ.get("CC", "cc")
    subprocess.run([compiler, "-O1", "-shared", "-fPIC", "-o", library, source], check=True)
    return str(library)


class WorkerProcess:
    """A `run_worker` process with the tasks above; its log goes to a file."""

    def __init__(self, app_url: str, tmp_path: Path, spin_lib: str, **options: Any) -> None:
        script = tmp_path / "gil_worker.py"
        script.write_text(textwrap.dedent(WORKER_SCRIPT))
        self.journal = tmp_path / "journal.txt"
        self.log_path = tmp_path / "worker.log"
        self._log = self.log_path.open("w")
        command = [sys.executable, str(script), app_url, str(self.journal), spin_lib]
        self.proc = subprocess.Popen(
            [*command, json.dumps(options)], stdout=self._log, stderr=subprocess.STDOUT
        )

    def starts(self) -> list[tuple[int, int]]:
        return self._journal("start")

    def _journal(self, kind: str) -> list[tuple[int, int]]:
        if not self.journal.exists():
            return []
        rows = [line.split() for line in self.journal.read_text().splitlines()]
        return [(int(task), int(attempt)) for k, task, attempt in rows if k == kind]

    def log(self) -> str:
        return self.log_path.read_text()

    def companions(self) -> list[int]:
        """The pids of this worker's heartbeat companions (its children running the module)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            if ppid == self.proc.pid and b"corral.worker.heartbeat" in cmdline:
                found.append(int(entry.name))
        return found

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@pytest.fixture
def worker_process(
    app_url: str, tmp_path: Path, spin_lib: str
) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(**options: Any) -> WorkerProcess:
        worker = WorkerProcess(app_url, tmp_path, spin_lib, **options)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def gone(pid: int) -> bool:
    """Whether process `pid` has ended (a zombie nobody reaped counts as ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"


def all_ended(store: Store, ids: list[int]) -> bool:
    return all(s in TERMINAL for s in store.task_states(ids).values())


def gil_events(store: Store, task_id: int) -> list[dict[str, Any]]:
    return [json.loads(e.detail or "{}") for e in store.event_list(task_id) if e.kind == "gil_held"]


# -- the leases of a worker whose handlers hold the GIL ------------------------------------------


def test_handlers_holding_the_gil_for_5_leases_lose_no_attempt(
    app: corral.App,
    app_url: str,
    scheduler: Scheduler,
    worker_process: Callable[..., WorkerProcess],
) -> None:
    tasks = declare(app)
    hold = 5 * LEASE
    busy = [tasks["hold_busy"].submit(hold) for _ in range(3)]
    sleeping = [tasks["hold_sleep"].submit(hold)]
    naps = [tasks["nap"].submit(1.0) for _ in range(3)]
    async_naps = [tasks["nap_async"].submit(1.0) for _ in range(3)]
    ids = busy + sleeping + naps + async_naps
    worker = worker_process(concurrency=len(ids), gil_warn_after=2.0)
    wait_until(lambda: all_ended(app.store, ids), timeout=120, interval=0.2)

    for task_id in ids:  # every task succeeded at its first attempt: no lease was lost
        assert app.get(task_id).state == State.SUCCEEDED, app.store.attempt_list(task_id)
        assert [(a.attempt, a.outcome) for a in app.store.attempt_list(task_id)] == [
            (1, "succeeded")
        ]
    assert sorted(worker.starts()) == sorted((task_id, 1) for task_id in ids)  # one start each

    def reported(task_id: int, attributed: bool) -> bool:
        events = gil_events(app.store, task_id)
        return any(e["seconds"] >= 0.8 * hold and e["attributed"] >= attributed for e in events)

    # Each hold is reported (its event is written beside the outcome, so may come just after).
    for task_id in busy:  # a busy hold is named alone, with how long it lasted
        wait_until(lambda: reported(task_id, True), timeout=10)  # noqa: B023
        assert f"task {task_id} (hold_busy) held the GIL for" in worker.log()
    # A hold that uses no CPU is named when nothing computed through the same stretch; one that
    # came back to back with a busy hold (no moment for the monitor between) is in its stretch.
    merged = lambda: any(  # noqa: E731
        e["attributed"] and e["seconds"] >= 1.6 * hold
        for t in busy
        for e in gil_events(app.store, t)
    )
    wait_until(lambda: reported(sleeping[0], False) or merged(), timeout=10)
    for task_id in naps:  # never blamed for a hold it only waited through
        assert not [e for e in gil_events(app.store, task_id) if e["attributed"]]
    for task_id in async_naps:
        assert gil_events(app.store, task_id) == []

    shown = CliRunner().invoke(cli, ["--database-url", app_url, "status", str(busy[0])])
    assert shown.exit_code == 0 and "gil_held" in shown.output, shown.output


def test_a_hold_that_begins_while_the_monitor_reports_one_is_seen(spin_lib: str) -> None:
    # The monitor's report lets go of the GIL (the worker's is a socket write); a handler waiting
    # for the GIL takes it then. That hold happens while the monitor is awake, not asleep: it
    # must still be measured (it was lost when the gap was measured from after the report).
    # No store is involved: this is the monitor's own clock, the same on every backend.
    spin = ctypes.PyDLL(spin_lib).corral_spin
    spin.argtypes, spin.restype = [ctypes.c_double], ctypes.c_double
    holds: list[GilHold] = []
    go = threading.Event()

    def on_hold(hold: GilHold) -> None:
        holds.append(hold)
        if len(holds) == 1:
            go.set()
            time.sleep(0.05)  # lets go of the GIL: `second` takes it and holds it

    def second() -> None:
        go.wait()
        spin(2.5)

    thread = threading.Thread(target=second, daemon=True)
    thread.start()
    monitor = GilMonitor(1.0, on_hold).start()
    try:
        time.sleep(0.3)
        spin(1.5)  # the first hold
        thread.join(30)
        wait_until(lambda: len(holds) >= 2, timeout=5)
    finally:
        monitor.stop()
    assert holds[0].seconds >= 1.2
    assert holds[1].seconds >= 2.2, holds


def test_a_hold_that_waits_in_c_is_reported_on_its_task(
    app: corral.App, scheduler: Scheduler, worker_process: Callable[..., WorkerProcess]
) -> None:
    tasks = declare(app)
    sleeper, other = tasks["hold_sleep"].submit(3.0), tasks["nap_async"].submit(0.5)
    worker = worker_process(gil_warn_after=1.0)
    wait_until(lambda: all_ended(app.store, [sleeper, other]), timeout=30)
    # No thread computed through it: every thread handler running then is named, not attributed.
    events = wait_until(lambda: gil_events(app.store, sleeper), timeout=10)
    assert [(e["attributed"], e["tasks"]) for e in events] == [(False, [sleeper])]
    assert events[0]["seconds"] >= 2.4
    assert f"task {sleeper} (hold_sleep) ran while the GIL was held" in worker.log()
    assert gil_events(app.store, other) == []


def test_sigkilled_worker_mid_hold_is_recovered_within_the_lease(
    app: corral.App, scheduler: Scheduler, worker_process: Callable[..., WorkerProcess]
) -> None:
    tasks = declare(app)
    ids = [tasks["hold_busy"].submit(60.0), tasks["hold_sleep"].submit(60.0)]
    worker = worker_process(concurrency=2)
    running = lambda: all(s == State.RUNNING for s in app.store.task_states(ids).values())  # noqa: E731
    # One holds the GIL, the other waits for it to start: both are running attempts.
    wait_until(lambda: worker.starts() and running() and worker.companions(), timeout=30)
    companions = worker.companions()
    time.sleep(2 * LEASE)  # well into the hold: renewed by the companion all along
    assert running()
    worker.proc.send_signal(signal.SIGKILL)
    killed_at = time.time()
    worker.proc.wait(10)

    wait_until(lambda: all(s != State.RUNNING for s in app.store.task_states(ids).values()), 30)
    recovered = [app.store.attempt_list(task_id)[0] for task_id in ids]
    assert [a.outcome for a in recovered] == ["lost", "lost"]
    for attempt in recovered:  # the lease bound, plus the reaper's round and a loaded host
        assert attempt.finished_at is not None
        assert attempt.finished_at - killed_at <= LEASE + 3.0, attempt
    assert all(gone(pid) for pid in companions)  # the companion died with its worker


def test_a_hung_worker_is_recovered_after_hung_after(
    app: corral.App, scheduler: Scheduler, worker_process: Callable[..., WorkerProcess]
) -> None:
    hung_after = 3.0
    tasks = declare(app)
    task_id = tasks["deadlock"].submit()
    worker = worker_process(hung_after=hung_after)
    wait_until(lambda: worker.starts(), timeout=30)
    started_at = time.time()
    # Recovered: its attempt lost (the task a suspect now, since it did not run alone).
    wait_until(lambda: app.store.task_states([task_id])[task_id] != State.RUNNING, timeout=30)
    attempt = app.store.attempt_list(task_id)[0]
    assert attempt.outcome == "lost" and attempt.finished_at is not None
    took = attempt.finished_at - started_at
    # Renewed while it might only be busy, recovered once hung_after passed without a sign of life
    assert hung_after <= took <= hung_after + LEASE + 4.0, took
    assert "looks hung" in worker.log()
    assert worker.proc.poll() is None  # the process itself is still there, deadlocked
    worker.proc.kill()  # it can't drain: its loop is blocked


def test_a_stopped_worker_is_recovered_within_the_lease(
    app: corral.App, scheduler: Scheduler, worker_process: Callable[..., WorkerProcess]
) -> None:
    tasks = declare(app)
    task_id = tasks["nap"].submit(60.0)
    worker = worker_process()
    wait_until(lambda: worker.starts(), timeout=30)
    worker.proc.send_signal(signal.SIGSTOP)  # paused: no tick, no CPU, and /proc says stopped
    stopped_at = time.time()
    try:
        wait_until(lambda: app.store.task_states([task_id])[task_id] != State.RUNNING, 30)
        attempt = app.store.attempt_list(task_id)[0]
        assert attempt.outcome == "lost" and attempt.finished_at is not None
        assert attempt.finished_at - stopped_at <= LEASE + 3.0  # not hung_after (180 s)
    finally:
        worker.proc.send_signal(signal.SIGCONT)


def test_busy_in_c_longer_than_hung_after_keeps_its_lease(
    app: corral.App, scheduler: Scheduler, worker_process: Callable[..., WorkerProcess]
) -> None:
    tasks = declare(app)
    ids = [tasks["hold_busy"].submit(8.0), tasks["nap"].submit(1.0)]
    worker_process(hung_after=2.0, concurrency=2)
    wait_until(lambda: all_ended(app.store, ids), timeout=60, interval=0.2)
    for task_id in ids:  # its CPU use told the companion it was busy, not hung
        assert [(a.attempt, a.outcome) for a in app.store.attempt_list(task_id)] == [
            (1, "succeeded")
        ]


def test_max_runtime_ends_a_thread_handler_that_holds_the_gil(
    app: corral.App, scheduler: Scheduler, worker_process: Callable[..., WorkerProcess]
) -> None:
    tasks = declare(app)
    task_id = tasks["spin_long"].submit(60)  # 60 holds of 1 s each, a limit of 2 s
    worker = worker_process()
    wait_until(lambda: worker.starts(), timeout=30)
    started_at = time.time()
    wait_until(lambda: app.store.task_states([task_id])[task_id] in TERMINAL, timeout=30)
    record = app.get(task_id)
    assert record.state == State.DEAD and "TaskTimeout" in (record.error or "")
    attempt = app.store.attempt_list(task_id)[0]
    assert attempt.outcome == "timed_out" and attempt.finished_at is not None
    assert attempt.finished_at - started_at < 15  # at the first bytecode after the deadline


def test_a_companion_that_dies_is_restarted_and_cancels_still_arrive(
    app: corral.App, scheduler: Scheduler, worker_process: Callable[..., WorkerProcess]
) -> None:
    tasks = declare(app)
    first = tasks["nap"].submit(6 * LEASE)
    worker = worker_process(concurrency=2)
    wait_until(lambda: worker.starts() and worker.companions(), timeout=30)
    [companion] = worker.companions()
    os.kill(companion, signal.SIGKILL)
    wait_until(lambda: worker.companions() and worker.companions() != [companion], timeout=20)
    assert f"heartbeat companion pid {companion} ended" in worker.log()
    wait_until(lambda: app.store.task_states([first])[first] in TERMINAL, timeout=30)
    assert [(a.attempt, a.outcome) for a in app.store.attempt_list(first)] == [(1, "succeeded")]

    second = tasks["nap"].submit(60.0)  # a cancel reaches the handler through the new companion
    wait_until(lambda: (second, 1) in worker.starts(), timeout=30)
    app.cancel(second)
    wait_until(lambda: app.store.task_states([second])[second] == State.CANCELLED, timeout=20)


# -- the store's event and the liveness rule ------------------------------------------------------


def test_task_record_event(store: Store) -> None:
    from conftest import T0, register_worker, start, submit

    register_worker(store)
    task_id = submit(store)
    claim = start(store, task_id)
    assert store.task_record_event(
        EventParams(task_id, claim.attempt, "gil_held", '{"seconds": 6}', T0 + 1)
    )
    event = store.event_list(task_id)[-1]
    assert (event.kind, event.attempt, event.detail, event.at) == (
        "gil_held",
        claim.attempt,
        '{"seconds": 6}',
        T0 + 1,
    )
    assert (event.from_state, event.to_state) == (None, None)
    assert store.task_states([task_id]) == {task_id: State.RUNNING}  # no state change
    assert not store.task_record_event(EventParams(task_id + 100, 1, "gil_held", None, T0 + 1))


def test_liveness_rule() -> None:
    rule = Liveness(hung_after=10.0, cpu_window=1.0, now=0.0)
    assert rule.alive(9.9) and not rule.alive(10.0)  # nothing since the start: hung at 10 s
    rule.tick(5.0)
    assert rule.alive(14.9) and not rule.alive(15.0)
    for step in range(30):  # busy: a whole CPU used, no tick
        rule.cpu(15.0 + step, float(step))
    assert rule.alive(44.0 + 9.9) and rule.silent_for(44.0) == 0.0
    idle = Liveness(hung_after=10.0, cpu_window=1.0, now=0.0)
    for step in range(40):  # idle threads waking: far below BUSY_SHARE of a CPU
        idle.cpu(step * 0.5, step * 0.5 * BUSY_SHARE / 10)
    assert not idle.alive(19.5)
    rule.stopped = True  # a stopped process is never alive, whatever it did just before
    assert not rule.alive(44.0)
