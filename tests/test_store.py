"""Focused behaviour tests of the Store contract, on every backend. The clock is moved by hand:
every call gets its `now`."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from conftest import T0, Databases, finish, new_task, register_worker, start, submit, wait_until

from corral.errors import ConfigError, TaskNotFound, TransitionRefused
from corral.lifecycle import ACTIVE, State
from corral.model import AttemptReport, GroupConfig, LogLine, Submitted, TaskQuery
from corral.scheduler.dispatcher import dispatch
from corral.scheduler.reaper import rescue_expired
from corral.store import Store, open_store
from corral.store.contract import (
    AdmitParams,
    CancelParams,
    CheckpointParams,
    ClaimParams,
    CompleteParams,
    DueParams,
    InsertParams,
    Lease,
    LeaseKind,
    RetryParams,
    SharedParams,
    join,
)
from corral.worker.renewal import renew_worker, worker_lease


def all_tasks(store: Store) -> list[int]:
    return [t.id for t in store.task_list(TaskQuery(limit=10_000))]


def state(store: Store, task_id: int) -> State:
    record = store.task_get(task_id)
    assert record is not None
    return record.state


# -- submit ----------------------------------------------------------------------------------------


def test_submit_stores_task_with_submitted_event(store: Store) -> None:
    task_id = submit(store, args='[1, "a"]', kwargs='{"k": true}')
    record = store.task_get(task_id)
    assert record is not None
    assert record.state == State.READY
    assert (record.args, record.kwargs) == ('[1, "a"]', '{"k": true}')
    assert (record.attempt, record.failures, record.created_at) == (0, 0, T0)
    events = store.event_list(task_id)
    assert [(e.kind, e.from_state, e.to_state) for e in events] == [("submitted", None, "ready")]


def test_submit_is_all_or_nothing(store: Store) -> None:
    batch = [new_task(dedup_key="k"), new_task(), new_task(depends_on=(9999,))]
    with pytest.raises(ConfigError, match="9999"):
        store.task_insert_many(InsertParams(batch, T0))
    assert all_tasks(store) == []
    assert store.event_fetch_after(0, 100) == []
    # The dedup key of the failed batch was not taken either.
    assert store.task_insert_many(InsertParams([new_task(dedup_key="k")], T0))[0].created


def test_bulk_submit_writes_one_event_per_task_it_created(store: Store) -> None:
    """A batch past COPY's threshold that mixes plain tasks, delayed ones, dependents and dedup
    keys (held before it, and repeated within it): one `submitted` event per task created, in id
    order, from the state its row starts in, and none for the tasks its dedup keys found."""
    held = submit(store, dedup_key="held")
    batch = [new_task(args=f"[{i}]") for i in range(300)]
    batch += [new_task(dedup_key="held"), new_task(dedup_key="new"), new_task(dedup_key="new")]
    batch += [new_task(run_at=T0 + 60), new_task(depends_on=(held,)), new_task(after=(0,))]
    results = store.task_insert_many(InsertParams(batch, T0))
    created = [r.id for r in results if r.created]
    assert len(created) == 300 + 1 + 3 and len(set(created)) == len(created)
    assert [r.id for r in results[300:303]] == [held, results[301].id, results[301].id]
    events = [e for e in store.event_fetch_after(0, 1000) if e.task_id != held]
    assert [e.task_id for e in events] == sorted(created)
    assert {e.kind for e in events} == {"submitted"}
    states = store.task_states(created)
    assert all(e.to_state == states[e.task_id] for e in events)
    assert [states[r.id] for r in results[-3:]] == [State.WAITING] * 3
    assert all(states[r.id] == State.READY for r in results[:300])
    record = store.task_get(results[150].id)
    assert record is not None and record.args == "[150]"


def test_get_unknown_task_is_none(store: Store) -> None:
    assert store.task_get(12345) is None
    assert store.task_states([12345]) == {}


# -- dedup -----------------------------------------------------------------------------------------


def test_dedup_returns_existing_id_while_unfinished(store: Store) -> None:
    first = store.task_insert_many(InsertParams([new_task(dedup_key="orders")], T0))[0]
    again = store.task_insert_many(InsertParams([new_task(dedup_key="orders")], T0 + 1))[0]
    assert first.created and not again.created
    assert again.id == first.id
    assert all_tasks(store) == [first.id]


def test_dedup_within_one_batch_gives_one_task(store: Store) -> None:
    results = store.task_insert_many(
        InsertParams([new_task(dedup_key="x"), new_task(dedup_key="x")], T0)
    )
    assert [r.created for r in results] == [True, False]
    assert results[0].id == results[1].id


def test_dedup_holds_while_running(store: Store) -> None:
    task_id = submit(store, dedup_key="k")
    start(store, task_id)
    again = store.task_insert_many(InsertParams([new_task(dedup_key="k")], T0 + 1))[0]
    assert (again.id, again.created) == (task_id, False)


@pytest.mark.parametrize("ending", ["succeeded", "cancelled"])
def test_dedup_gives_new_task_once_the_old_one_ended(store: Store, ending: str) -> None:
    old = submit(store, dedup_key="k")
    if ending == "succeeded":
        finish(store, start(store, old), State.SUCCEEDED)
    else:
        store.task_cancel(CancelParams(old, T0))
    new = store.task_insert_many(InsertParams([new_task(dedup_key="k")], T0 + 1))[0]
    assert new.created and new.id != old
    assert state(store, new.id) == State.READY


def test_a_deduplicated_submit_writes_no_event_and_its_submit_id_names_the_holder(
    store: Store,
) -> None:
    """One task with a dedup key takes PostgreSQL's one-statement path: made or given way, the
    events and the submit id's record say the same as the general path's."""
    first = store.task_insert_many(InsertParams([new_task(dedup_key="k")], T0, submit_id="a"))
    again = store.task_insert_many(InsertParams([new_task(dedup_key="k")], T0, submit_id="b"))
    assert first[0].created and (again[0].id, again[0].created) == (first[0].id, False)
    submitted = [e for e in store.event_fetch_after(0, 100) if e.kind == "submitted"]
    assert [e.task_id for e in submitted] == [first[0].id]
    # The same call again (a retry after a lost reply) is answered from its record.
    replay = store.task_insert_many(InsertParams([new_task(dedup_key="k")], T0, submit_id="b"))
    assert [(r.id, r.created) for r in replay] == [(first[0].id, False)]
    assert all_tasks(store) == [first[0].id]


@pytest.mark.parametrize(
    "databases", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_a_submit_gives_way_to_a_concurrent_one_that_took_its_dedup_key(
    databases: Databases,
) -> None:
    """PostgreSQL: the one-statement submit waits on the key's unique index for a concurrent
    submit still in its transaction; that one commits after the statement's snapshot, so the
    statement sees no holder and writes nothing; the general path then finds the holder."""
    import psycopg  # SQLite's writers take the file's lock in turn: no concurrent holder

    url = databases.new_url()
    store = open_store(url)
    holder = open_store(url)
    try:
        with psycopg.connect(url) as other:
            other_pid = other.info.backend_pid
            with other.transaction():
                held = holder.task_insert_many(
                    InsertParams([new_task(dedup_key="k")], T0, joined=join(other))
                )[0]
                answer: list[Submitted] = []
                thread = threading.Thread(
                    target=lambda: answer.extend(
                        store.task_insert_many(InsertParams([new_task(dedup_key="k")], T0))
                    )
                )
                thread.start()
                with psycopg.connect(url, autocommit=True) as watch:
                    waiting = "SELECT 1 FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))"
                    wait_until(lambda: watch.execute(waiting, (other_pid,)).fetchone())
            thread.join(10)
        assert [(a.id, a.created) for a in answer] == [(held.id, False)]
        assert all_tasks(store) == [held.id]
    finally:
        store.close()
        holder.close()


def test_retry_refused_while_another_task_holds_the_dedup_key(store: Store) -> None:
    old = submit(store, dedup_key="k")
    store.task_cancel(CancelParams(old, T0))
    submit(store, dedup_key="k")
    with pytest.raises(TransitionRefused, match="dedup"):
        store.task_retry(RetryParams(old, T0 + 1))
    assert state(store, old) == State.CANCELLED


# -- delays and dependencies -----------------------------------------------------------------------


def test_delayed_task_stays_waiting_until_run_at(store: Store) -> None:
    task_id = submit(store, run_at=T0 + 10)
    assert state(store, task_id) == State.WAITING
    assert store.task_release_due(DueParams(T0 + 9.9, 100)) == 0
    assert state(store, task_id) == State.WAITING
    assert store.task_release_due(DueParams(T0 + 10, 100)) == 1
    record = store.task_get(task_id)
    assert record is not None
    assert (record.state, record.ready_at, record.enqueued_at) == (State.READY, T0 + 10, T0 + 10)


def test_dependent_task_waits_until_all_dependencies_succeed(store: Store) -> None:
    a, b = submit(store), submit(store)
    child = submit(store, depends_on=(a, b))
    assert state(store, child) == State.WAITING
    assert store.task_get(child).depends_on == (a, b)  # type: ignore[union-attr]
    finish(store, start(store, a), State.SUCCEEDED)
    store.task_release_due(DueParams(T0 + 1, 100))
    assert state(store, child) == State.WAITING
    claim_b = start(store, b)
    store.task_release_due(DueParams(T0 + 1, 100))
    assert state(store, child) == State.WAITING  # b is running, not succeeded
    finish(store, claim_b, State.SUCCEEDED)
    assert store.task_fail_upstream(DueParams(T0 + 2, 100)) == 0
    assert store.task_release_due(DueParams(T0 + 2, 100)) == 1
    assert state(store, child) == State.READY


@pytest.mark.parametrize("ending", [State.DEAD, State.CANCELLED, State.UPSTREAM_FAILED])
def test_dependent_task_fails_upstream_when_a_dependency_ends_badly(
    store: Store, ending: State
) -> None:
    good, bad = submit(store), submit(store)
    if ending == State.UPSTREAM_FAILED:  # bad itself waits on a task that gets cancelled
        root = submit(store)
        bad = submit(store, depends_on=(root,))
        store.task_cancel(CancelParams(root, T0))
        assert store.task_fail_upstream(DueParams(T0, 100)) == 1
    elif ending == State.DEAD:
        finish(store, start(store, bad), State.DEAD)
    else:
        store.task_cancel(CancelParams(bad, T0))
    child = submit(store, depends_on=(good, bad))
    grandchild = submit(store, depends_on=(child,))
    assert store.task_release_due(DueParams(T0 + 1, 100)) == 0
    assert store.task_fail_upstream(DueParams(T0 + 1, 100)) == 1
    assert state(store, child) == State.UPSTREAM_FAILED
    assert (
        store.task_fail_upstream(DueParams(T0 + 2, 100)) == 1
    )  # the failure propagates a level per round
    assert state(store, grandchild) == State.UPSTREAM_FAILED
    events = store.event_list(child)
    assert (events[-1].from_state, events[-1].to_state) == ("waiting", "upstream_failed")


# -- admission and claims --------------------------------------------------------------------------


def test_admit_moves_only_ready_tasks(store: Store) -> None:
    ready = submit(store)
    waiting = submit(store, run_at=T0 + 60)
    assert store.task_admit_many(AdmitParams([waiting, ready, 999], T0)) == [ready]
    assert store.task_admit_many(AdmitParams([ready], T0)) == []  # already admitted
    assert state(store, waiting) == State.WAITING


def test_claim_follows_admission_order(store: Store) -> None:
    ids = [submit(store) for _ in range(5)]
    order = [ids[3], ids[1], ids[4], ids[0], ids[2]]
    assert store.task_admit_many(AdmitParams(order[:2], T0)) == order[:2]
    assert store.task_admit_many(AdmitParams(order[2:], T0 + 1)) == order[2:]
    first = store.task_claim(ClaimParams("w1", ["default"], 2, T0 + 30, T0 + 2))
    rest = store.task_claim(ClaimParams("w2", ["default"], 10, T0 + 30, T0 + 2))
    assert [c.id for c in first + rest] == order
    assert all(c.attempt == 1 for c in first + rest)
    assert store.task_claim(ClaimParams("w3", ["default"], 10, T0 + 30, T0 + 2)) == []


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
def test_a_claim_that_waited_for_the_write_lock_never_starts_a_task_before_its_admission(
    store: Store,
) -> None:
    """SQLite: a worker reads its `now`, then waits for the file's write lock while the leader
    admits; the start it records is the admission's time, not that earlier `now` (a start
    before the admission showed as a negative wait, and as overlaps the demo's check saw)."""
    task_id = submit(store)
    assert store.task_admit_many(AdmitParams([task_id], T0 + 5)) == [task_id]
    claimed = store.task_claim(ClaimParams("w1", ["default"], 1, T0 + 30, T0 + 4.99))
    assert [c.id for c in claimed] == [task_id]
    record = store.task_get(task_id)
    assert record is not None and record.started_at == record.first_started_at == T0 + 5
    assert record.wait_seconds is not None and record.wait_seconds >= 0
    detail = store.attempt_list(task_id)
    assert [a.started_at for a in detail] == [T0 + 5]
    running = [e for e in store.event_fetch_after(0, 100) if e.kind == "running"]
    assert [e.at for e in running] == [T0 + 5]


def test_a_large_admission_keeps_its_order_and_admits_each_task_once(store: Store) -> None:
    """75 tasks asked in a shuffled order (SQLite admits them in statements of 64, 8, 2 and 1),
    one of them twice and one not ready: each ready task is admitted once, they come back in the
    order asked, and the claims follow that order."""
    ids = [r.id for r in store.task_insert_many(InsertParams([new_task()] * 75, T0))]
    waiting = submit(store, run_at=T0 + 60)
    order = ids[1::2] + ids[::2]
    asked = [*order[:10], waiting, order[3], *order[10:]]
    assert store.task_admit_many(AdmitParams(asked, T0)) == order
    assert store.task_admit_many(AdmitParams(order[:70], T0 + 1)) == []
    assert state(store, waiting) == State.WAITING
    claimed = store.task_claim(ClaimParams("w1", ["default"], 100, T0 + 30, T0 + 2))
    assert [c.id for c in claimed] == order
    more = [r.id for r in store.task_insert_many(InsertParams([new_task()] * 70, T0))]
    assert store.task_admit_many(AdmitParams(more[::-1], T0 + 3)) == more[::-1]  # no repeat
    claimed = store.task_claim(ClaimParams("w1", ["default"], 100, T0 + 30, T0 + 4))
    assert [c.id for c in claimed] == more[::-1]


def test_claim_only_takes_tasks_of_its_pools(store: Store) -> None:
    mine, other = submit(store), submit(store, pool="gpu")
    store.task_admit_many(AdmitParams([mine, other], T0))
    claimed = store.task_claim(ClaimParams("w1", ["default"], 10, T0 + 30, T0))
    assert [c.id for c in claimed] == [mine]
    record = store.task_get(mine)
    assert record is not None
    assert (record.state, record.worker_id, record.started_at) == (State.RUNNING, "w1", T0)
    assert [(a.attempt, a.worker_id, a.outcome) for a in store.attempt_list(mine)] == [
        (1, "w1", None)
    ]


def test_dispatch_needs_a_live_worker(store: Store) -> None:
    task_id = submit(store)
    assert dispatch(store, T0, prefetch=4) == 0
    register_worker(store, now=T0, lease=10)
    assert dispatch(store, T0 + 11, prefetch=4) == 0  # its lease expired
    register_worker(store, now=T0 + 11, lease=10)
    assert dispatch(store, T0 + 12, prefetch=4) == 1
    assert state(store, task_id) == State.ADMITTED


def active_in(store: Store, group: str) -> int:
    tasks = store.task_list(TaskQuery(group=group, limit=10_000))
    return sum(1 for t in tasks if t.state in ACTIVE)


def test_group_cap_holds_in_dispatch(store: Store) -> None:
    store.group_configure(GroupConfig("capped", max_parallel=2))
    register_worker(store, concurrency=10)
    capped = [submit(store, group="capped") for _ in range(7)]
    free = [submit(store, group="free") for _ in range(3)]
    now = T0
    for _ in range(12):
        now += 1
        dispatch(store, now, prefetch=5)
        assert active_in(store, "capped") <= 2
        claimed = store.task_claim(ClaimParams("w1", ["default"], 1, now + 30, now))
        assert active_in(store, "capped") <= 2
        for claim in claimed:
            finish(store, claim, State.SUCCEEDED, now)
    states = store.task_states(capped + free)
    assert all(s == State.SUCCEEDED for s in states.values())


def test_group_cap_counts_running_tasks(store: Store) -> None:
    store.group_configure(GroupConfig("g", max_parallel=1))
    register_worker(store)
    a, b = submit(store, group="g"), submit(store, group="g")
    assert dispatch(store, T0, prefetch=0) == 1
    store.task_claim(ClaimParams("w1", ["default"], 1, T0 + 30, T0))
    assert dispatch(store, T0 + 1, prefetch=0) == 0
    assert store.task_states([a, b]) == {a: State.RUNNING, b: State.READY}
    store.group_configure(GroupConfig("g", max_parallel=2))  # takes effect at the next dispatch
    assert dispatch(store, T0 + 2, prefetch=0) == 1


def test_dispatch_admits_higher_levels_first(store: Store) -> None:
    register_worker(store, concurrency=1)
    low = submit(store, priority=1, level=1)
    high = submit(store, priority=5, level=5)
    assert dispatch(store, T0, prefetch=0) == 1
    assert store.task_states([low, high]) == {low: State.READY, high: State.ADMITTED}


# -- completion, stale reports, reaper -------------------------------------------------------------


def test_complete_refuses_stale_attempt_and_wrong_worker(store: Store) -> None:
    task_id = submit(store, max_retries=3)
    claim1 = start(store, task_id)
    finish(store, claim1, State.RETRY_WAIT)
    store.task_release_due(DueParams(T0 + 5, 100))
    claim2 = start(store, task_id, T0 + 5, worker_id="w2")
    stale = AttemptReport(task_id, claim1.attempt, "succeeded", State.SUCCEEDED, worker_id="w1")
    wrong_worker = AttemptReport(
        task_id, claim2.attempt, "succeeded", State.SUCCEEDED, worker_id="w1"
    )
    assert store.task_complete_many(CompleteParams([stale, wrong_worker], T0 + 6)) == []
    record = store.task_get(task_id)
    assert record is not None
    assert (record.state, record.attempt, record.failures) == (State.RUNNING, 2, 1)
    right = AttemptReport(task_id, 2, "succeeded", State.SUCCEEDED, worker_id="w2", result="7")
    assert store.task_complete_many(CompleteParams([right, right], T0 + 7)) == [
        task_id
    ]  # recorded once
    record = store.task_get(task_id)
    assert record is not None
    assert (record.state, record.result, record.finished_at) == (State.SUCCEEDED, "7", T0 + 7)
    outcomes = [(a.attempt, a.outcome) for a in store.attempt_list(task_id)]
    assert outcomes == [(1, "failed"), (2, "succeeded")]


def test_a_large_batch_of_reports_records_each_running_attempt_once(store: Store) -> None:
    """A batch of 75 reports (SQLite records them in statements of 64, 8, 2 and 1): the stale
    ones are refused, the others each land on their own task, and the recorded come back in
    the batch's order."""
    ids = [r.id for r in store.task_insert_many(InsertParams([new_task()] * 75, T0))]
    register_worker(store, concurrency=100)
    assert store.task_admit_many(AdmitParams(ids, T0)) == ids
    claimed = store.task_claim(ClaimParams("w1", ["default"], 100, T0 + 30, T0))
    assert sorted(c.id for c in claimed) == ids
    reports = []
    for n, task_id in enumerate(reversed(ids)):
        if n % 7 == 3:  # a stale attempt: not recorded
            reports.append(AttemptReport(task_id, 2, "succeeded", State.SUCCEEDED, worker_id="w1"))
        elif n % 5 == 1:
            reports.append(AttemptReport(task_id, 1, "failed", State.RETRY_WAIT, True, "w1",
                                         error="E: again", retry_at=T0 + 50 + n))  # fmt: skip
        else:
            reports.append(AttemptReport(task_id, 1, "succeeded", State.SUCCEEDED,
                                         worker_id="w1", result=str(n)))  # fmt: skip
    recorded = store.task_complete_many(CompleteParams(reports, T0 + 2))
    assert recorded == [r.task_id for r in reports if r.attempt == 1]
    for n, report in enumerate(reports):
        record = store.task_get(report.task_id)
        assert record is not None
        if report.attempt == 2:
            assert (record.state, record.finished_at) == (State.RUNNING, None)
        elif report.target == State.RETRY_WAIT:
            assert (record.state, record.failures, record.error, record.run_at) == (
                State.RETRY_WAIT, 1, "E: again", T0 + 50 + n)  # fmt: skip
        else:
            assert (record.state, record.result, record.finished_at) == (
                State.SUCCEEDED, str(n), T0 + 2)  # fmt: skip
        assert record.worker_id is None or report.attempt == 2


def test_failed_attempt_keeps_error_and_traceback(store: Store) -> None:
    task_id = submit(store)
    claim = start(store, task_id)
    report = AttemptReport(
        task_id, claim.attempt, "failed", State.DEAD, True, "w1", error="E: boom", traceback="tb"
    )
    assert store.task_complete_many(CompleteParams([report], T0 + 1)) == [task_id]
    record = store.task_get(task_id)
    assert record is not None
    assert (record.state, record.error, record.failures) == (State.DEAD, "E: boom", 1)
    attempt = store.attempt_list(task_id)[0]
    assert (attempt.outcome, attempt.error, attempt.traceback) == ("failed", "E: boom", "tb")
    assert attempt.finished_at == T0 + 1


def test_retry_wait_returns_to_ready_after_backoff(store: Store) -> None:
    task_id = submit(store, max_retries=1)
    claim = start(store, task_id)
    report = AttemptReport(task_id, 1, "failed", State.RETRY_WAIT, True, "w1", retry_at=T0 + 8)
    store.task_complete_many(CompleteParams([report], T0 + 1))
    assert claim.failures == 0
    assert store.task_release_due(DueParams(T0 + 7.9, 100)) == 0
    assert state(store, task_id) == State.RETRY_WAIT
    assert store.task_release_due(DueParams(T0 + 8, 100)) == 1
    assert state(store, task_id) == State.READY


def test_reaper_rescues_expired_lease_as_lost(store: Store) -> None:
    retried, doomed = submit(store, max_retries=1), submit(store, max_retries=0)
    store.task_admit_many(AdmitParams([retried, doomed], T0))
    store.task_claim(ClaimParams("w1", ["default"], 2, T0 + 10, T0))
    assert rescue_expired(store, T0 + 9) == 0
    assert rescue_expired(store, T0 + 11) == 2
    # Lost beside each other: both are suspects, and neither loss counts.
    assert store.task_states([retried, doomed]) == {retried: State.READY, doomed: State.READY}
    for task_id in (retried, doomed):
        attempt = store.attempt_list(task_id)[0]
        assert attempt.outcome == "lost"
        assert "w1" in (attempt.error or "")
        record = store.task_get(task_id)
        assert record is not None and record.failures == 0 and record.suspect
    late = AttemptReport(retried, 1, "succeeded", State.SUCCEEDED, worker_id="w1")
    assert store.task_complete_many(CompleteParams([late], T0 + 12)) == []
    # Lost while running alone, each loss counts: `retried` had a retry left, `doomed` none.
    now = T0 + 12
    for worker, task_id in (("w2", retried), ("w3", doomed)):
        store.task_admit_many(AdmitParams([task_id], now))
        claimed = store.task_claim(
            ClaimParams(worker, ["default"], 4, now + 10, now, may_take_suspect=True)
        )
        assert [(c.id, c.isolated) for c in claimed] == [(task_id, True)]
    assert rescue_expired(store, now + 11) == 2
    assert store.task_states([retried, doomed]) == {retried: State.READY, doomed: State.DEAD}
    record = store.task_get(retried)
    assert record is not None and record.failures == 1 and record.isolated_crashes == 1
    dead = store.task_get(doomed)
    assert dead is not None and dead.failures == 1
    assert dead.error == (
        "quarantined: crashed its worker 1 time while running alone (no retry left)"
    )


def test_reaper_cancels_an_expired_task_that_was_asked_to_cancel(store: Store) -> None:
    task_id = submit(store, max_retries=3)
    start(store, task_id)
    assert store.task_cancel(CancelParams(task_id, T0 + 1)) == (State.RUNNING, None)
    assert rescue_expired(store, T0 + 31) == 1
    assert state(store, task_id) == State.CANCELLED


# -- cancel and retry ------------------------------------------------------------------------------


def test_cancel_unstarted_task_ends_it_at_once(store: Store) -> None:
    waiting, ready = submit(store, run_at=T0 + 60), submit(store)
    assert store.task_cancel(CancelParams(waiting, T0)) == (State.WAITING, State.CANCELLED)
    assert store.task_cancel(CancelParams(ready, T0)) == (State.READY, State.CANCELLED)
    with pytest.raises(TransitionRefused, match="already ended"):
        store.task_cancel(CancelParams(ready, T0 + 1))
    with pytest.raises(TaskNotFound):
        store.task_cancel(CancelParams(424242, T0))


def test_retry_gives_a_dead_task_a_fresh_budget(store: Store) -> None:
    task_id = submit(store)
    finish(store, start(store, task_id), State.DEAD)
    assert store.task_retry(RetryParams(task_id, T0 + 1)) == State.DEAD
    record = store.task_get(task_id)
    assert record is not None
    assert (record.state, record.failures, record.error, record.attempt) == (
        State.READY,
        0,
        None,
        1,
    )
    assert start(store, task_id, T0 + 2).attempt == 2  # attempts keep counting
    with pytest.raises(TransitionRefused, match="running"):
        store.task_retry(RetryParams(task_id, T0 + 3))


# -- leases ----------------------------------------------------------------------------------------


@pytest.fixture
def second_store(store: Store) -> Iterator[Store]:
    """Another process's view of the same database."""
    other = open_store(store.url)
    yield other
    other.close()


def test_leader_lease_has_one_holder(store: Store, second_store: Store) -> None:
    assert store.lease_acquire(Lease(LeaseKind.LEADER, "scheduler", "a", T0 + 5), T0)
    assert not second_store.lease_acquire(Lease(LeaseKind.LEADER, "scheduler", "b", T0 + 6), T0 + 1)
    assert store.lease_acquire(Lease(LeaseKind.LEADER, "scheduler", "a", T0 + 9), T0 + 4)  # renewed
    assert not second_store.lease_acquire(
        Lease(LeaseKind.LEADER, "scheduler", "b", T0 + 12), T0 + 7
    )
    second_store.lease_release(
        Lease(LeaseKind.LEADER, "scheduler", "b", 0.0)
    )  # b doesn't hold it: no effect
    assert not second_store.lease_acquire(
        Lease(LeaseKind.LEADER, "scheduler", "b", T0 + 12), T0 + 8
    )
    store.lease_release(Lease(LeaseKind.LEADER, "scheduler", "a", 0.0))
    assert second_store.lease_acquire(Lease(LeaseKind.LEADER, "scheduler", "b", T0 + 12), T0 + 8)
    assert not store.lease_acquire(Lease(LeaseKind.LEADER, "scheduler", "a", T0 + 12), T0 + 8)


def test_leader_is_taken_over_after_the_holder_dies_and_its_lease_expires(
    store: Store, second_store: Store
) -> None:
    holder = open_store(store.url)
    assert holder.lease_acquire(Lease(LeaseKind.LEADER, "scheduler", "a", T0 + 5), T0)
    assert not second_store.lease_acquire(Lease(LeaseKind.LEADER, "scheduler", "b", T0 + 6), T0 + 1)
    holder.close()  # died without releasing
    assert second_store.lease_acquire(Lease(LeaseKind.LEADER, "scheduler", "b", T0 + 11), T0 + 6)
    assert second_store.lease_acquire(
        Lease(LeaseKind.LEADER, "scheduler", "b", T0 + 15), T0 + 10
    )  # renewed


def test_heartbeat_extends_leases_and_returns_cancel_requests(store: Store) -> None:
    register_worker(store, "w1", lease=10)
    register_worker(store, "w2", lease=10)
    mine, theirs = submit(store), submit(store)
    store.task_admit_many(AdmitParams([mine, theirs], T0))
    store.task_claim(ClaimParams("w1", ["default"], 1, T0 + 10, T0))
    store.task_claim(ClaimParams("w2", ["default"], 1, T0 + 10, T0))
    assert renew_worker(store, "w1", T0 + 20, T0 + 8) == []
    assert [t.id for t in store.task_fetch_expired(T0 + 15, 100)] == [theirs]
    assert [w.id for w in store.worker_list(T0 + 15)] == ["w1"]
    store.task_cancel(CancelParams(mine, T0 + 16))
    store.task_cancel(CancelParams(theirs, T0 + 16))
    assert renew_worker(store, "w1", T0 + 30, T0 + 17) == [mine]
    assert store.task_get(mine).cancel_requested  # type: ignore[union-attr]
    assert store.task_fetch_expired(T0 + 29, 100)[0].id == theirs
    store.lease_release(worker_lease("w1", 0.0))
    assert store.worker_list(T0 + 17) == []


def test_worker_list_counts_running_tasks(store: Store) -> None:
    register_worker(store, "w1", concurrency=3)
    a, b = submit(store), submit(store)
    store.task_admit_many(AdmitParams([a, b], T0))
    store.task_claim(ClaimParams("w1", ["default"], 5, T0 + 30, T0))
    [worker] = store.worker_list(T0 + 1)
    assert (worker.id, worker.pools, worker.concurrency, worker.running) == (
        "w1",
        ("default",),
        3,
        2,
    )


# -- checkpoints, shared records, logs -------------------------------------------------------------


def test_checkpoint_saved_only_by_the_running_attempt_and_handed_to_the_next(store: Store) -> None:
    task_id = submit(store, max_retries=2)
    claim = start(store, task_id)
    assert claim.checkpoint is None
    assert store.task_save_checkpoint(CheckpointParams(task_id, 1, '{"row": 10}', T0 + 1))
    assert not store.task_save_checkpoint(CheckpointParams(task_id, 0, '{"row": 99}', T0 + 1))
    assert store.task_get(task_id).checkpoint == '{"row": 10}'  # type: ignore[union-attr]
    finish(store, claim, State.READY)  # released: back to ready with its checkpoint
    assert not store.task_save_checkpoint(CheckpointParams(task_id, 1, '{"row": 99}', T0 + 2))
    claim2 = start(store, task_id, T0 + 3)
    assert (claim2.attempt, claim2.checkpoint) == (2, '{"row": 10}')
    assert not store.task_save_checkpoint(CheckpointParams(task_id, 1, '{"row": 99}', T0 + 4))
    assert store.task_save_checkpoint(CheckpointParams(task_id, 2, '{"row": 20}', T0 + 4))
    finish(store, claim2, State.SUCCEEDED)
    assert store.task_get(task_id).checkpoint == '{"row": 20}'  # type: ignore[union-attr]


def test_shared_record_saved_only_by_the_running_attempt(store: Store) -> None:
    task_id = submit(store)
    start(store, task_id)
    assert store.task_save_shared(SharedParams(task_id, 1, '{"query": "q1"}', T0))
    assert not store.task_save_shared(SharedParams(task_id, 2, '{"query": "q2"}', T0))
    assert store.task_get(task_id).shared == '{"query": "q1"}'  # type: ignore[union-attr]


def test_logs_are_kept_per_attempt_in_order(store: Store) -> None:
    task_id, other = submit(store), submit(store)
    store.log_append_many(
        [
            LogLine(task_id, 1, T0, 20, "first"),
            LogLine(task_id, 1, T0 + 1, 40, "second"),
            LogLine(other, 1, T0 + 1, 20, "elsewhere"),
            LogLine(task_id, 2, T0 + 2, 20, "third"),
        ]
    )
    store.log_append_many([])
    assert [line.message for line in store.log_list(task_id)] == ["first", "second", "third"]
    assert [(ln.level, ln.message) for ln in store.log_list(task_id, 1)] == [
        (20, "first"),
        (40, "second"),
    ]
    assert store.log_list(task_id, 3) == []


# -- groups and history ----------------------------------------------------------------------------


def test_group_configure_and_get(store: Store) -> None:
    assert store.group_get("g") is None
    store.group_configure(GroupConfig("g", max_parallel=3, weight=2.5))
    assert store.group_get("g") == GroupConfig("g", 3, 2.5)
    store.group_configure(GroupConfig("g", max_parallel=None, weight=1.0))
    assert store.group_get("g") == GroupConfig("g", None, 1.0)


def test_wait_counts_from_run_at(store: Store) -> None:
    task_id = submit(store, run_at=T0 + 10)
    store.task_release_due(DueParams(T0 + 10, 100))
    start(store, task_id, T0 + 13)
    assert store.task_get(task_id).wait_seconds == pytest.approx(3.0)  # type: ignore[union-attr]


def test_event_feed_follows_the_lifecycle(store: Store) -> None:
    task_id = submit(store, max_retries=1)
    claim = start(store, task_id)
    finish(store, claim, State.RETRY_WAIT, T0 + 1)
    store.task_release_due(DueParams(T0 + 2, 100))
    finish(store, start(store, task_id, T0 + 3), State.SUCCEEDED, T0 + 4)
    feed = store.event_fetch_after(0, 100)
    assert [(e.from_state, e.to_state, e.attempt) for e in feed] == [
        (None, "ready", 0),
        ("ready", "admitted", 0),
        ("admitted", "running", 1),
        ("running", "retry_wait", 1),
        ("retry_wait", "ready", 1),
        ("ready", "admitted", 1),
        ("admitted", "running", 2),
        ("running", "succeeded", 2),
    ]
    assert [e.at for e in feed] == sorted(e.at for e in feed)
    assert store.event_fetch_after(feed[2].id, 2) == feed[3:5]


def test_task_list_filters(store: Store) -> None:
    a = submit(store, group="g", name="x")
    b = submit(store, group="g", name="y")
    c = submit(store, group="h", name="x")
    store.task_cancel(CancelParams(b, T0))
    assert [t.id for t in store.task_list(TaskQuery(group="g"))] == [b, a]  # newest first
    assert [t.id for t in store.task_list(TaskQuery(name="x"))] == [c, a]
    assert [t.id for t in store.task_list(TaskQuery(states=(State.CANCELLED,)))] == [b]
    assert [t.id for t in store.task_list(TaskQuery(ids=(a, c)))] == [c, a]
    assert [t.id for t in store.task_list(TaskQuery(limit=1))] == [c]
