"""The parts of the store contract added by the split, on both backends: the one lease primitive
(leader, consumer, worker), the typed adapter that joins a caller's transaction, and that every
transition a store performs is one that lifecycle.ALLOWED has."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator

import pytest
from conftest import T0, finish, new_task, register_worker, start, submit

from corral.errors import ConfigError
from corral.lifecycle import ALLOWED, State
from corral.model import NewWorkflow
from corral.scheduler.dispatcher import dispatch
from corral.store import Store, open_store
from corral.store.contract import (
    CancelParams,
    DueParams,
    InsertParams,
    JoinedTransaction,
    Lease,
    LeaseKind,
    RetryParams,
    WorkflowCancelParams,
    WorkflowInsertParams,
    join,
)
from corral.worker.renewal import renew_worker, worker_lease


@pytest.fixture
def other(store: Store) -> Iterator[Store]:
    """Another process's view of the same database."""
    second = open_store(store.url)
    yield second
    second.close()


def test_leader_lease_renews_only_while_held(store: Store, other: Store) -> None:
    mine = Lease(LeaseKind.LEADER, "scheduler", "a", T0 + 5)
    assert not store.lease_renew(mine, T0)  # not taken yet: nothing to renew
    assert store.lease_acquire(mine, T0)
    assert store.lease_renew(Lease(LeaseKind.LEADER, "scheduler", "a", T0 + 9), T0 + 4)
    theirs = Lease(LeaseKind.LEADER, "scheduler", "b", T0 + 20)
    assert not other.lease_renew(theirs, T0 + 5)
    store.lease_release(mine)
    assert not store.lease_renew(mine, T0 + 6)
    assert other.lease_acquire(theirs, T0 + 6)


def test_consumer_lease_is_one_primitive_with_the_cursor(store: Store, other: Store) -> None:
    first = Lease(LeaseKind.CONSUMER, "alerts", "first", T0 + 10)
    second = Lease(LeaseKind.CONSUMER, "alerts", "second", T0 + 40)
    assert store.lease_acquire(first, T0)
    assert not other.lease_acquire(second, T0 + 1)
    assert store.lease_renew(Lease(LeaseKind.CONSUMER, "alerts", "first", T0 + 20), T0 + 9)
    assert not other.lease_acquire(second, T0 + 15)  # renewed: still first's
    assert store.consumer_advance("alerts", "first", (0, 0), T0 + 16)
    assert other.lease_acquire(second, T0 + 21)  # expired: taken over
    assert not store.lease_renew(first, T0 + 22)
    assert not store.consumer_advance("alerts", "first", (0, 0), T0 + 22)
    other.lease_release(second)
    assert store.lease_acquire(Lease(LeaseKind.CONSUMER, "alerts", "first", T0 + 60), T0 + 23)
    # the wrappers kept for one release go through the same primitive
    assert not other.lease_acquire(Lease(LeaseKind.CONSUMER, "alerts", "second", T0 + 50), T0 + 24)
    store.consumer_release("alerts", "first")
    assert other.lease_acquire(Lease(LeaseKind.CONSUMER, "alerts", "second", T0 + 50), T0 + 25)


def test_worker_lease_renews_its_tasks_and_is_released(store: Store) -> None:
    assert not store.lease_renew(worker_lease("w1", T0 + 10), T0)  # not registered
    register_worker(store, "w1", lease=10)
    task_id = submit(store)
    start(store, task_id)
    assert [t.id for t in store.task_fetch_expired(T0 + 50, 10)] == [task_id]  # claimed to +30
    assert store.lease_acquire(worker_lease("w1", T0 + 100), T0 + 5)
    assert store.task_fetch_expired(T0 + 50, 10) == []
    assert store.task_cancel(CancelParams(task_id, T0 + 6)) == (State.RUNNING, None)
    assert renew_worker(store, "w1", T0 + 200, T0 + 7) == [task_id]
    with pytest.raises(ConfigError, match="own lease"):
        store.lease_renew(Lease(LeaseKind.WORKER, "w1", "w2", T0 + 9), T0 + 8)
    store.lease_release(worker_lease("w1", 0.0))
    assert [w.id for w in store.worker_list(T0 + 8)] == []


def test_a_renewal_kept_waiting_by_sqlites_write_lock_counts_from_when_it_got_it(
    store: Store,
) -> None:
    """A worker whose handler holds the GIL while its own store call is inside a write keeps
    SQLite's lock for the hold; its companion's renewal waits with it and must not commit an
    expiry that passed meanwhile, or the reaper recovers attempts of a live worker."""
    if not store.url.startswith("sqlite"):
        pytest.skip("SQLite's one write lock; PostgreSQL renews rows")
    register_worker(store, "w1", lease=10)
    task_id = submit(store)
    start(store, task_id)
    holder = sqlite3.connect(str(store.path), isolation_level=None)  # type: ignore[attr-defined]
    holder.execute("BEGIN IMMEDIATE")
    renewed = threading.Thread(target=renew_worker, args=(store, "w1", T0 + 100.5, T0 + 100))
    renewed.start()
    time.sleep(1.0)
    holder.execute("COMMIT")
    holder.close()
    renewed.join(10)
    # Counted from the lock: the task's lease runs past T0 + 100.5 by about the wait.
    assert store.task_fetch_expired(T0 + 101.2, 10) == []
    assert [t.id for t in store.task_fetch_expired(T0 + 200, 10)] == [task_id]
    (worker,) = store.worker_list(T0 + 101.2)
    assert worker.heartbeat_at > T0 + 100.7


def test_a_joined_transaction_is_checked_where_it_is_made(store: Store, tmp_path: object) -> None:
    assert join(None) is None
    with pytest.raises(ConfigError, match="connection= must be"):
        join("a connection")
    conn = sqlite3.connect(":memory:", isolation_level=None)
    joined = join(conn)
    assert joined == JoinedTransaction("sqlite", conn)
    if store.url.startswith("sqlite"):
        with pytest.raises(ConfigError, match="transaction open"):
            store.task_insert_many(InsertParams([new_task()], T0, joined))
    else:
        with pytest.raises(ConfigError, match="psycopg connection on a PostgreSQL store"):
            store.task_insert_many(InsertParams([new_task()], T0, joined))
    conn.close()
    assert store.task_list.__name__ == "task_list"  # nothing was written
    assert store.event_fetch_after(0, 10) == []


def test_every_event_a_transition_writes_is_allowed(store: Store) -> None:
    """Run each transition of the contract and check each event's from -> to against ALLOWED."""
    register_worker(store)
    done, dead, running, waiting = (submit(store) for _ in range(4))
    upstream = submit(store)
    dependent = store.task_insert_many(InsertParams([new_task(depends_on=(upstream,))], T0))[0].id
    later = submit(store, run_at=T0 + 50)
    finish(store, start(store, done), State.SUCCEEDED)
    finish(store, start(store, dead), State.DEAD)
    finish(store, start(store, upstream), State.DEAD)
    start(store, running)
    store.task_cancel(CancelParams(running, T0 + 1))
    store.task_cancel(CancelParams(waiting, T0 + 1))
    store.task_retry(RetryParams(dead, T0 + 2))
    store.task_retry(RetryParams(waiting, T0 + 2))
    store.task_fail_upstream(DueParams(T0 + 3, 100))
    store.task_release_due(DueParams(T0 + 60, 100))
    flow = store.workflow_insert(
        WorkflowInsertParams(NewWorkflow("flow", "default"), [new_task(), new_task()], T0 + 61)
    )
    dispatch(store, T0 + 62)
    assert store.workflow_cancel(WorkflowCancelParams(flow.id, T0 + 63))[0] >= 1
    states = store.task_states([dependent, later, waiting])
    assert states == {
        dependent: State.UPSTREAM_FAILED,
        later: State.ADMITTED,
        waiting: State.ADMITTED,
    }
    kinds = set()
    for event in store.event_fetch_after(0, 10_000):
        kinds.add(event.kind)
        if event.kind == "submitted":
            assert event.from_state is None and event.to_state in ("waiting", "ready")
        elif event.to_state is None:
            assert event.kind == "cancel_requested" and event.from_state == "running"
        else:
            assert State(event.to_state) in ALLOWED[State(event.from_state)], event
    assert {"admitted", "running", "succeeded", "dead", "cancelled", "ready"} <= kinds
    assert {"cancel_requested", "upstream_failed", "submitted"} <= kinds
