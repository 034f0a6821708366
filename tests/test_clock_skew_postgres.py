"""Real `corral` processes on PostgreSQL whose own clocks are shifted by five minutes (libfaketime,
Debian's `faketime` package, preloaded into the process): they follow the database's clock, so a
scheduler ahead still admits, a worker behind still gets and runs work, a worker ahead that is
SIGKILLed has its tasks recovered within the lease, and each skewed process logs one warning
naming its offset.

libfaketime shifts `time.time()` and also `time.monotonic()` (and CLOCK_BOOTTIME) by the same
constant here: durations stay true. It is not told FAKETIME_DONT_FAKE_MONOTONIC=1 on purpose:
libfaketime 0.9.10 then breaks Python's `time.sleep` (EINVAL from an absolute monotonic
clock_nanosleep), and a real host whose wall clock is off keeps a true monotonic clock anyway.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import pytest
from conftest import REQUIRE_POSTGRES, wait_until

import corral
from corral.lifecycle import State

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("databases", ["postgres"], indirect=True),
]

SHIFT = 300.0
"""Five minutes, the skew of the issue."""
LEASE = 3.0
"""The workers' lease here: a lost worker's tasks are recovered within about this."""
APP_MODULE = """
import os, time
import corral

app = corral.App()  # the URL comes from --database-url
JOURNAL = {journal!r}


def note(kind, ctx):
    with open(JOURNAL, "a") as f:
        f.write(f"{{kind}} {{ctx.task_id}} {{ctx.attempt}} {{os.getpid()}}\\n")


@app.task(max_retries=3)
def work(ctx, seconds):
    note("start", ctx)
    if ctx.attempt == 1:
        time.sleep(seconds)
    note("done", ctx)
    return ctx.task_id
"""
WARNING = re.compile(r"clock is ([+-]\d+\.\d+)s off the database's")


def libfaketime() -> str:
    """The preloadable libfaketime; fail (CI installs it, see .ci/run) or skip without it."""
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
    found += sorted(glob.glob("/usr/lib/faketime/libfaketime.so.1"))
    if not found or shutil.which("faketime") is None:
        why = "libfaketime is not installed (apt-get install faketime)"
        if REQUIRE_POSTGRES:
            pytest.fail(why)
        pytest.skip(why)
    return found[0]


class SkewedCluster:
    """`python -m corral` processes on one database, each logging to its own file; `shift`
    moves a process's own clock by that many seconds (libfaketime)."""

    def __init__(self, tmp_path: Path, url: str) -> None:
        self.dir = tmp_path
        self.url = url
        self.journal = tmp_path / "journal.txt"
        (tmp_path / "skewapp.py").write_text(
            textwrap.dedent(APP_MODULE.format(journal=str(self.journal)))
        )
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[IO[bytes]] = []

    def start(self, name: str, *command: str, shift: float = 0.0) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        if shift:
            env["LD_PRELOAD"] = libfaketime()
            env["FAKETIME"] = f"{shift:+.0f}"  # "+300": that many seconds ahead of the host
            env.pop("FAKETIME_DONT_FAKE_MONOTONIC", None)
        log = (self.dir / f"{name}.log").open("wb")
        self._logs.append(log)
        args = [sys.executable, "-m", "corral", "--app", "skewapp:app"]
        args += ["--database-url", self.url, "--log-level", "INFO", *command]
        proc = subprocess.Popen(args, cwd=self.dir, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.procs[name] = proc
        return proc

    def scheduler(self, name: str, shift: float = 0.0) -> subprocess.Popen[bytes]:
        return self.start(name, "scheduler", shift=shift)

    def worker(self, name: str, shift: float = 0.0) -> subprocess.Popen[bytes]:
        options = ["--concurrency", "4", "--grace", "5", "--lease", f"{LEASE:g}"]
        return self.start(name, "worker", *options, shift=shift)

    def log(self, name: str) -> str:
        path = self.dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{self.log(name)[-3000:]}" for name in self.procs)

    def warnings(self, name: str) -> list[float]:
        """The offsets named by the clock warnings in a process's log."""
        return [float(m.group(1)) for m in WARNING.finditer(self.log(name))]

    def starts(self) -> list[tuple[int, int, int]]:
        """(task id, attempt, pid) of every attempt the handlers started."""
        if not self.journal.exists():
            return []
        lines = [ln.split() for ln in self.journal.read_text().splitlines()]
        return [(int(ln[1]), int(ln[2]), int(ln[3])) for ln in lines if ln[:1] == ["start"]]

    def stop(self) -> None:
        """SIGTERM every process; each exits with status 0."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = {}
        for name, proc in self.procs.items():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(30)
            codes[name] = proc.returncode
        assert all(c in (0, -signal.SIGKILL) for c in codes.values()), f"{codes}\n{self.logs()}"

    def kill_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        for log in self._logs:
            log.close()


@pytest.fixture
def cluster(app_url: str, tmp_path: Path) -> Iterator[SkewedCluster]:
    libfaketime()
    procs = SkewedCluster(tmp_path, app_url)
    try:
        yield procs
    finally:
        procs.kill_all()


@pytest.fixture
def client(app_url: str) -> Iterator[corral.App]:
    """The test's own App (on this host's true clock): it submits the tasks and reads the rows."""
    app = corral.App(app_url)

    @app.task(max_retries=3)  # as in skewapp.py
    def work(ctx: corral.Context, seconds: float) -> int:
        raise AssertionError("it runs in the worker processes")

    yield app
    app.close()


def all_succeeded(app: corral.App, ids: Sequence[int]) -> bool:
    found = app.store.task_states(ids)
    return len(found) == len(ids) and all(s == State.SUCCEEDED for s in found.values())


def assert_warned_once(cluster: SkewedCluster, name: str, offset: float) -> None:
    named = cluster.warnings(name)
    assert len(named) == 1, f"{name} logged {len(named)} clock warnings\n{cluster.logs()}"
    assert named[0] == pytest.approx(offset, abs=5.0), cluster.logs()


def test_a_scheduler_five_minutes_ahead_still_admits(
    cluster: SkewedCluster, client: corral.App
) -> None:
    cluster.scheduler("scheduler", shift=SHIFT)
    cluster.worker("worker")
    ids = [client.submit("work", 0.0) for _ in range(10)]
    wait_until(lambda: all_succeeded(client, ids), timeout=90, interval=0.2)
    assert_warned_once(cluster, "scheduler", +SHIFT)
    assert cluster.warnings("worker") == [], cluster.logs()
    cluster.stop()


def test_a_worker_five_minutes_behind_still_gets_and_runs_work(
    cluster: SkewedCluster, client: corral.App
) -> None:
    cluster.scheduler("scheduler")
    behind = cluster.worker("behind", shift=-SHIFT)
    ids = [client.submit("work", 0.0) for _ in range(10)]
    wait_until(lambda: all_succeeded(client, ids), timeout=90, interval=0.2)
    assert {pid for _, _, pid in cluster.starts()} == {behind.pid}
    assert_warned_once(cluster, "behind", -SHIFT)
    assert cluster.warnings("scheduler") == [], cluster.logs()
    cluster.stop()


def test_a_worker_five_minutes_ahead_then_killed_has_its_tasks_recovered_within_the_lease(
    cluster: SkewedCluster, client: corral.App
) -> None:
    cluster.scheduler("scheduler")
    ahead = cluster.worker("ahead", shift=SHIFT)
    ids = [client.submit("work", 600.0) for _ in range(4)]  # the first attempts never end
    wait_until(lambda: len(cluster.starts()) == 4, timeout=90, interval=0.1)
    assert {pid for _, _, pid in cluster.starts()} == {ahead.pid}
    ahead.send_signal(signal.SIGKILL)
    ahead.wait(10)
    killed = time.monotonic()
    rescuer = cluster.worker("rescuer")
    # the lease, a reaper round and a claim, with a margin for a loaded machine: far below the
    # five minutes that a lease taken on the worker's own clock would last
    bound = LEASE + 45.0
    wait_until(lambda: all_succeeded(client, ids), timeout=bound, interval=0.2)
    recovered = time.monotonic() - killed
    assert recovered < bound
    second = [(task, pid) for task, attempt, pid in cluster.starts() if attempt == 2]
    assert sorted(second) == sorted((task, rescuer.pid) for task in ids), cluster.logs()
    for task in ids:
        lost = [a for a in client.store.attempt_list(task) if a.outcome == "lost"]
        assert len(lost) == 1, client.store.attempt_list(task)
    assert_warned_once(cluster, "ahead", +SHIFT)
    assert cluster.warnings("rescuer") == [], cluster.logs()
    cluster.stop()
