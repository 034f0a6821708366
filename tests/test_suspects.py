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
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import T0, Databases, register_worker, submit

import corral
from corral.cli import cli
from corral.errors import ConfigError
from corral.isolation import QUARANTINE_AFTER, LostVerdict, lost_verdict, suspect_after
from corral.lifecycle import ACTIVE, TERMINAL, Outcome, State
from corral.model import AttemptReport, GroupConfig, TaskQuery
from corral.scheduler.dispatcher import dispatch
from corral.scheduler.reaper import rescue_expired
from corral.scheduler.service import Scheduler
from corral.scheduler.why import why
from corral.store import Store, open_store
from corral.store.contract import AdmitParams, ClaimParams, CompleteParams, RetryParams

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


# -- the rule, pure ----------------------------------------------------------------------------


def verdict(isolated: bool, **overrides: Any) -> LostVerdict:
    given: dict[str, Any] = {
        "isolated": isolated,
        "failures_before": 0,
        "max_retries": 3,
        "on_timeout": "retry",
        "isolated_crashes_before": 0,
        "quarantine_after": 2,
        "cancel_requested": False,
        "worker_id": "w1",
    }
    return lost_verdict(**(given | overrides))


def test_a_loss_beside_others_makes_a_suspect_and_counts_nothing() -> None:
    lost = verdict(False, failures_before=3, isolated_crashes_before=1)
    assert (lost.target, lost.counts_as_failure, lost.suspect) == (State.READY, False, True)
    assert (lost.isolated_crashes, lost.flag) == (1, "suspect")
    assert "w1 lost" in lost.error and "runs alone next" in lost.error


def test_a_loss_while_alone_counts_and_quarantines_at_the_limit() -> None:
    first = verdict(True)
    assert (first.target, first.counts_as_failure, first.isolated_crashes) == (State.READY, True, 1)
    assert first.suspect and first.flag == "suspect"
    second = verdict(True, failures_before=1, isolated_crashes_before=1)
    assert (second.target, second.counts_as_failure, second.flag) == (
        State.DEAD,
        True,
        "quarantined",
    )
    assert second.error == "quarantined: crashed its worker 2 times while running alone"
    no_retry = verdict(True, max_retries=0)
    assert no_retry.target == State.DEAD and no_retry.flag == "quarantined"
    assert no_retry.error.endswith("1 time while running alone (no retry left)")
    assert verdict(True, isolated_crashes_before=4, quarantine_after=6).target == State.READY


def test_a_pending_cancel_wins_and_a_normal_end_clears_the_suspect() -> None:
    for isolated in (False, True):
        cancelled = verdict(isolated, cancel_requested=True)
        assert (cancelled.target, cancelled.counts_as_failure) == (State.CANCELLED, False)
        assert cancelled.suspect is None and cancelled.flag is None
    ends: tuple[Outcome, ...] = ("succeeded", "failed", "timed_out", "sliced", "cancelled")
    assert [suspect_after(o) for o in ends] == [False] * len(ends)
    assert suspect_after("released") is None  # a release at shutdown proves nothing


# -- the stores, with a moved clock --------------------------------------------------------------


def lose(store: Store, task_ids: list[int], now: float, may_take_suspect: bool = False) -> float:
    """Admit and claim the tasks on one worker, let it die, reap: returns the time after."""
    assert store.task_admit_many(AdmitParams(task_ids, now)) == task_ids
    claimed = store.task_claim(
        ClaimParams(
            "doomed", ["default"], len(task_ids), now + 10, now, may_take_suspect=may_take_suspect
        )
    )
    assert sorted(c.id for c in claimed) == sorted(task_ids)
    assert rescue_expired(store, now + 11) == len(task_ids)
    return now + 11


def test_suspects_run_alone_and_do_not_block_the_queue(store: Store) -> None:
    a, b, c = (submit(store) for _ in range(3))
    now = lose(store, [a, b, c], T0)
    for task_id in (a, b, c):
        record = store.task_get(task_id)
        assert record is not None and record.state == State.READY
        assert record.suspect and record.failures == 0 and record.isolated_crashes == 0
        assert "suspect" in [e.kind for e in store.event_list(task_id)]
    d, e = submit(store, now), submit(store, now)
    assert store.task_admit_many(AdmitParams([a, b, c, d, e], now)) == [a, b, c, d, e]
    # A busy worker passes over the suspects ahead of d and e.
    busy = store.task_claim(ClaimParams("busy", ["default"], 4, now + 10, now))
    assert [(t.id, t.isolated) for t in busy] == [(d, False), (e, False)]
    # Saying it is idle does not help a worker whose rows say otherwise.
    assert (
        store.task_claim(ClaimParams("busy", ["default"], 4, now + 10, now, may_take_suspect=True))
        == []
    )
    # An idle worker takes the oldest suspect alone, however many it could take...
    lone = store.task_claim(
        ClaimParams("idle", ["default"], 4, now + 10, now, may_take_suspect=True)
    )
    assert [(t.id, t.isolated) for t in lone] == [(a, True)]
    assert store.attempt_list(a)[-1].isolated and not store.attempt_list(d)[-1].isolated
    # ...and nothing beside it while it runs.
    f = submit(store, now)
    assert store.task_admit_many(AdmitParams([f], now)) == [f]
    assert (
        store.task_claim(ClaimParams("idle", ["default"], 4, now + 10, now, may_take_suspect=True))
        == []
    )
    assert store.task_claim(ClaimParams("idle", ["default"], 4, now + 10, now)) == []
    assert [t.id for t in store.task_claim(ClaimParams("busy", ["default"], 4, now + 10, now))] == [
        f
    ]
    # A suspect whose run ends normally is cleared; its worker may then take the next one.
    report = AttemptReport(
        a, 2, "succeeded", State.SUCCEEDED, worker_id="idle", suspect=suspect_after("succeeded")
    )
    assert store.task_complete_many(CompleteParams([report], now + 1)) == [a]
    record = store.task_get(a)
    assert record is not None and record.state == State.SUCCEEDED and not record.suspect
    again = store.task_claim(
        ClaimParams("idle", ["default"], 4, now + 10, now + 1, may_take_suspect=True)
    )
    assert [(t.id, t.isolated) for t in again] == [(b, True)]


def test_a_task_is_quarantined_after_its_isolated_crashes(store: Store) -> None:
    task_id = submit(store, max_retries=5, quarantine_after=3)
    # Alone on its worker by chance is not isolated: the first loss only makes it a suspect.
    now = lose(store, [task_id], T0)
    record = store.task_get(task_id)
    assert record is not None and (record.suspect, record.failures) == (True, 0)
    for crash in (1, 2, 3):
        now = lose(store, [task_id], now, may_take_suspect=True)
        record = store.task_get(task_id)
        assert record is not None and record.isolated_crashes == crash
        assert record.failures == crash  # an isolated loss counts against the retries too
        assert record.state == (State.DEAD if crash == 3 else State.READY)
        if crash < 3:
            _, reasons = why(store, task_id, now)
            assert f"{crash} time(s) while running alone; quarantined at 3" in reasons[0].text
    assert record.error == "quarantined: crashed its worker 3 times while running alone"
    assert [a.isolated for a in store.attempt_list(task_id)] == [False, True, True, True]
    events = store.event_list(task_id)
    assert [e.kind for e in events].count("suspect") == 3
    quarantined = [e for e in events if e.kind == "quarantined"]
    assert len(quarantined) == 1 and record.error in (quarantined[0].detail or "")
    _, reasons = why(store, task_id, now)
    assert [r.text for r in reasons] == ["it ended: dead", record.error]
    # An operator's retry gives it a fresh budget; it stays a suspect, so it runs alone.
    assert store.task_retry(RetryParams(task_id, now)) == State.DEAD
    record = store.task_get(task_id)
    assert record is not None and (record.state, record.failures) == (State.READY, 0)
    assert record.suspect and record.isolated_crashes == 0


def test_why_says_a_suspect_waits_for_a_worker_with_nothing_else_running(store: Store) -> None:
    register_worker(store, "w1", concurrency=4)
    task_id = submit(store)
    now = lose(store, [task_id], T0)
    for admit in (False, True):
        if admit:
            assert store.task_admit_many(AdmitParams([task_id], now)) == [task_id]
        _, reasons = why(store, task_id, now)
        assert reasons[0].code == "suspect", reasons
        assert reasons[0].text.startswith("suspect: waits for a worker with nothing else running")
        assert all(r.code not in ("next", "admitted") for r in reasons)
    store.task_claim(ClaimParams("w1", ["default"], 4, now + 10, now, may_take_suspect=True))
    _, reasons = why(store, task_id, now)
    assert reasons[0].text.startswith("it runs alone (a suspect)")


def test_group_caps_hold_while_suspects_wait_for_an_idle_worker(store: Store) -> None:
    register_worker(store, "w1", concurrency=4)
    store.group_configure(GroupConfig("g", max_parallel=2))
    ids = [submit(store, group="g") for _ in range(6)]
    now = T0
    assert dispatch(store, now, 2) == 2
    lost = [t.id for t in store.task_claim(ClaimParams("doomed", ["default"], 4, now + 10, now))]
    assert len(lost) == 2 and rescue_expired(store, now + 11) == 2
    now += 11
    alone_claims = 0
    for _ in range(50):
        dispatch(store, now, 2)
        held = [r for r in store.task_list(TaskQuery(limit=100)) if r.state in ACTIVE]
        assert len(held) <= 2
        mine = [r for r in held if r.state == State.RUNNING]
        claimed = store.task_claim(ClaimParams("w1", ["default"], 4, now + 10, now, not mine))
        if any(t.isolated for t in claimed):
            assert len(claimed) == 1 and not mine and claimed[0].id in lost
            alone_claims += 1
        held = [r for r in store.task_list(TaskQuery(limit=100)) if r.state in ACTIVE]
        assert len(held) <= 2
        for record in held:  # the oldest running task of w1 ends
            if record.state == State.RUNNING:
                report = AttemptReport(
                    record.id, record.attempt, "succeeded", State.SUCCEEDED, suspect=False
                )
                assert store.task_complete_many(CompleteParams([report], now)) == [record.id]
                break
        now += 1
        if all(s == State.SUCCEEDED for s in store.task_states(ids).values()):
            break
    assert all(s == State.SUCCEEDED for s in store.task_states(ids).values())
    assert alone_claims == 2


def test_quarantine_after_is_set_per_task_type(app: corral.App) -> None:
    @app.task(quarantine_after=5)
    def patient(ctx: corral.Context) -> None: ...

    @app.task
    def plain(ctx: corral.Context) -> None: ...

    assert app.get(patient.submit()).quarantine_after == 5
    assert app.get(plain.submit()).quarantine_after == QUARANTINE_AFTER == 2
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="quarantine_after must be a whole number from 1 to"):
            app.task(name=f"bad{bad}", quarantine_after=bad)(lambda ctx: None)


def test_upgrade_to_schema_4_keeps_tasks_and_their_running_attempts(databases: Databases) -> None:
    """A task running when the upgrade runs keeps its rows; lost afterwards, it is a suspect."""
    url = databases.new_url(migrate=False)
    now = time.time()
    _at_v3(databases.backend, url, now)
    store = open_store(url, migrate=False)
    try:
        assert store.migrate()[0] == 4
        record = store.task_get(1)
        assert record is not None and record.state == State.RUNNING
        assert (record.suspect, record.isolated_crashes, record.quarantine_after) == (False, 0, 2)
        assert [a.isolated for a in store.attempt_list(1)] == [False]
        assert rescue_expired(store, now + 100) == 1
        record = store.task_get(1)
        assert record is not None and (record.state, record.suspect) == (State.READY, True)
        assert record.failures == 0
    finally:
        store.close()


def _at_v3(backend: str, url: str, now: float) -> None:
    """Schema 3 with one task running attempt 1 of worker w1 (lease expired at now + 1)."""
    task = (
        "INSERT INTO {tasks} (id, name, pool, group_name, state, priority, level, aging, args, "
        "kwargs, max_retries, backoff, on_timeout, created_at, enqueued_at, run_at, attempt, "
        "worker_id, lease_expires_at) VALUES (1, 'job', 'default', 'default', 'running', 0, 0, "
        """'{{"kind":"none"}}', '[]', '{{}}', 0, '{{"base":1}}', 'retry', {now}, {now}, {now}, """
        "1, 'w1', {lease})"
    )
    attempt = (
        "INSERT INTO {attempts} (task_id, attempt, worker_id, started_at) "
        "VALUES (1, 1, 'w1', {now})"
    )
    if backend == "sqlite":
        import sqlite3

        from corral.store.sqlite import queries as sq
        from corral.store.sqlite.migrate import migrations as sqlite_migrations
        from corral.store.sqlite.store import _split_sql

        conn = sqlite3.connect(url.split("sqlite:///", 1)[1], isolation_level=None)
        conn.execute(sq.CREATE_MIGRATIONS)
        for version, script in sqlite_migrations()[:3]:
            for statement in _split_sql(script):
                conn.execute(statement)
            conn.execute(sq.RECORD_MIGRATION, (version, now))
        conn.execute(task.format(tasks="tasks", now=now, lease=now + 1))
        conn.execute(attempt.format(attempts="attempts", now=now))
        conn.close()
        return
    import psycopg

    from corral.store.postgres import queries as pq
    from corral.store.postgres.store import migrations as postgres_migrations

    with psycopg.connect(url, autocommit=True) as pg:
        pg.execute(pq.CREATE_MIGRATIONS)
        for version, script in postgres_migrations()[:3]:
            pg.execute(script.encode())
            pg.execute(pq.RECORD_MIGRATION, (version, now))
        pg.execute(task.format(tasks="corral_tasks", now=now, lease=now + 1).encode())
        pg.execute(attempt.format(attempts="corral_attempts", now=now).encode())
