"""Retention: the pruner deletes finished history older than its retention, in bounded batches,
and never what a waiting dependent, an unfinished workflow or an undelivered event still needs.
Both backends, with a moved clock (store-level `now`), no sleeping."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

import pytest
from conftest import T0, finish, new_task, register_worker, start, submit, wait_until

import corral
from corral.clock import ManualClock
from corral.lifecycle import State
from corral.model import NewWorkflow
from corral.retention import DEFAULT_RETENTION, Retention, plan
from corral.scheduler.pruner import Pruner
from corral.scheduler.service import LEADERSHIP, Scheduler, SchedulerConfig
from corral.store import Store, open_store
from corral.store.contract import (
    CancelParams,
    DueParams,
    InsertParams,
    Lease,
    LeaseKind,
    WorkflowInsertParams,
)

DAY = 86400.0
AFTER_WEEK = T0 + DEFAULT_RETENTION + 60


@pytest.fixture(autouse=True)
def _worker(store: Store) -> None:
    register_worker(store, lease=1e9)


def done(store: Store, target: State = State.SUCCEEDED, now: float = T0, **task: object) -> int:
    """A task submitted, run and finished (`target`) at `now`."""
    task_id = submit(store, now, **task)
    claim = start(store, task_id, now)
    finish(store, claim, target, now)
    return task_id


def newest(store: Store) -> int:
    """A later unfinished task (on SQLite the newest task is kept: its id must not come back)."""
    return submit(store, T0, name="later", run_at=T0 + 1e9)


def prune(store: Store, now: float, batch: int = 1000) -> int:
    return store.task_prune(plan(store.retention_get(), now, batch))


def gone(store: Store, task_id: int) -> bool:
    return (
        store.task_get(task_id) is None
        and store.event_list(task_id) == []
        and store.attempt_list(task_id) == []
    )


def test_finished_tasks_older_than_the_retention_go_with_their_history(store: Store) -> None:
    old = [done(store, State.SUCCEEDED), done(store, State.DEAD)]
    cancelled = submit(store, T0)
    store.task_cancel(CancelParams(cancelled, T0))
    recent = done(store, now=T0 + 6 * DAY)
    unfinished = submit(store, T0)
    newest(store)
    assert store.attempt_list(old[0]) and store.event_list(old[0])
    assert prune(store, T0 + DEFAULT_RETENTION - 60) == 0  # not a week yet
    assert prune(store, AFTER_WEEK) == 3
    assert all(gone(store, t) for t in [*old, cancelled])
    assert store.task_get(recent) is not None and store.event_list(recent)
    assert store.task_get(unfinished) is not None
    assert prune(store, AFTER_WEEK) == 0


def test_batches_are_bounded_oldest_first(store: Store) -> None:
    ids = [done(store, now=T0 + i) for i in range(5)]
    newest(store)
    later = T0 + 4 + DEFAULT_RETENTION + 60
    assert [prune(store, later, batch=2) for _ in range(4)] == [2, 2, 1, 0]
    assert all(gone(store, t) for t in ids)
    ids = [done(store, now=T0 + 10 + i) for i in range(3)]
    newest(store)
    assert prune(store, T0 + 11.5 + DEFAULT_RETENTION, batch=10) == 2  # only the two oldest
    assert gone(store, ids[0]) and gone(store, ids[1]) and not gone(store, ids[2])


def test_a_waiting_dependent_keeps_its_upstream(store: Store) -> None:
    upstream = done(store)
    other = submit(store, T0)  # never finishes: the dependent waits
    dependent = submit(store, T0, depends_on=(upstream, other))
    newest(store)
    assert store.task_get(dependent).state == State.WAITING  # type: ignore[union-attr]
    assert prune(store, AFTER_WEEK) == 0
    assert store.task_get(upstream) is not None
    store.task_cancel(CancelParams(other, T0))
    store.task_release_due(DueParams(T0, 100))
    store.task_fail_upstream(DueParams(T0, 100))
    newest(store)
    assert store.task_get(dependent).state in (State.UPSTREAM_FAILED, State.CANCELLED)  # type: ignore[union-attr]
    assert prune(store, AFTER_WEEK) == 3  # all finished now: upstream, other, dependent
    assert gone(store, upstream) and gone(store, dependent)


def test_an_unfinished_workflow_keeps_its_finished_steps(store: Store) -> None:
    wf = store.workflow_insert(
        WorkflowInsertParams(
            NewWorkflow("nightly", "default"), [new_task(name="a"), new_task(name="b")], T0
        )
    )
    first, second = (t.id for t in wf.tasks)
    finish(store, start(store, first), State.SUCCEEDED)
    store.workflow_insert(
        WorkflowInsertParams(NewWorkflow("later", "default"), [new_task(name="c")], T0)
    )
    assert prune(store, AFTER_WEEK) == 0  # b is still ready: the workflow is unfinished
    assert store.task_get(first) is not None
    finish(store, start(store, second), State.SUCCEEDED)
    store.workflow_insert(
        WorkflowInsertParams(NewWorkflow("latest", "default"), [new_task(name="d")], T0)
    )
    assert prune(store, AFTER_WEEK) == 2
    assert gone(store, first) and gone(store, second)
    assert store.workflow_get(wf.id) is None  # its tasks are all gone


def test_a_task_linked_into_an_unfinished_workflow_is_kept(store: Store) -> None:
    shared = done(store, dedup_key=None)
    # a workflow step deduplicated onto an unfinished task links it; make `shared` a step of
    # the workflow through a dedup key held while it was unfinished
    held = submit(store, T0, dedup_key="orders")
    wf = store.workflow_insert(
        WorkflowInsertParams(
            NewWorkflow("w", "default"),
            [new_task(name="step", dedup_key="orders"), new_task(name="tail")],
            T0,
        )
    )
    assert wf.tasks[0].id == held and not wf.tasks[0].created
    finish(store, start(store, held), State.SUCCEEDED)
    newest(store)
    # `held` is finished but the workflow's own `tail` is not: `held` stays, `shared` goes
    assert prune(store, AFTER_WEEK) == 1
    assert gone(store, shared) and store.task_get(held) is not None


def test_undelivered_events_keep_their_task(store: Store) -> None:
    assert store.lease_acquire(Lease(LeaseKind.CONSUMER, "alerts", "me", T0 + 1e9), T0)
    task_id = done(store)
    newest(store)
    assert prune(store, AFTER_WEEK) == 0  # "alerts" has not read its events yet
    feed = store.event_fetch_unseen("alerts", 1000)
    mine = [f for f in feed if f.event.task_id == task_id]
    assert mine
    last = max(mine, key=lambda f: (f.xid, f.event.id))
    assert store.consumer_advance("alerts", "me", (last.xid, last.event.id), T0)
    assert prune(store, AFTER_WEEK) == 1
    assert gone(store, task_id)


def test_retention_per_task_type(store: Store) -> None:
    store.retention_set("poll", 3600)
    store.retention_set("audit", 30 * DAY)
    poll, job, audit = (done(store, name=n) for n in ("poll", "job", "audit"))
    newest(store)
    assert store.retention_get() == Retention(DEFAULT_RETENTION, {"poll": 3600, "audit": 30 * DAY})
    assert prune(store, T0 + 3600 + 1) == 1 and gone(store, poll)
    assert prune(store, AFTER_WEEK) == 1 and gone(store, job)
    assert store.task_get(audit) is not None
    store.retention_set("audit", None)  # back to the default
    assert prune(store, AFTER_WEEK) == 1 and gone(store, audit)
    store.retention_set("*", 2 * DAY)
    kept = done(store, now=T0 + DAY)
    newest(store)
    assert prune(store, T0 + 3 * DAY + 1) == 1 and gone(store, kept)


def test_submit_ids_of_pruned_tasks_go(store: Store) -> None:
    first = store.task_insert_many(InsertParams([new_task()], T0, submit_id="call-1"))[0]
    again = store.task_insert_many(InsertParams([new_task()], T0, submit_id="call-1"))[0]
    assert again == replace(first, created=False)
    finish(store, start(store, first.id), State.SUCCEEDED)
    newest(store)
    assert prune(store, AFTER_WEEK) == 1
    fresh = store.task_insert_many(InsertParams([new_task()], AFTER_WEEK, submit_id="call-1"))[0]
    assert fresh.created and fresh.id != first.id


def test_app_retention_settings_are_validated(app: corral.App) -> None:
    app.retention.configure(default="3d", per_type={"poll": timedelta(hours=1), "load": 600})
    assert app.retention.get() == Retention(3 * DAY, {"poll": 3600.0, "load": 600.0})
    app.retention.configure(per_type={"load": None})
    assert app.retention.get() == Retention(3 * DAY, {"poll": 3600.0})
    for bad, message in [
        ({"default": "soon"}, "retention default must be a duration"),
        ({"default": 0}, "at least 1 second"),
        ({"default": 1e12}, "retention default must be a finite duration"),
        ({"per_type": {"*": "1d"}}, "not a task type name"),
        ({"per_type": {"x": -1}}, "must not be negative"),
        ({"per_type": ["x"]}, "per_type must map"),
    ]:
        with pytest.raises(corral.ConfigError, match=message):
            app.retention.configure(**bad)  # type: ignore[arg-type]
    assert app.retention.get() == Retention(3 * DAY, {"poll": 3600.0})


def test_the_pruner_runs_under_the_leader_only(store: Store) -> None:
    task_id = done(store)
    newest(store)
    clock = ManualClock(AFTER_WEEK)
    other = open_store(store.url)  # type: ignore[attr-defined]  # another process's, in effect
    assert other.lease_acquire(
        Lease(LeaseKind.LEADER, LEADERSHIP, "other", AFTER_WEEK + 1e6), AFTER_WEEK
    )
    config = SchedulerConfig(tick=0.01, standby_poll=0.02, lease=0.3)
    standby = Scheduler(store, config, clock=clock)
    thread = threading.Thread(target=standby.run, daemon=True)
    thread.start()
    try:
        for _ in range(20):  # a stand-by polls the leadership, and prunes nothing
            clock.advance(0.2)
            threading.Event().wait(0.05)
        assert not standby.is_leader and store.task_get(task_id) is not None
        other.lease_release(Lease(LeaseKind.LEADER, LEADERSHIP, "other", 0.0))
        wait_until(lambda: clock.advance(0.2) or store.task_get(task_id) is None, timeout=30)
        assert standby.is_leader
    finally:
        standby.stop()
        thread.join(10)
        other.close()


def test_the_pruner_is_one_of_the_leader_services(store: Store) -> None:
    sched = Scheduler(store, SchedulerConfig(prune_every=120, fast_lane=False))  # tasks stay ready
    names = [s.name for s in sched.services]
    assert names == ["resolve", "promote", "reap", "dispatch", "prune", "upkeep"]
    pruner = sched.services[-2]
    assert isinstance(pruner, Pruner) and pruner.interval == 120
    task_id = done(store)
    newest(store)
    assert sched.run_once(AFTER_WEEK) == 1  # the first round prunes; the next waits its interval
    assert gone(store, task_id)
    second = done(store)
    newest(store)
    assert sched.run_once(AFTER_WEEK + 60) == 0
    assert sched.run_once(AFTER_WEEK + 121) == 1 and gone(store, second)
