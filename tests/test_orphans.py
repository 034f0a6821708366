"""Real processes and signals: a worker SIGKILLed with process-executor children in flight takes
them with it, well before its lease expires, so the rerun on another worker never overlaps an
orphan of the first run. Once with the parent-death signal (Linux) and once with only the pipe
watchdog that every platform has."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import defaultdict
from pathlib import Path

import pytest
from conftest import wait_until

import corral
from corral.lifecycle import TERMINAL, State
from corral.scheduler.service import Scheduler

LEASE = 4.0
"""The worker's lease: the killed worker's tasks are rerun by the other one after about this."""
SECONDS = 8.0
"""How long a run lasts: longer than the lease, so an orphan would still be running at the
rerun."""
TASKS = 3

WORKER_SCRIPT = """
import os, sys, time
import corral
from corral.worker import executors
from corral.worker.worker import WorkerConfig, run_worker

url, journal, lease, watchdog_only = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
if watchdog_only == "1":  # as on a platform without PR_SET_PDEATHSIG: the watchdog alone
    executors._set_parent_death_signal = lambda: None
app = corral.App(url)


def note(kind, ctx):
    with open(journal, "a") as f:
        f.write(f"{kind} {ctx.task_id} {ctx.attempt} {os.getpid()} {time.time():.6f}\\n")


@app.task(executor="process", max_retries=3)
def work(ctx, seconds):
    note("start", ctx)
    end = time.monotonic() + seconds
    while time.monotonic() < end:  # a side effect every 50 ms: an orphan keeps writing
        time.sleep(0.05)
        note("tick", ctx)
    note("done", ctx)
    return ctx.task_id


run_worker(app, WorkerConfig(concurrency=4, lease=lease, heartbeat=0.5, poll=0.05, grace=5))
"""


def journal(path: Path) -> list[tuple[str, int, int, int, float]]:
    """(kind, task id, attempt, pid, time) of each line the handlers wrote."""
    if not path.exists():
        return []
    rows = [line.split() for line in path.read_text().splitlines()]
    return [
        (r[0], int(r[1]), int(r[2]), int(r[3]), float(r[4])) for r in rows if len(r) == 5
    ]  # a line cut short by a SIGKILL is skipped


def alive(pid: int) -> bool:
    """Whether `pid` still runs (a zombie nobody reaped yet does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc here
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


@pytest.mark.parametrize("watchdog_only", [False, True], ids=["pdeathsig", "watchdog"])
def test_a_killed_workers_process_children_die_with_it_and_no_run_overlaps(
    app: corral.App, app_url: str, tmp_path: Path, scheduler: Scheduler, watchdog_only: bool
) -> None:
    @app.task(executor="process", max_retries=3)
    def work(ctx: corral.Context, seconds: float) -> int: ...

    worker_py = tmp_path / "worker.py"
    worker_py.write_text(textwrap.dedent(WORKER_SCRIPT))
    path = tmp_path / "journal.txt"
    ids = [work.submit(SECONDS) for _ in range(TASKS)]
    command = [sys.executable, str(worker_py), app_url, str(path), str(LEASE)]
    command.append("1" if watchdog_only else "0")
    first = subprocess.Popen(command)
    second: subprocess.Popen[bytes] | None = None
    children: set[int] = set()
    try:
        wait_until(lambda: len({r[1] for r in journal(path) if r[0] == "start"}) == TASKS, 30)
        children = {r[3] for r in journal(path) if r[0] == "start"}
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        killed_at = time.time()
        gone_after: float | None = None
        while time.time() < killed_at + LEASE:
            if not any(alive(pid) for pid in children):
                gone_after = time.time() - killed_at
                break
            time.sleep(0.02)
        second = subprocess.Popen(command)
        wait_until(
            lambda: all(s in TERMINAL for s in app.store.task_states(ids).values()), timeout=60
        )
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(15)
        for pid in children:  # orphans the code under test failed to stop
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    for task_id in ids:
        record = app.get(task_id)
        assert record.state == State.SUCCEEDED
        assert [a.outcome for a in app.store.attempt_list(task_id)].count("succeeded") == 1
    # Each run (task, attempt, process) spans its first to its last side effect; no two runs of
    # a task may overlap in time.
    spans: dict[int, dict[tuple[int, int], list[float]]] = defaultdict(dict)
    for _, task_id, attempt, pid, at in journal(path):
        span = spans[task_id].setdefault((attempt, pid), [at, at])
        span[0], span[1] = min(span[0], at), max(span[1], at)
    for task_id in ids:
        runs = sorted(spans[task_id].values())
        assert len(runs) >= 2, f"task {task_id} was not rerun: {runs}"
        for before, after in itertools.pairwise(runs):
            assert before[1] < after[0], f"two runs of task {task_id} overlapped: {runs}"
    assert gone_after is not None, f"the children outlived the worker's lease ({LEASE}s)"
    assert gone_after < LEASE / 2, f"the children outlived the worker by {gone_after:.2f}s"
    last_orphan_effect = max(at for _, _, _, pid, at in journal(path) if pid in children)
    assert last_orphan_effect < killed_at + LEASE / 2
