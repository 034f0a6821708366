"""Lost attempts must not kill bystanders: a task lost while its worker ran other tasks becomes a
suspect (its loss is not counted), suspects run isolated, and only a task that crashes its worker
while isolated counts toward quarantine.

The first test is the fault itself with real worker processes that a supervisor (the test)
restarts whenever they die; the others pin the rule in the store, with a moved clock.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from click.testing import CliRunner

import corral
from corral.cli import cli
from corral.lifecycle import TERMINAL, State
from corral.scheduler.service import Scheduler

WORKER_SCRIPT = """
import os, signal, sys, time
import corral
from corral.worker.worker import WorkerConfig, run_worker

url = sys.argv[1]
app = corral.App(url)

@app.task(max_retries=3)
def innocent(ctx, n, seconds):
    time.sleep(seconds)
    return n

@app.task(max_retries=3)
def culprit(ctx):
    time.sleep(0.2)  # the innocent tasks claimed beside it are running now
    os.kill(os.getpid(), signal.SIGKILL)

run_worker(app, WorkerConfig(concurrency=4, lease=1.5, heartbeat=0.3, poll=0.05, grace=5))
"""
INNOCENTS = 200
WORKERS = 2


class Supervisor:
    """Keeps `WORKERS` worker processes running, restarting each one that dies (as systemd or
    Kubernetes would)."""

    def __init__(self, command: list[str]) -> None:
        self.command = command
        self.procs: list[subprocess.Popen[bytes]] = []
        self.deaths = 0

    def keep_up(self) -> None:
        alive = [p for p in self.procs if p.poll() is None]
        self.deaths += len(self.procs) - len(alive)
        self.procs = alive
        while len(self.procs) < WORKERS:
            self.procs.append(subprocess.Popen(self.command))

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_a_worker_killing_task_is_quarantined_and_kills_no_bystander(
    app: corral.App, app_url: str, tmp_path: Path, scheduler: Scheduler
) -> None:
    @app.task(max_retries=3)
    def innocent(ctx: corral.Context, n: int, seconds: float) -> int: ...

    @app.task(max_retries=3)
    def culprit(ctx: corral.Context) -> None: ...

    worker_py = tmp_path / "worker.py"
    worker_py.write_text(textwrap.dedent(WORKER_SCRIPT))
    # Innocent tasks outlast a heartbeat, so those beside the culprit share its lease, are put
    # back with it and (on the code before suspects) claimed with it again, crash after crash.
    innocents = [innocent.submit(n, 0.3) for n in range(INNOCENTS // 2)]
    bad = culprit.submit()
    innocents += [innocent.submit(n, 0.3) for n in range(INNOCENTS // 2, INNOCENTS)]
    ids = [*innocents, bad]
    supervisor = Supervisor([sys.executable, str(worker_py), app_url])

    def all_ended() -> bool:
        supervisor.keep_up()
        return all(s in TERMINAL for s in app.store.task_states(ids).values())

    try:
        supervisor.keep_up()
        deadline = time.monotonic() + 120
        while not all_ended():
            assert time.monotonic() < deadline, "the tasks did not all end within 120s"
            time.sleep(0.1)
    finally:
        supervisor.stop()

    # None of the innocent tasks is dead: every one succeeded, exactly once.
    states = app.store.task_states(innocents)
    assert [n for n in innocents if states[n] != State.SUCCEEDED] == []
    suspected = []
    for n, task_id in enumerate(innocents):
        record = app.get(task_id)
        assert record.result == str(n)
        attempts = app.store.attempt_list(task_id)
        assert [a.outcome for a in attempts].count("succeeded") == 1
        assert record.failures == 0  # a loss beside the culprit never counts against it
        if any(a.outcome == "lost" for a in attempts):
            suspected.append(task_id)
            kinds = [e.kind for e in app.store.event_list(task_id)]
            assert "suspect" in kinds
            assert attempts[-1].isolated  # it ran alone after its loss, and succeeded
            assert not record.suspect  # and is no longer a suspect
    assert suspected, "the culprit should have taken bystanders down at least once"

    # The culprit: lost once beside others (a suspect), then twice while running alone.
    record = app.get(bad)
    assert record.state == State.DEAD
    assert record.error is not None and record.error.startswith("quarantined:")
    assert "2 times while running alone" in record.error
    attempts = app.store.attempt_list(bad)
    assert [a.outcome for a in attempts] == ["lost", "lost", "lost"]
    assert [a.isolated for a in attempts] == [False, True, True]
    events = app.store.event_list(bad)
    quarantined = [e for e in events if e.kind == "quarantined"]
    assert len(quarantined) == 1 and "quarantined" in (quarantined[0].detail or "")
    assert supervisor.deaths == 3  # one crash beside others, two alone: no more

    # An isolated attempt really ran alone: no other attempt started on its worker meanwhile.
    isolated = [a for a in attempts if a.isolated]
    every = [a for task_id in ids for a in app.store.attempt_list(task_id)]
    for lone in isolated:
        beside = [
            a
            for a in every
            if a.worker_id == lone.worker_id
            and (a.task_id, a.attempt) != (lone.task_id, lone.attempt)
            and lone.started_at <= a.started_at <= (lone.finished_at or time.time())
        ]
        assert beside == []

    runner = CliRunner()
    why = runner.invoke(cli, ["--database-url", app_url, "why", str(bad)], prog_name="corral")
    assert why.exit_code == 0, why.output
    assert "quarantined: crashed its worker 2 times while running alone" in why.output
    shown = runner.invoke(
        cli, ["--database-url", app_url, "status", str(bad), "--json"], prog_name="corral"
    )
    assert shown.exit_code == 0, shown.output
    detail = json.loads(shown.output)
    assert detail["task"]["error"].startswith("quarantined:")
    assert "quarantined" in [e["kind"] for e in detail["events"]]
    overview = runner.invoke(
        cli, ["--database-url", app_url, "status", "--state", "dead"], prog_name="corral"
    )
    assert overview.exit_code == 0 and "quarantined" in overview.output
