"""Workflows on both backends: a DAG submitted in one transaction (or not at all), ranks and
exclusive steps, upstream failures that fail or let run, status as a whole, cancel as a whole,
and dependency settling that follows the finished upstreams."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pytest
from conftest import T0, finish, register_worker, start, submit

import corral
from corral.errors import ConfigError, TaskNotFound, TransitionRefused
from corral.lifecycle import State
from corral.model import TaskQuery, WorkflowStatus
from corral.store import Store
from corral.store.contract import AdmitParams, CancelParams, ClaimParams, DueParams
from corral.worker.renewal import renew_worker


def noop(ctx: corral.Context, n: int = 0) -> int:
    return n


def register(app: corral.App) -> corral.TaskType[..., int]:
    return app.task(noop)


def test_workflow_submits_a_dag_with_ranks_and_an_exclusive_head(app: corral.App) -> None:
    job = register(app)
    wf = app.workflow("nightly", group="db1")
    head = wf.add(job, 0, exclusive=True)
    loads = [wf.add(job, n, after=[head]) for n in range(1, 4)]
    check = wf.add(job, 9, after=loads[:2])
    report = wf.add("noop", 10, after=[*loads, check], on_upstream_failure="run")
    workflow_id = wf.submit()

    records = {r.id: r for r in app.store.task_list(TaskQuery(limit=100))}
    assert len(records) == 6 and wf.ids is not None
    assert [records[i].rank for i in wf.ids] == [3, 2, 2, 1, 1, 0]
    assert [records[i].exclusive for i in wf.ids] == [True] + [False] * 5
    assert {records[i].group for i in wf.ids} == {"db1"}
    assert {records[i].workflow_id for i in wf.ids} == {workflow_id}
    assert records[report.id].on_upstream_failure == "run"
    assert records[head.id].state == State.READY
    assert all(records[s.id].state == State.WAITING for s in [*loads, check, report])
    assert app.get(check.id).depends_on == tuple(sorted(s.id for s in loads[:2]))
    assert app.get(report.id).depends_on == tuple(sorted([*(s.id for s in loads), check.id]))

    status = app.workflow_status(workflow_id)
    assert (status.name, status.group, status.total) == ("nightly", "db1", 6)
    assert status.counts == {"ready": 1, "waiting": 5}
    assert status.state == "waiting"
    with pytest.raises(ConfigError, match="submitted already"):
        wf.submit()


def test_a_cycle_is_rejected_and_nothing_is_written(app: corral.App) -> None:
    job = register(app)
    wf = app.workflow("loop")
    wf.add(job, 1, step="extract", after=["load"])
    wf.add(job, 2, step="transform", after=["extract"])
    wf.add(job, 3, step="load", after=["transform"])
    wf.add(job, 4, step="free")
    with pytest.raises(corral.CycleError) as info:
        wf.submit()
    assert set(info.value.cycle) == {"extract", "transform", "load"}
    assert "cycle" in str(info.value) and "'extract'" in str(info.value)
    assert isinstance(info.value, ConfigError)
    assert app.store.task_list(TaskQuery(limit=10)) == []
    assert app.store.workflow_get(1) is None
    assert wf.ids is None


def test_an_unknown_dependency_is_rejected_and_nothing_is_written(app: corral.App) -> None:
    job = register(app)
    wf = app.workflow("unknown-step")
    wf.add(job, 1, after=["nowhere"])
    with pytest.raises(ConfigError, match="'nowhere', which is not in the workflow"):
        wf.submit()
    wf = app.workflow("unknown-task")
    first = wf.add(job, 1)
    wf.add(job, 2, after=[first], depends_on=[987654])
    with pytest.raises(ConfigError, match=r"don't exist: \[987654\]"):
        wf.submit()
    assert app.store.task_list(TaskQuery(limit=10)) == []
    assert app.store.workflow_get(1) is None
    other = app.workflow("other").add(job, 1)
    with pytest.raises(ConfigError, match="another workflow"):
        app.workflow("mixed").add(job, 1, after=[other])
    with pytest.raises(ConfigError, match="drop group="):
        app.workflow("grouped").add(job, 1, group="x")
    with pytest.raises(ConfigError, match="no steps"):
        app.workflow("empty").submit()
    with pytest.raises(ConfigError, match="on_upstream_failure"):
        app.workflow("bad").add(job, 1, on_upstream_failure="maybe")


def test_a_workflow_can_depend_on_tasks_already_stored(app: corral.App) -> None:
    job = register(app)
    before = job.submit(0)
    wf = app.workflow("after-existing")
    step = wf.add(job, 1, depends_on=[before])
    wf.submit()
    assert app.get(step.id).depends_on == (before,)
    assert app.get(step.id).state == State.WAITING


# -- upstream failures, settling ----------------------------------------------------------------


@pytest.mark.parametrize("ending", [State.DEAD, State.CANCELLED])
def test_a_failed_dependency_fails_dependents_or_lets_them_run(store: Store, ending: State) -> None:
    register_worker(store)
    upstream, other = submit(store), submit(store)
    strict = submit(store, depends_on=(upstream, other))
    lenient = submit(store, depends_on=(upstream, other), on_upstream_failure="run")
    if ending == State.DEAD:
        finish(store, start(store, upstream), State.DEAD)
    else:
        store.task_cancel(CancelParams(upstream, T0))
    assert store.task_fail_upstream(DueParams(T0 + 1, 100)) == 1
    assert store.task_release_due(DueParams(T0 + 1, 100)) == 0  # `other` has not ended yet
    states = store.task_states([strict, lenient])
    assert states == {strict: State.UPSTREAM_FAILED, lenient: State.WAITING}
    finish(store, start(store, other, T0 + 2), State.SUCCEEDED, T0 + 2)
    assert store.task_fail_upstream(DueParams(T0 + 3, 100)) == 0
    assert store.task_release_due(DueParams(T0 + 3, 100)) == 1
    assert store.task_states([lenient]) == {lenient: State.READY}


def test_a_dependency_that_ended_before_the_submit_is_settled(store: Store) -> None:
    register_worker(store)
    done, dead = submit(store), submit(store)
    finish(store, start(store, done), State.SUCCEEDED)
    finish(store, start(store, dead), State.DEAD)
    ok = submit(store, depends_on=(done,))
    doomed = submit(store, depends_on=(done, dead))
    runs = submit(store, depends_on=(dead,), on_upstream_failure="run")
    assert store.task_fail_upstream(DueParams(T0 + 1, 100)) == 1
    assert store.task_release_due(DueParams(T0 + 1, 100)) == 2
    assert store.task_states([ok, doomed, runs]) == {
        ok: State.READY,
        doomed: State.UPSTREAM_FAILED,
        runs: State.READY,
    }


def test_settling_does_not_touch_the_waiting_backlog(store: Store) -> None:
    """Tasks waiting on a task that is still running are not re-checked each round: the release
    finds only tasks whose count of unsettled dependencies is 0 (an index), and a settle
    recounts only the dependents of tasks that ended."""
    register_worker(store)
    blocker, quick = submit(store), submit(store)
    claim = start(store, blocker)
    backlog = [new for new in (submit(store, depends_on=(blocker,)) for _ in range(300))]
    child = submit(store, depends_on=(quick,))
    finish(store, start(store, quick), State.SUCCEEDED)
    assert store.task_release_due(DueParams(T0 + 1, 100)) == 1
    assert store.task_states([child]) == {child: State.READY}
    if store.url.startswith("sqlite"):
        from corral.store.sqlite import queries as q

        plan = " ".join(
            str(row[-1])
            for row in store._read(  # type: ignore[attr-defined]
                "EXPLAIN QUERY PLAN " + q.RELEASE_WAITING,
                {"now": T0, "limit": 10, "no_aging": ""},
            )
        )
        assert "tasks_waiting_settled" in plan
    finish(store, claim, State.SUCCEEDED)
    assert store.task_release_due(DueParams(T0 + 2, 1000)) == len(backlog)


# -- status and cancel as a whole ----------------------------------------------------------------


def test_workflow_cancel_ends_unstarted_tasks_at_once_and_interrupts_running_ones(
    app: corral.App,
) -> None:
    job = register(app)
    store = app.store
    register_worker(store, now=time.time())
    wf = app.workflow("to-cancel")
    head = wf.add(job, 0)
    rest = [wf.add(job, n, after=[head]) for n in range(1, 5)]
    workflow_id = wf.submit()
    now = time.time()
    assert store.task_admit_many(AdmitParams([head.id], now)) == [head.id]
    claim = store.task_claim(ClaimParams("w1", ["default"], 1, now + 30, now))[0]
    assert app.workflow_status(workflow_id).state == "running"

    assert app.cancel_workflow(workflow_id) == (4, 1)
    status = app.workflow_status(workflow_id)
    assert status.counts == {"cancelled": 4, "running": 1}
    assert app.get(head.id).cancel_requested
    assert renew_worker(store, "w1", time.time() + 30, time.time()) == [head.id]
    cancels = [e for s in rest for e in store.event_list(s.id) if e.kind == "cancelled"]
    assert len(cancels) == 4 and len({e.at for e in cancels}) == 1  # one transaction
    finish(store, claim, State.CANCELLED, now=time.time())
    status = app.workflow_status(workflow_id)
    assert (status.counts, status.state, status.finished) == ({"cancelled": 5}, "cancelled", 5)
    assert app.cancel_workflow(workflow_id) == (0, 0)  # nothing left to cancel
    with pytest.raises(TaskNotFound, match="no workflow with id 999"):
        app.cancel_workflow(999)
    with pytest.raises(TaskNotFound):
        app.workflow_status(999)
    with pytest.raises(TransitionRefused, match="already ended: it is cancelled"):
        app.cancel(head.id)


def test_workflow_state_from_counts() -> None:
    def state(**counts: int) -> str:
        return WorkflowStatus(1, "w", "g", 0.0, counts).state

    assert state(waiting=2, ready=1) == "waiting"
    assert state(waiting=2, running=1) == "running"
    assert state(waiting=1, succeeded=1) == "running"
    assert state(succeeded=3) == "succeeded"
    assert state(succeeded=2, dead=1, upstream_failed=2) == "failed"
    assert state(succeeded=2, cancelled=1) == "cancelled"
    assert state(cancelled=1, upstream_failed=1) == "failed"


def test_a_submission_aborted_to_break_a_deadlock_runs_again() -> None:
    """PostgreSQL: a submit with dependencies locks its upstream rows; if the server aborts it to
    break a deadlock (with a heartbeat, say), it wrote nothing and runs again."""
    psycopg = pytest.importorskip("psycopg")
    from corral.errors import DatabaseError
    from corral.store.postgres.reconnect import Retrier, submission

    calls: list[int] = []

    def transaction() -> Any:
        return contextlib.nullcontext(None)

    def flaky(conn: Any, look: bool) -> str:
        calls.append(1)
        if len(calls) < 3:
            try:
                raise psycopg.errors.DeadlockDetected("deadlock detected")
            except psycopg.Error:
                raise DatabaseError("PostgreSQL: deadlock detected") from None
        return "stored"

    assert submission(Retrier(), transaction, flaky, None) == "stored" and len(calls) == 3

    def lost(conn: Any, look: bool) -> str:
        raise DatabaseError("connection lost")

    with pytest.raises(DatabaseError, match="connection lost"):
        submission(Retrier(), transaction, lost, None)


# -- steps deduplicated onto tasks already stored ---------------------------------------------


def test_a_workflow_counts_the_tasks_its_steps_were_deduplicated_onto(app: corral.App) -> None:
    """A step whose dedup key an unfinished task holds is that task: the workflow's state and
    progress follow it, whether it belongs to no workflow or to another one."""
    job = register(app)
    store = app.store
    register_worker(store, now=time.time())
    held = job.submit(1, dedup_key="orders@day")  # ready, of no workflow

    wf = app.workflow("all-deduplicated")
    step = wf.add(job, 1, dedup_key="orders@day")
    only = wf.submit()
    assert step.id == held
    status = app.workflow_status(only)
    assert (status.counts, status.total, status.finished) == ({"ready": 1}, 1, 0)
    assert status.state == "waiting"  # not "succeeded, 0/0"

    other = app.workflow("mixed")
    again = other.add(job, 1, dedup_key="orders@day")
    fresh = other.add(job, 2, after=[again])
    mixed = other.submit()
    assert again.id == held and app.get(fresh.id).workflow_id == mixed
    assert app.workflow_status(mixed).counts == {"ready": 1, "waiting": 1}

    now = time.time()
    assert store.task_admit_many(AdmitParams([held], now)) == [held]
    claim = store.task_claim(ClaimParams("w1", ["default"], 1, now + 30, now))[0]
    assert app.workflow_status(only).state == "running"
    finish(store, claim, State.SUCCEEDED, now=time.time())
    status = app.workflow_status(only)
    assert (status.counts, status.state, status.finished) == ({"succeeded": 1}, "succeeded", 1)
    assert app.workflow_status(mixed).counts == {"succeeded": 1, "waiting": 1}
    assert app.workflow_status(mixed).state == "running"
    # Cancelling a workflow leaves alone the tasks it only relies on: they are someone else's.
    assert app.cancel_workflow(mixed) == (1, 0)
    assert app.get(held).state == State.SUCCEEDED


def test_two_steps_of_one_workflow_with_one_dedup_key_count_once(app: corral.App) -> None:
    job = register(app)
    wf = app.workflow("twice")
    first = wf.add(job, 1, dedup_key="k")
    second = wf.add(job, 2, dedup_key="k")
    workflow_id = wf.submit()
    assert first.id == second.id
    assert app.workflow_status(workflow_id).counts == {"ready": 1}
