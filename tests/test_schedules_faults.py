"""Exactly once under faults, with real `corral scheduler` processes on PostgreSQL: three
schedulers run schedules that fire every second, and the leader is SIGKILLed again and again
(whenever it happens to be, mid-tick included). No logical time fires twice, and none is lost:
after each takeover the new leader makes the fires that came due meanwhile."""

from __future__ import annotations

import contextlib
import itertools
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from conftest import wait_until

import corral

try:
    import psycopg
except ImportError:  # pragma: no cover
    psycopg = None  # type: ignore[assignment]

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("databases", ["postgres"], indirect=True),
]

SCHEDULES = ("tick-a", "tick-b", "tick-c")
APP_MODULE = f"""
import corral

app = corral.App()


@app.task
def tick(ctx, name):
    return name


for name in {SCHEDULES!r}:
    app.schedules.add(name, tick, every="1s", args=[name], overlap="allow", max_catchup=1000)
"""


class Schedulers:
    def __init__(self, tmp_path: Path, url: str) -> None:
        self.dir, self.url = tmp_path, url
        (tmp_path / "tickapp.py").write_text(textwrap.dedent(APP_MODULE))
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[IO[bytes]] = []
        self._names = itertools.count()

    def start(self) -> str:
        name = f"scheduler-{next(self._names)}"
        log = (self.dir / f"{name}.log").open("wb")
        self._logs.append(log)
        args = [sys.executable, "-m", "corral", "--app", "tickapp:app", "--database-url",
                self.url, "--log-level", "INFO", "scheduler"]  # fmt: skip
        self.procs[name] = subprocess.Popen(args, cwd=self.dir, stdout=log, stderr=log)
        return name

    def log(self, name: str) -> str:
        path = self.dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def leader(self) -> str | None:
        for name, proc in self.procs.items():
            said = [ln for ln in self.log(name).splitlines() if ln.endswith((" leads", " by"))]
            if proc.poll() is None and said and said[-1].endswith(" leads"):
                return name
        return None

    def alive(self) -> list[str]:
        return [n for n, p in self.procs.items() if p.poll() is None]

    def kill_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(10)
        for log in self._logs:
            log.close()


@pytest.fixture
def schedulers(app_url: str, tmp_path: Path) -> Iterator[Schedulers]:
    procs = Schedulers(tmp_path, app_url)
    try:
        yield procs
    finally:
        procs.kill_all()


def test_leader_sigkilled_repeatedly_no_fire_twice_none_lost(
    schedulers: Schedulers, app_url: str
) -> None:
    for _ in range(3):
        schedulers.start()
    first = wait_until(schedulers.leader, timeout=30, interval=0.1)
    app = corral.App(app_url)
    try:
        wait_until(lambda: len(app.schedules.list()) == 3, timeout=20)
        kills = 0
        deadline = time.monotonic() + 24
        leader: str | None = first
        while time.monotonic() < deadline:
            time.sleep(1.3 + 0.9 * (kills % 3) / 2)  # every 1.3 to 2.2 s: at any point of a tick
            leader = schedulers.leader()
            if leader is None:
                continue
            schedulers.procs[leader].send_signal(signal.SIGKILL)
            schedulers.procs[leader].wait(10)
            kills += 1
            schedulers.start()  # keep three
        assert kills >= 8
        wait_until(schedulers.leader, timeout=30, interval=0.1)
        time.sleep(3)  # the last leader catches up what came due during the last takeover
        stop_at = app.clock.now()
        for name in schedulers.alive():
            schedulers.procs[name].send_signal(signal.SIGTERM)
        for name in schedulers.alive():
            schedulers.procs[name].wait(20)
        for schedule in SCHEDULES:
            fires = sorted(app.schedules.fires(schedule, 10_000), key=lambda f: f.logical_time)
            times = [int(f.logical_time) for f in fires]
            assert len(times) > 20
            assert times == list(range(times[0], times[0] + len(times))), schedule  # none lost
            assert times[-1] >= stop_at - 2.5  # caught up to the end
            assert {f.outcome for f in fires} == {"fired"}
            assert all(len(f.task_ids) == 1 for f in fires)
        assert psycopg is not None
        with psycopg.connect(app_url) as conn:
            twice = conn.execute(
                "SELECT args, logical_time, count(*) FROM corral_tasks"
                " GROUP BY args, logical_time HAVING count(*) > 1"
            ).fetchall()
            (tasks,) = conn.execute("SELECT count(*) FROM corral_tasks").fetchone() or (0,)
            (fired,) = conn.execute(
                "SELECT count(*) FROM corral_schedule_fires WHERE outcome = 'fired'"
            ).fetchone() or (0,)
        assert twice == [] and tasks == fired  # no logical time made tasks twice
    finally:
        app.close()
