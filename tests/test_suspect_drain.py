"""No starvation for suspects: in a pool whose workers are never idle, a suspect still starts,
within a bound, and still runs alone (a worker drains for it: corral.isolation.drain).

Real worker processes on both backends: three workers kept saturated by a submitting thread that
keeps the backlog topped up; a task kills its worker on its first attempt (so it and the tasks
beside it are suspects) and the two survivors, busy at every moment, must still run every suspect
isolated, each within the stated bound of its admission.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from conftest import T0, submit, wait_until

import corral
from corral.app import TaskType
from corral.errors import ConfigError
from corral.isolation import ClaimPlan, claim_plan, drain_due, suspect_patience
from corral.lifecycle import TERMINAL, State
from corral.model import AttemptRecord
from corral.scheduler.reaper import rescue_expired
from corral.scheduler.service import Scheduler
from corral.store import Store
from corral.store.contract import AdmitParams, ClaimParams, DrainParams
from corral.worker.worker import Worker, WorkerConfig

WORKER_SCRIPT = """
import os, signal, sys, time
import corral
from corral.worker.worker import WorkerConfig, run_worker

app = corral.App(sys.argv[1])

@app.task(max_retries=3)
def work(ctx, seconds):
    time.sleep(seconds)

@app.task(max_retries=3)
def crash_once(ctx):
    time.sleep(0.3)  # the tasks claimed beside it are running now
    if ctx.attempt == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return "ran"

run_worker(app, WorkerConfig(concurrency=3, lease=1.5, heartbeat=0.3, poll=0.05, grace=5))
"""
LEASE, HEARTBEAT = 1.5, 0.3
PATIENCE = 2 * LEASE  # the default suspect patience: two leases
LONGEST_RUN = 1.2  # the longest stream task
BACKLOG = 16  # unfinished stream tasks kept at all times: 6 slots on the survivors, never idle
BOUND = PATIENCE + HEARTBEAT + LONGEST_RUN + 15.0  # the stated bound, with a margin for a loaded
# machine; and the suspects queue in admission order, so a later one also waits out those ahead


class Stream:
    """A submitting thread that keeps `BACKLOG` stream tasks unfinished, so no worker is ever
    idle."""

    def __init__(self, submit: TaskType[..., None], app: corral.App) -> None:
        self.submit, self.app = submit, app
        self.unfinished: list[int] = []
        self.submitted = 0
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        rng = random.Random(7)
        try:
            while not self.stop.is_set():
                states = self.app.store.task_states(self.unfinished)
                self.unfinished = [t for t in self.unfinished if states[t] not in TERMINAL]
                while len(self.unfinished) < BACKLOG:
                    self.unfinished.append(self.submit.submit(rng.uniform(0.6, LONGEST_RUN)))
                    self.submitted += 1
                self.stop.wait(0.1)
        except BaseException as exc:  # reported by the test
            self.error = exc


def test_a_suspect_starts_isolated_within_its_bound_in_a_saturated_pool(
    app: corral.App, app_url: str, tmp_path: Path, scheduler: Scheduler
) -> None:
    @app.task(max_retries=3)
    def work(ctx: corral.Context, seconds: float) -> None: ...

    @app.task(max_retries=3)
    def crash_once(ctx: corral.Context) -> str: ...

    worker_py = tmp_path / "worker.py"
    worker_py.write_text(textwrap.dedent(WORKER_SCRIPT))
    stream = Stream(work, app)
    stream.thread.start()
    procs = [
        subprocess.Popen([sys.executable, str(worker_py), app_url]) for _ in range(3)
    ]  # never restarted: the one that dies stays dead, two saturated workers are left
    try:
        wait_until(lambda: stream.submitted > 2 * BACKLOG, timeout=60)  # saturated, turning
        bad = crash_once.submit()
        wait_until(lambda: sum(p.poll() is not None for p in procs) == 1, timeout=60)
        crashed_at = time.monotonic()

        def suspects() -> list[int]:
            """The unfinished suspects (the tasks lost in the crash, once the reaper saw it)."""
            return [t for t in [bad, *stream.unfinished] if app.get(t).suspect]

        # The crash is seen (crash_once is a suspect) and every suspect then starts and ends,
        # while the stream keeps both survivors busy.
        wait_until(lambda: app.get(bad).suspect, timeout=30)
        deadline = time.monotonic() + BOUND + 25
        while app.get(bad).state != State.SUCCEEDED or suspects():
            assert stream.error is None, stream.error
            assert [p.poll() is None for p in procs].count(False) == 1  # no other death
            assert time.monotonic() < deadline, (
                f"suspects {suspects()} (crash_once: {app.get(bad).state}) did not run within "
                f"{time.monotonic() - crashed_at:.0f}s of the crash in a saturated pool"
            )
            time.sleep(0.1)
        assert stream.error is None, stream.error
        assert [p.poll() is None for p in procs].count(False) == 1  # no other death
    finally:
        stream.stop.set()
        stream.thread.join(10)
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    record = app.get(bad)
    assert record.result == '"ran"' and not record.suspect and record.failures == 0
    attempts = app.store.attempt_list(bad)
    assert [(a.outcome, a.isolated) for a in attempts] == [("lost", False), ("succeeded", True)]
    every = [a for t in range(1, bad + stream.submitted + 1) for a in app.store.attempt_list(t)]
    lost = sorted({a.task_id for a in every if a.outcome == "lost"})
    assert bad in lost and len(lost) >= 2  # crash_once and the tasks beside it
    for task_id in lost:
        lone = app.store.attempt_list(task_id)[-1]
        assert lone.outcome == "succeeded" and lone.isolated, (task_id, lone)
        assert not app.get(task_id).suspect
        # Within the bound of its admission, though no worker was idle meanwhile.
        admitted = max(
            e.at
            for e in app.store.event_list(task_id)
            if e.kind == "admitted" and e.at <= lone.started_at
        )
        assert lone.started_at - admitted <= BOUND, (task_id, lone.started_at - admitted)
        # Alone: no other attempt ran on its worker at any moment of its run.
        assert _beside(lone, every) == []
        # The pool stayed saturated: stream tasks started on the other worker while it waited.
        others = [
            a
            for a in every
            if a.worker_id not in (None, lone.worker_id)
            and admitted < a.started_at < lone.started_at
        ]
        assert others or lone.started_at - admitted < PATIENCE


def _beside(lone: AttemptRecord, every: list[AttemptRecord]) -> list[AttemptRecord]:
    end = lone.finished_at or time.time()
    return [
        a
        for a in every
        if a.worker_id == lone.worker_id
        and (a.task_id, a.attempt) != (lone.task_id, lone.attempt)
        and a.started_at < end
        and (a.finished_at or time.time()) > lone.started_at
    ]


# -- the rule, pure -------------------------------------------------------------------------------


def test_a_draining_worker_claims_nothing_until_idle_then_claims_a_suspect() -> None:
    def plan(free: int, busy: int, **state: bool) -> ClaimPlan:
        given = {"alone": False, "draining": False, "settled": True} | state
        return claim_plan(free=free, busy=busy, **given)

    assert plan(4, 0) == ClaimPlan(4, True)  # idle: a suspect if one is admitted
    assert plan(3, 1) == ClaimPlan(3, False)  # busy: ordinary work only
    assert plan(0, 4) == ClaimPlan(0, False)
    assert plan(4, 0, alone=True) == plan(3, 1, alone=True) == ClaimPlan(0, False)
    assert plan(3, 1, draining=True) == ClaimPlan(0, False)  # draining: nothing new
    assert plan(4, 0, draining=True, settled=False) == ClaimPlan(0, False)  # rows not yet idle
    assert plan(4, 0, draining=True) == ClaimPlan(4, True)
    assert drain_due(alone=False) and not drain_due(alone=True)
    assert suspect_patience(15.0, None) == 30.0 and suspect_patience(15.0, 4.0) == 4.0


def test_suspect_patience_is_checked(app: corral.App) -> None:
    for bad in (-1, "soon"):
        with pytest.raises(ConfigError, match="suspect_patience must be seconds >= 0"):
            Worker.of(app, WorkerConfig(suspect_patience=bad))  # type: ignore[arg-type]
    assert Worker.of(app, WorkerConfig(lease=2.0))._patience == 4.0


# -- the store: one drainer per overdue suspect ----------------------------------------------------


def test_one_worker_holds_the_drain_mark_of_an_overdue_suspect(store: Store) -> None:
    a, b, c = (submit(store) for _ in range(3))
    assert store.task_admit_many(AdmitParams([a, b], T0)) == [a, b]
    claimed = store.task_claim(ClaimParams("doomed", ["default"], 2, T0 + 1, T0))
    assert sorted(t.id for t in claimed) == [a, b]
    assert rescue_expired(store, T0 + 2) == 2  # both suspects, ready again
    now = T0 + 10
    assert store.task_admit_many(AdmitParams([a], now)) == [a]
    assert store.task_admit_many(AdmitParams([b, c], now + 5)) == [b, c]
    patience = 3.0

    def mark(worker: str, at: float, pools: tuple[str, ...] = ("default",)) -> int | None:
        return store.task_drain_mark(DrainParams(worker, pools, at - patience, at + 5, at))

    assert mark("w1", now + 1) is None  # not waiting longer than the patience yet
    assert mark("w1", now + 4) == a  # overdue: w1 drains for it (until now + 9)
    assert mark("w2", now + 4) is None  # one drainer per suspect; b is not overdue yet
    assert mark("w3", now + 4, ("other",)) is None  # suspects of other pools are not its concern
    assert mark("w1", now + 6) == a  # renewed (until now + 11)
    assert mark("w2", now + 9) == b  # b overdue now (c is no suspect): w2 drains for it
    assert mark("w1", now + 9.5) == a  # its own first, though b is overdue too
    assert mark("w3", now + 10) is None  # both held
    assert mark("w2", now + 13) == b  # renewed (until now + 18)
    assert mark("w3", now + 15) == a  # w1 stopped renewing: its mark lapsed, w3 takes it
    assert mark("w1", now + 15.1) is None  # a is w3's, b is w2's
    # The drainer, idle, claims the oldest suspect alone; its mark means nothing afterwards.
    lone = store.task_claim(
        ClaimParams("w3", ["default"], 4, now + 30, now + 16, may_take_suspect=True)
    )
    assert [(t.id, t.isolated) for t in lone] == [(a, True)]
    assert mark("w3", now + 16.5) is None  # b's mark is w2's
    assert mark("w2", now + 16.5) == b
