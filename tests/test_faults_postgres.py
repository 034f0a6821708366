"""Recovery under faults with real `corral` processes on PostgreSQL: the scheduler leader
SIGKILLed; only its advisory-lock session terminated; a worker paused (SIGSTOP) past its lease,
or in the middle of a transaction; every corral connection terminated (twice); the server
restarted.

After each fault every task ends succeeded exactly once (no task lost, no attempt recorded twice,
no attempt admitted twice), no group cap is exceeded, and the processes reconnect by themselves:
none exits until it is told to (SIGTERM), and then each exits within a grace period. (A worker
SIGKILLed mid-task is covered, on both backends, by tests/test_crash.py.)
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import pytest
from conftest import PG_SERVER, finish, register_worker, wait_until

import corral
from corral.lifecycle import TERMINAL, State
from corral.model import Event
from corral.store.contract import AdmitParams, ClaimParams

try:  # without it the `databases` fixture skips (or fails) each test, as the conftest decides
    import psycopg
except ImportError:  # pragma: no cover
    psycopg = None  # type: ignore[assignment]

pytestmark = [
    pytest.mark.postgres,
    # the conftest's `databases` on PostgreSQL only: a fresh database per test, skipped (or
    # failed under CORRAL_REQUIRE_POSTGRES=1) exactly as the conftest decides
    pytest.mark.parametrize("databases", ["postgres"], indirect=True),
]

APP_MODULE = """
import os, time
import corral

app = corral.App()  # the URL comes from --database-url
JOURNAL = {journal!r}


def note(kind, ctx):
    with open(JOURNAL, "a") as f:
        f.write(f"{{kind}} {{ctx.task_id}} {{ctx.attempt}} {{os.getpid()}}\\n")


@app.task(max_retries=5)
def work(ctx, seconds):
    note("start", ctx)
    time.sleep(seconds)
    note("done", ctx)
    return ctx.task_id


@app.task(max_retries=5)
def steps(ctx, seconds):
    note("start", ctx)
    ctx.save_checkpoint({{"step": 1}})  # a durable write: a transaction of its own statements
    time.sleep(seconds)
    note("done", ctx)
    return ctx.task_id
"""
STOP_GRACE = 20.0
"""Seconds a process may take to exit after SIGTERM."""


# -- processes -----------------------------------------------------------------------------------


class Cluster:
    """corral processes (`python -m corral ...`) on one database, each logging to its own file,
    with the user's app as a module file in `tmp_path` (their working directory)."""

    def __init__(self, tmp_path: Path, url: str) -> None:
        self.dir = tmp_path
        self.url = url
        self.journal = tmp_path / "journal.txt"
        (tmp_path / "faultapp.py").write_text(
            textwrap.dedent(APP_MODULE.format(journal=str(self.journal)))
        )
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.worker_names: list[str] = []
        self._logs: list[IO[bytes]] = []

    def start(self, name: str, *command: str) -> subprocess.Popen[bytes]:
        log = (self.dir / f"{name}.log").open("wb")
        self._logs.append(log)
        args = [sys.executable, "-m", "corral", "--app", "faultapp:app"]
        args += ["--database-url", self.url, "--log-level", "INFO", *command]
        proc = subprocess.Popen(args, cwd=self.dir, stdout=log, stderr=subprocess.STDOUT)
        self.procs[name] = proc
        return proc

    def scheduler(self, name: str) -> subprocess.Popen[bytes]:
        return self.start(name, "scheduler")

    def worker(self, name: str, *options: str) -> subprocess.Popen[bytes]:
        self.worker_names.append(name)
        return self.start(name, "worker", "--concurrency", "4", "--grace", "5", *options)

    @property
    def workers(self) -> int:
        """How many worker processes are alive."""
        return sum(self.procs[name].poll() is None for name in self.worker_names)

    def log(self, name: str) -> str:
        path = self.dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{self.log(name)[-3000:]}" for name in self.procs)

    def leaders(self) -> list[str]:
        """The schedulers alive whose latest word on the leadership is that they lead."""
        found = []
        for name, proc in self.procs.items():
            said = [ln for ln in self.log(name).splitlines() if ln.endswith((" leads", " by"))]
            if proc.poll() is None and said and said[-1].endswith(" leads"):
                found.append(name)
        return found

    def assert_alive(self) -> None:
        """No process exited on its own."""
        exited = {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}
        assert not exited, f"processes exited on their own: {exited}\n{self.logs()}"

    def stop(self, names: Sequence[str] | None = None) -> None:
        """SIGTERM the processes; each must exit, with status 0, within STOP_GRACE."""
        chosen = {n: self.procs[n] for n in (names or list(self.procs))}
        for proc in chosen.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        late = []
        for name, proc in chosen.items():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                late.append(name)
        assert not late, f"{late} did not exit within {STOP_GRACE}s of SIGTERM\n{self.logs()}"
        codes = {n: p.returncode for n, p in chosen.items()}
        assert all(code == 0 for code in codes.values()), f"exit codes {codes}\n{self.logs()}"

    def kill_all(self) -> None:
        """Clean-up whatever happened: nothing outlives the test."""
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGCONT)
                    proc.kill()
                proc.wait(10)
        for log in self._logs:
            log.close()

    def journal_lines(self, kind: str) -> list[tuple[int, int, int]]:
        """(task id, attempt, pid) of every `kind` ("start" or "done") line of the handlers."""
        if not self.journal.exists():
            return []
        lines = [ln.split() for ln in self.journal.read_text().splitlines()]
        return [(int(ln[1]), int(ln[2]), int(ln[3])) for ln in lines if ln[:1] == [kind]]


@pytest.fixture
def cluster(app_url: str, tmp_path: Path) -> Iterator[Cluster]:
    procs = Cluster(tmp_path, app_url)
    try:
        yield procs
    finally:
        procs.kill_all()


@pytest.fixture
def client(app_url: str) -> Iterator[corral.App]:
    """The test's own App on the database: it submits the tasks and reads the rows."""
    app = corral.App(app_url)

    @app.task(max_retries=5)  # as in faultapp.py: retries for the attempts lost to faults
    def work(ctx: corral.Context, seconds: float) -> int:
        raise AssertionError("it runs in the worker processes")

    @app.task(max_retries=5)
    def steps(ctx: corral.Context, seconds: float) -> int:
        raise AssertionError("it runs in the worker processes")

    yield app
    app.close()


# -- the database ---------------------------------------------------------------------------------


def terminate_backends(url: str) -> int:
    """pg_terminate_backend every other session on the test database; how many there were."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return len(rows)


def leader_backend(url: str) -> int | None:
    """The backend pid of the session holding the leadership's advisory lock, if any."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
            " WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()"
        ).fetchone()
    return None if row is None else int(row[0])


def listening_sessions(url: str) -> int:
    """Sessions of the test database that LISTEN: one per worker and the leader's (a stand-by
    must not listen: the server would queue notices for it that it never reads)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query LIKE 'LISTEN %%'"
        ).fetchone()
    return int(row[0]) if row else 0


def stalled_transactions(url: str, older_than: float) -> list[tuple[int, str]]:
    """(backend pid, last statement) of the sessions idle for over `older_than` seconds inside a
    transaction that changed task rows: corral's transactions take milliseconds, so these
    belong to a paused process."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT DISTINCT a.pid, a.query FROM pg_stat_activity a JOIN pg_locks l"
            " ON l.pid = a.pid AND l.relation = 'corral_tasks'::regclass"
            " AND l.mode = 'RowExclusiveLock'"
            " WHERE a.datname = current_database() AND a.state LIKE 'idle in %%'"
            " AND clock_timestamp() - a.state_change > make_interval(secs => %s)",
            (older_than,),
        ).fetchall()
    return [(int(pid), " ".join(query.split())[:60]) for pid, query in rows]


def postgres_cluster_version() -> str:
    """The version of the local cluster that serves PG_SERVER, or skip if it isn't ours."""
    info = psycopg.conninfo.conninfo_to_dict(f"{PG_SERVER}/postgres")
    if info.get("host", "localhost") not in ("localhost", "127.0.0.1", "::1"):
        pytest.skip(f"PostgreSQL at {PG_SERVER} is not a local server this test may restart")
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    tools = all(shutil.which(tool) for tool in ("pg_ctlcluster", "pg_isready"))
    if not versions or not tools or os.geteuid() != 0:
        pytest.skip("restarting PostgreSQL needs pg_ctlcluster, pg_isready and root")
    return versions[-1]


def server_ready() -> bool:
    info = psycopg.conninfo.conninfo_to_dict(f"{PG_SERVER}/postgres")
    host, port = str(info.get("host") or "localhost"), str(info.get("port") or 5432)
    command = ["pg_isready", "-q", "-h", host, "-p", port]
    return subprocess.run(command, check=False, timeout=10).returncode == 0


def pg_ctl(version: str, action: str) -> None:
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action]
    subprocess.run(command, check=True, timeout=30, capture_output=True)


# -- checks --------------------------------------------------------------------------------------


def all_events(app: corral.App) -> list[Event]:
    events: list[Event] = []
    while batch := app.store.event_fetch_after(events[-1].id if events else 0, 5000):
        events.extend(batch)
    return events


def states(app: corral.App, ids: Sequence[int]) -> Counter[State]:
    return Counter(app.store.task_states(ids).values())


def all_terminal(app: corral.App, ids: Sequence[int]) -> bool:
    found = app.store.task_states(ids)
    return len(found) == len(ids) and all(s in TERMINAL for s in found.values())


def peak_active(events: Sequence[Event], group_of: dict[int, str]) -> dict[str, int]:
    """Replay the events in id order: the most tasks each group ever had admitted + running."""
    active: Counter[str] = Counter()
    peak: Counter[str] = Counter()
    holding = ("admitted", "running")
    for event in events:
        group = group_of[event.task_id]
        if event.to_state is None:  # not a transition (cancel_requested, suspect, stalled)
            continue
        if event.to_state in holding and event.from_state not in holding:
            active[group] += 1
            peak[group] = max(peak[group], active[group])
        elif event.from_state in holding and event.to_state not in holding:
            active[group] -= 1
            assert active[group] >= 0, f"task {event.task_id} left a slot it did not hold"
    return dict(peak)


def assert_succeeded_exactly_once(app: corral.App, ids: Sequence[int]) -> list[Event]:
    """Every task succeeded; each of its attempts ended exactly once, the last one (only) as
    succeeded; each attempt was admitted once. Returns all events, in id order."""
    events = all_events(app)
    by_task: dict[int, list[Event]] = {}
    for event in events:
        by_task.setdefault(event.task_id, []).append(event)
    assert len(app.store.task_states(ids)) == len(ids), "tasks were lost"
    for task_id in ids:
        record = app.get(task_id)
        assert record.state == State.SUCCEEDED, (task_id, record.state, record.error)
        assert record.result == str(task_id)
        attempts = app.store.attempt_list(task_id)
        assert [a.attempt for a in attempts] == list(range(1, record.attempt + 1))
        assert all(a.outcome is not None for a in attempts), attempts
        assert [a.outcome for a in attempts].count("succeeded") == 1, attempts
        assert attempts[-1].outcome == "succeeded"
        mine = by_task[task_id]
        # each attempt left `running` exactly once (an event without to_state, such as
        # `suspect`, is no transition), and one event made the task succeeded
        ends = Counter(e.attempt for e in mine if e.from_state == "running" and e.to_state)
        assert ends == Counter(a.attempt for a in attempts), (task_id, mine)
        assert [e.to_state for e in mine].count("succeeded") == 1
        # admitted once per attempt (the admitted event carries the attempt before the claim)
        admitted = sorted(e.attempt for e in mine if e.kind == "admitted")
        assert admitted == list(range(record.attempt)), (task_id, mine)
    return events


# -- the faults ----------------------------------------------------------------------------------


def test_scheduler_leader_sigkilled_another_leads_and_caps_hold(
    cluster: Cluster, client: corral.App
) -> None:
    client.groups.configure("capped", max_parallel=3)
    ids = [client.submit("work", 0.2, group="capped") for _ in range(60)]
    for n in range(3):
        cluster.scheduler(f"scheduler{n}")
    cluster.worker("worker0")
    cluster.worker("worker1")

    wait_until(lambda: len(cluster.leaders()) == 1, timeout=20)
    wait_until(lambda: states(client, ids)[State.SUCCEEDED] >= 12, timeout=20)
    (leader,) = cluster.leaders()
    cluster.procs[leader].send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    cluster.procs[leader].wait(10)
    admitted_before = sum(e.kind == "admitted" for e in all_events(client))
    assert states(client, ids)[State.SUCCEEDED] < len(ids), "the run ended before the kill"

    successor = wait_until(lambda: cluster.leaders(), timeout=10)
    failover = time.monotonic() - killed_at
    assert len(successor) == 1 and successor[0] != leader
    # the new leader admits: the run goes on
    wait_until(
        lambda: sum(e.kind == "admitted" for e in all_events(client)) > admitted_before,
        timeout=10,
    )
    wait_until(lambda: all_terminal(client, ids), timeout=30)
    del cluster.procs[leader]  # it was killed on purpose
    cluster.assert_alive()
    cluster.stop()

    events = assert_succeeded_exactly_once(client, ids)
    assert peak_active(events, dict.fromkeys(ids, "capped")) == {"capped": 3}
    # nothing went wrong with the workers: each task ran once
    assert sorted(t for t, _, _ in cluster.journal_lines("done")) == sorted(ids)
    print(f"failover took {failover:.2f}s ({leader} -> {successor[0]})")


def test_worker_paused_past_its_lease_has_its_late_results_refused(
    cluster: Cluster, client: corral.App
) -> None:
    ids = [client.submit("work", 0.5) for _ in range(24)]
    cluster.scheduler("scheduler")
    victim = cluster.worker("victim", "--lease", "2", "--heartbeat", "0.5")
    cluster.worker("other", "--lease", "2", "--heartbeat", "0.5")

    def victim_in_flight() -> set[tuple[int, int]]:
        started = {(t, a) for t, a, p in cluster.journal_lines("start") if p == victim.pid}
        done = {(t, a) for t, a, p in cluster.journal_lines("done") if p == victim.pid}
        return started - done

    wait_until(lambda: len(victim_in_flight()) >= 2, timeout=20, interval=0.005)
    victim.send_signal(signal.SIGSTOP)
    try:
        stopped_at = time.monotonic()
        paused = victim_in_flight()  # a handler may have ended just before the stop: re-read
        assert paused
        # the reaper gives the paused worker's tasks to the other worker, which finishes all
        wait_until(lambda: all_terminal(client, ids), timeout=30)
        assert time.monotonic() - stopped_at >= 2.0  # not before the lease expired
    finally:
        victim.send_signal(signal.SIGCONT)
    # resumed, its handlers end (their sleep is over) and it reports results that are refused
    wait_until(
        lambda: paused <= {(t, a) for t, a, p in cluster.journal_lines("done") if p == victim.pid},
        timeout=15,
    )
    cluster.assert_alive()
    cluster.stop()  # the victim drains: its reports are written (and refused) before it exits

    assert_succeeded_exactly_once(client, ids)
    marker = f":{victim.pid}:"
    for task_id, attempt in paused:
        attempts = client.store.attempt_list(task_id)
        mine = attempts[attempt - 1]
        assert marker in (mine.worker_id or "")
        assert mine.outcome == "lost", mine
        winner = attempts[-1]
        assert winner.attempt > attempt and winner.outcome == "succeeded"
        assert marker not in (winner.worker_id or "")
        assert client.get(task_id).result == str(task_id)


def signal_host(pid: int, sig: signal.Signals) -> None:
    """Signal a worker and its direct children (its heartbeat companion, its process-executor
    children) together, as a frozen host or VM stops them all."""
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    children.append(int(entry))
    for target in (pid, *children):
        with contextlib.suppress(ProcessLookupError):
            os.kill(target, sig)


def test_worker_paused_inside_a_transaction_blocks_no_one(
    cluster: Cluster, client: corral.App
) -> None:
    """Paused between two statements of a transaction, a worker holds row locks that the
    reaper and the other workers need: the server must end that session, so that the paused
    worker's tasks go to the other worker all the same. Claims, reports without a clean-up and
    submits are single statements now; a checkpoint's save (BEGIN, SET LOCAL, UPDATE, COMMIT)
    is not, so each task saves one."""
    ids = [client.submit("steps", 0.01) for _ in range(600)]
    cluster.scheduler("scheduler")
    victim = cluster.worker("victim", "--lease", "2", "--heartbeat", "0.2")
    cluster.worker("other", "--lease", "2", "--heartbeat", "0.2")
    wait_until(lambda: states(client, ids)[State.SUCCEEDED] >= 20, timeout=20)

    def pause_inside_a_transaction() -> list[tuple[int, str]]:
        if states(client, ids)[State.SUCCEEDED] > len(ids) - 100:  # keep the victim at work
            ids.extend(client.submit("steps", 0.01) for _ in range(200))
        signal_host(victim.pid, signal.SIGSTOP)  # the worker and its heartbeat companion
        time.sleep(0.05)
        stalled = stalled_transactions(cluster.url, older_than=0.04)
        if not stalled:
            signal_host(victim.pid, signal.SIGCONT)
            time.sleep(random.uniform(0.0, 0.02))
        return stalled

    try:
        stalled = wait_until(pause_inside_a_transaction, timeout=30, interval=0)
        assert states(client, ids)[State.SUCCEEDED] < len(ids), "the run ended before the pause"
        # everything ends while the victim is still paused
        wait_until(lambda: all_terminal(client, ids), timeout=40)
        # and the server ends the paused session (at once, if its locks held the others up; a
        # transaction that happened to lock nothing may outlive the run by its idle timeout)
        wait_until(
            lambda: not set(stalled) & set(stalled_transactions(cluster.url, older_than=0.0)),
            timeout=10,
        )
        print(f"paused inside {stalled}")
    finally:
        signal_host(victim.pid, signal.SIGCONT)
    late = client.submit("work", 0.0)  # the victim too is back at work (or could be)
    wait_until(lambda: all_terminal(client, [late]), timeout=15)
    cluster.assert_alive()
    cluster.stop()
    assert_succeeded_exactly_once(client, [*ids, late])


def test_terminated_connections_are_reopened(cluster: Cluster, client: corral.App) -> None:
    client.groups.configure("capped", max_parallel=4)
    ids = [client.submit("work", 0.15, group="capped") for _ in range(60)]
    ids += [client.submit("work", 0.15) for _ in range(30)]
    group_of = {task_id: ("capped" if n < 60 else "default") for n, task_id in enumerate(ids)}
    cluster.scheduler("scheduler0")
    cluster.scheduler("scheduler1")
    cluster.worker("worker0")
    cluster.worker("worker1")

    for goal in (25, 50):
        wait_until(lambda: states(client, ids)[State.SUCCEEDED] >= goal, timeout=30)  # noqa: B023
        assert states(client, ids)[State.SUCCEEDED] < len(ids), "the run ended before the fault"
        done = states(client, ids)[State.SUCCEEDED]
        terminated = terminate_backends(cluster.url)
        assert terminated >= 4  # at least the pools of the four processes
        cut_at = time.monotonic()
        wait_until(lambda: states(client, ids)[State.SUCCEEDED] > done, timeout=20)  # noqa: B023
        print(f"tasks succeed again {time.monotonic() - cut_at:.2f}s after the cut")
    wait_until(lambda: all_terminal(client, ids), timeout=40)
    cluster.assert_alive()
    # every process is back: its wake-ups LISTEN again, and a scheduler leads
    wait_until(lambda: listening_sessions(cluster.url) == cluster.workers + 1, timeout=10)
    assert leader_backend(cluster.url) is not None
    # and they still work: a task submitted now runs
    late = client.submit("work", 0.0)
    wait_until(lambda: all_terminal(client, [late]), timeout=15)
    cluster.assert_alive()
    cluster.stop()

    events = assert_succeeded_exactly_once(client, [*ids, late])
    assert peak_active(events, {**group_of, late: "default"})["capped"] <= 4


def test_leader_lock_session_terminated_old_leader_admits_no_more(
    cluster: Cluster, client: corral.App
) -> None:
    """Only the leader's lock session dies: its process lives on, unaware until it next looks,
    while a stand-by takes the lock at once. Were the old leader to admit meanwhile, two leaders
    would each fill the group's one slot from their own snapshot, and since urgent tasks keep
    arriving at the head of the queue, with two different tasks."""
    client.groups.configure("capped", max_parallel=1)
    ids = [client.submit("work", 0.005, group="capped") for _ in range(100)]
    for n in range(3):
        cluster.scheduler(f"scheduler{n}")
    cluster.worker("worker0")
    stop = threading.Event()

    def urgent_tasks() -> None:  # each more urgent than all before it
        priority = itertools.count(1)
        while not stop.wait(0.01):
            ids.append(client.submit("work", 0.005, group="capped", priority=next(priority)))

    feeder = threading.Thread(target=urgent_tasks, daemon=True)
    feeder.start()
    try:
        for _ in range(5):
            holder = wait_until(lambda: leader_backend(cluster.url), timeout=10)
            with psycopg.connect(cluster.url, autocommit=True) as conn:
                conn.execute("SELECT pg_terminate_backend(%s)", (holder,))
            # another session takes the lock within a few seconds
            wait_until(
                lambda: leader_backend(cluster.url) not in (None, holder),  # noqa: B023
                timeout=10,
            )
            wait_until(lambda: len(cluster.leaders()) == 1, timeout=10)
            # the old leader, which lives on, stopped listening as it stood by
            wait_until(lambda: listening_sessions(cluster.url) == cluster.workers + 1, timeout=10)
    finally:
        stop.set()
        feeder.join(10)
    assert states(client, ids)[State.SUCCEEDED] < len(ids), "the run ended before the faults"
    wait_until(lambda: all_terminal(client, ids), timeout=40)
    cluster.assert_alive()
    cluster.stop()

    events = assert_succeeded_exactly_once(client, ids)
    assert peak_active(events, dict.fromkeys(ids, "capped")) == {"capped": 1}


@pytest.mark.timeout(90)
def test_server_restart_mid_run(cluster: Cluster, client: corral.App) -> None:
    version = postgres_cluster_version()
    began = time.monotonic()
    client.groups.configure("capped", max_parallel=3)
    ids = [client.submit("work", 0.3, group="capped") for _ in range(24)]
    ids += [client.submit("work", 0.3) for _ in range(24)]
    group_of = {task_id: ("capped" if n < 24 else "default") for n, task_id in enumerate(ids)}
    cluster.scheduler("scheduler0")
    cluster.scheduler("scheduler1")
    cluster.worker("worker0", "--lease", "5")
    cluster.worker("worker1", "--lease", "5")
    try:
        wait_until(lambda: states(client, ids)[State.SUCCEEDED] >= 10, timeout=20)
        client.close()  # its pooled connections will be broken too: open a fresh store later
        done = states(client, ids)[State.SUCCEEDED]
        pg_ctl(version, "restart")
        wait_until(server_ready, timeout=20, interval=0.2)
        ready_at = time.monotonic()
        wait_until(lambda: states(client, ids)[State.SUCCEEDED] > done, timeout=20)
        print(f"tasks succeed again {time.monotonic() - ready_at:.2f}s after the restart")
        wait_until(lambda: all_terminal(client, ids), timeout=40)
        cluster.assert_alive()
        wait_until(lambda: listening_sessions(cluster.url) == cluster.workers + 1, timeout=10)
        assert leader_backend(cluster.url) is not None
        late = client.submit("work", 0.0)
        wait_until(lambda: all_terminal(client, [late]), timeout=15)
        cluster.assert_alive()
        cluster.stop()
    finally:
        if not server_ready():
            pg_ctl(version, "start")
            wait_until(server_ready, timeout=30, interval=0.2)

    events = assert_succeeded_exactly_once(client, [*ids, late])
    assert peak_active(events, {**group_of, late: "default"})["capped"] <= 3
    assert time.monotonic() - began < 60


def crash_and_restart(version: str) -> None:
    """Stop the server in `immediate` mode (its processes killed, no checkpoint, WAL not yet
    flushed lost, as in a crash), then start it again."""
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "stop"]
    try:
        subprocess.run([*command, "-m", "immediate"], check=True, timeout=30, capture_output=True)
    finally:
        if not server_ready():
            pg_ctl(version, "start")
            wait_until(server_ready, timeout=30, interval=0.2)


def test_a_submit_that_returned_survives_a_server_crash(client: corral.App) -> None:
    """A single submit is one autocommitted statement (store/postgres/queries.py SUBMIT_ONE) on
    a pooled session that commits asynchronously; the statement makes its own commit durable.
    The server is stopped in `immediate` mode (its processes killed, no checkpoint, WAL not yet
    flushed lost, as in a crash) right after the last submit returned: every task is there."""
    version = postgres_cluster_version()
    client.submit("work", 0.0)  # the pool is open
    ids = [client.submit("work", n) for n in range(300)]
    client.close()
    crash_and_restart(version)
    fresh = corral.App(client.url)
    try:
        assert sorted(fresh.store.task_states(ids)) == sorted(ids)
    finally:
        fresh.close()


def test_an_outcome_that_returned_survives_a_server_crash(client: corral.App) -> None:
    """A report of outcomes without a clean-up is one autocommitted statement (store/postgres/
    queries.py COMPLETE_ONE) on a pooled session that commits asynchronously; the statement
    makes its own commit durable. The server is stopped in `immediate` mode right after the last
    report returned: every outcome is there."""
    version = postgres_cluster_version()
    store = client.store
    now = time.time()
    register_worker(store, "w1", now, concurrency=1000)
    ids = client.submit_many([client.task_type("work").prepare(0.0) for _ in range(200)])
    assert store.task_admit_many(AdmitParams(ids, now)) == ids
    claims = store.task_claim(ClaimParams("w1", ["default"], len(ids), now + 600, now))
    assert sorted(c.id for c in claims) == sorted(ids)
    for claim in claims:  # one report a call, as a worker whose runs end one by one
        finish(store, claim, State.SUCCEEDED, now, "w1")
    client.close()
    crash_and_restart(version)
    fresh = corral.App(client.url)
    try:
        states = fresh.store.task_states(ids)
        assert sorted(states) == sorted(ids)
        assert set(states.values()) == {State.SUCCEEDED}
    finally:
        fresh.close()
