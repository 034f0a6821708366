"""The fast lane (corral/lanes.py) on both backends: a single submit takes a slot of its pool's
open lane and is admitted in its own write; what bounds a task keeps it out; the leader's
dispatcher closes every lane before it reads the load and opens one only where it left free
slots and nothing ready; and, as a property over random runs of submits, rounds, claims and
outcomes, the pool's slots, the caps, the pauses and the exclusive steps hold, and no lane is
open while a task the leader could admit waits."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from conftest import T0, finish, new_task, register_worker, submit, wait_until
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import corral
from corral.lanes import lanes_to_open, takes_lane
from corral.lifecycle import State
from corral.model import DispatchSnapshot, GroupConfig, HeadsWanted, ReadyTask, TaskQuery
from corral.ratelimit import parse
from corral.scheduler.dispatcher import Dispatcher, dispatch
from corral.store import Store
from corral.store.contract import ClaimParams, InsertParams, PausedGroup, join

ACTIVE = (State.ADMITTED, State.RUNNING)


def states(store: Store, ids: list[int]) -> list[State]:
    found = store.task_states(ids)
    return [found[i] for i in ids]


def kinds(store: Store, task_id: int) -> list[tuple[str, str | None, str | None]]:
    return [
        (e.kind, e.from_state, e.to_state)
        for e in store.event_fetch_after(0, 1000)
        if e.task_id == task_id
    ]


# -- the submit's side ----------------------------------------------------------------------------


def test_a_single_submit_takes_a_slot_and_is_admitted_in_its_own_write(store: Store) -> None:
    store.lane_open({"default": 2}, T0 + 1)
    assert store.lane_slots(T0) == {"default": 2}
    first, second, third = (submit(store) for _ in range(3))
    assert states(store, [first, second, third]) == [State.ADMITTED, State.ADMITTED, State.READY]
    assert store.lane_slots(T0) == {}
    # The same events as an admission by the leader: submitted ready, then admitted.
    assert kinds(store, first) == [
        ("submitted", None, "ready"),
        ("admitted", "ready", "admitted"),
    ]
    assert kinds(store, third) == [("submitted", None, "ready")]
    record = store.task_get(first)
    assert record is not None and record.wait_seconds is None  # admitted, not yet started
    claimed = store.task_claim(ClaimParams("w1", ["default"], 10, T0 + 30, T0))
    assert [c.id for c in claimed] == [first, second]


def test_a_lane_is_its_pools_and_ends_with_its_time(store: Store) -> None:
    store.lane_open({"gpu": 1}, T0 + 1)
    assert states(store, [submit(store)]) == [State.READY]  # pool "default": no lane
    late = submit(store, T0 + 1, pool="gpu")  # the lane's time is over
    on_time = submit(store, T0 + 0.5, pool="gpu")
    assert states(store, [late, on_time]) == [State.READY, State.ADMITTED]


@pytest.mark.parametrize(
    "bound",
    [
        "group capped",
        "defaults capped",
        "group rate-limited",
        "group paused",
        "exclusive task holds the group",
        "task exclusive",
        "task named rate limit",
        "task delayed",
        "task depends",
        "task dedup key",
        "a batch",
        "the caller's transaction",
    ],
)
def test_what_bounds_a_task_keeps_it_out_of_the_lane(store: Store, bound: str) -> None:
    upstream = submit(store, group="other")
    store.lane_open({"default": 5}, T0 + 10)
    options: dict[str, Any] = {}
    if bound == "group capped":
        store.group_configure(GroupConfig("g", max_parallel=3))
    elif bound == "defaults capped":
        store.group_configure(GroupConfig("*", max_parallel=3))
    elif bound == "group rate-limited":
        store.group_configure(GroupConfig("g", rate_limit=parse("5/s")))
    elif bound == "group paused":
        store.group_pause(PausedGroup("g", T0, "cli:test", None))
    elif bound == "exclusive task holds the group":
        register_worker(store, concurrency=10)
        holder = submit(store, group="g", exclusive=True)  # exclusive: not in the lane
        assert dispatch(store, T0) >= 1  # the leader's admission (the function opens no lane)
        assert states(store, [holder]) == [State.ADMITTED]
    elif bound == "task exclusive":
        options["exclusive"] = True
    elif bound == "task named rate limit":
        options["rate_key"] = "crm-api"
    elif bound == "task delayed":
        options["run_at"] = T0 + 60
    elif bound == "task depends":
        options["depends_on"] = (upstream,)
    elif bound == "task dedup key":
        options["dedup_key"] = "once"
    if bound == "a batch":
        batch = [new_task(group="g"), new_task(group="g")]
        ids = [s.id for s in store.task_insert_many(InsertParams(batch, T0))]
    elif bound == "the caller's transaction":
        ids = [_submit_joined(store, new_task(group="g"))]
    else:
        ids = [submit(store, group="g", **options)]
    assert State.ADMITTED not in states(store, ids)
    assert store.lane_slots(T0) == {"default": 5}  # no slot taken
    submit(store, group="free")  # a group nothing bounds takes a slot (unless the defaults cap it)
    assert store.lane_slots(T0) == {"default": 5 if bound == "defaults capped" else 4}


def _submit_joined(store: Store, task: Any) -> int:
    """Submit in a transaction of the caller's own, committed by the caller."""
    if store.url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(store.url.split("sqlite:///", 1)[1], isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        task_id = store.task_insert_many(InsertParams([task], T0, joined=join(conn)))[0].id
        conn.execute("COMMIT")
        conn.close()
        return task_id
    import psycopg

    with psycopg.connect(store.url) as conn, conn.transaction():
        return store.task_insert_many(InsertParams([task], T0, joined=join(conn)))[0].id


def test_what_a_task_carries_decides_whether_it_may_take_the_lane() -> None:
    assert takes_lane(new_task(), "ready")
    assert not takes_lane(new_task(), "waiting")
    for options in (
        {"dedup_key": "k"},
        {"rate_key": "r"},
        {"exclusive": True},
        {"depends_on": (1,)},
    ):
        assert not takes_lane(replace(new_task(), **options), "ready"), options


# -- the leader's side ----------------------------------------------------------------------------


def lane_rule_snapshot(
    ready: list[ReadyTask], more: frozenset[tuple[str, str]] = frozenset()
) -> Any:
    return DispatchSnapshot(capacity={}, active_by_pool={}, active_by_group={}, groups={},
                            ready=ready, more=more)  # fmt: skip


def test_a_lane_opens_where_every_ready_task_seen_was_admitted_and_no_group_was_unread() -> None:
    task = ReadyTask(1, "default", "a", 0, T0)
    wants = [HeadsWanted("default", groups=3, tasks=8), HeadsWanted("gpu", groups=1, tasks=2)]
    free = {"default": 4, "gpu": 1, "idle": 0}
    assert lanes_to_open(free, wants, lane_rule_snapshot([]), []) == {"default": 2, "gpu": 1}
    assert lanes_to_open(free, wants, lane_rule_snapshot([task]), [1]) == {"default": 2, "gpu": 1}
    assert lanes_to_open(free, wants, lane_rule_snapshot([task]), []) == {"gpu": 1}  # left ready
    more = frozenset({("default", "a")})
    assert lanes_to_open(free, wants, lane_rule_snapshot([task], more), [1]) == {"gpu": 1}
    three = [ReadyTask(i, "default", g, 0, T0) for i, g in ((1, "a"), (2, "b"), (3, "c"))]
    # As many groups read as asked for: others may wait unread.
    assert lanes_to_open(free, wants, lane_rule_snapshot(three), [1, 2, 3]) == {"gpu": 1}


def test_the_dispatcher_closes_the_lanes_then_opens_them_where_nothing_waits(store: Store) -> None:
    register_worker(store, concurrency=4)
    dispatcher = Dispatcher(store, prefetch=0, prefetch_ratio=0.0)
    store.lane_open({"default": 50, "gone": 3}, T0 + 10)  # a former leader's
    assert dispatcher.run(T0) == 0
    assert store.lane_slots(T0) == {"default": 2}  # half of the 4 free slots
    ids = [submit(store, T0) for _ in range(3)]
    assert states(store, ids) == [State.ADMITTED, State.ADMITTED, State.READY]
    # The leader counts the lane's admissions as held: 2 + 1 of 4 slots; half the last one.
    assert dispatcher.run(T0 + 0.1) == 1
    assert store.lane_slots(T0) == {"default": 1}
    last = submit(store, T0 + 0.2)
    assert states(store, [last]) == [State.ADMITTED]
    assert dispatcher.run(T0 + 0.3) == 0
    assert store.lane_slots(T0) == {}  # every slot is held
    assert states(store, [submit(store, T0 + 0.4)]) == [State.READY]


def test_a_backlog_keeps_the_lanes_closed_and_the_leader_decides(store: Store) -> None:
    register_worker(store, concurrency=4)
    dispatcher = Dispatcher(store, prefetch=0, prefetch_ratio=0.0)
    backlog = [submit(store, group="big") for _ in range(10)]
    assert dispatcher.run(T0) == 4
    assert store.lane_slots(T0) == {}
    small = submit(store, T0 + 0.1, group="small")
    assert states(store, [small]) == [State.READY]  # it waits for the leader's round
    assert len([s for s in states(store, backlog) if s == State.READY]) == 6


def test_a_capped_backlog_leaves_the_free_slots_to_the_lane(store: Store) -> None:
    register_worker(store, concurrency=6)
    store.group_configure(GroupConfig("big", max_parallel=2))
    dispatcher = Dispatcher(store, prefetch=0, prefetch_ratio=0.0)
    for _ in range(10):
        submit(store, group="big")
    assert dispatcher.run(T0) == 2
    assert store.lane_slots(T0) == {}  # this round saw ready tasks it left
    assert dispatcher.run(T0 + 0.05) == 0  # the next sees the group at its cap, so none
    assert store.lane_slots(T0) == {"default": 2}  # the capped group can take none of the 4
    small = submit(store, T0 + 0.1, group="small")
    assert states(store, [small]) == [State.ADMITTED]


def test_without_the_fast_lane_no_lane_opens_and_a_former_leaders_is_closed(store: Store) -> None:
    register_worker(store, concurrency=4)
    store.lane_open({"default": 3}, T0 + 10)
    dispatcher = Dispatcher(store, prefetch=0, prefetch_ratio=0.0, fast_lane=False)
    assert dispatcher.run(T0) == 0
    assert store.lane_slots(T0) == {}
    assert states(store, [submit(store)]) == [State.READY]


# -- the property ---------------------------------------------------------------------------------

GROUPS = ["a", "b", "capped", "paused", "solo"]
CAP = 2
CAPACITY = 5

step = st.one_of(
    st.tuples(st.just("submit"), st.sampled_from(GROUPS), st.booleans()),
    st.tuples(st.just("batch"), st.sampled_from(GROUPS), st.integers(2, 4)),
    st.tuples(st.just("round"), st.just(""), st.just(0)),
    st.tuples(st.just("claim"), st.just(""), st.integers(1, 3)),
    st.tuples(st.just("finish"), st.just(""), st.integers(1, 3)),
)


def check(store: Store, now: float) -> None:
    """The slots held per pool, the cap, the pause and the exclusive steps."""
    tasks = store.task_list(TaskQuery(limit=10_000))
    active = [t for t in tasks if t.state in ACTIVE]
    assert len(active) <= CAPACITY, active
    assert len([t for t in active if t.group == "capped"]) <= CAP
    assert not [t for t in active if t.group == "paused"]
    for group in {t.group for t in active if t.exclusive}:
        assert len([t for t in active if t.group == group]) == 1, group


def check_lanes_sound(store: Store, now: float) -> None:
    """No lane is open while a task waits that the leader could admit: every ready task then
    is in a group that can take no slot (at its cap, paused, or held by an exclusive task)."""
    if not store.lane_slots(now):
        return
    tasks = store.task_list(TaskQuery(limit=10_000))
    held = {t.group: 0 for t in tasks}
    exclusive = {t.group for t in tasks if t.state in ACTIVE and t.exclusive}
    for t in tasks:
        if t.state in ACTIVE:
            held[t.group] += 1
    for t in tasks:
        if t.state == State.READY:
            blocked = (
                t.group == "paused"
                or (t.group == "capped" and held["capped"] >= CAP)
                or t.group in exclusive
                or (t.exclusive and held[t.group] > 0)
            )
            assert blocked, (t, store.lane_slots(now))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step, min_size=5, max_size=40))
def test_slots_caps_pauses_and_exclusive_steps_hold_with_the_lane(
    store_factory: Callable[[], Store], steps: list[tuple[str, str, int]]
) -> None:
    store = store_factory()
    register_worker(store, "w1", T0, concurrency=CAPACITY)
    store.group_configure(GroupConfig("capped", max_parallel=CAP))
    store.group_pause(PausedGroup("paused", T0, "cli:test", None))
    dispatcher = Dispatcher(store, prefetch=0, prefetch_ratio=0.0)
    running: list[Any] = []
    now = T0
    for kind, group, n in steps:
        now += 0.01
        if kind == "submit":
            submit(store, now, group=group, exclusive=group == "solo" and bool(n))
        elif kind == "batch":
            batch = [new_task(group=group) for _ in range(n)]
            store.task_insert_many(InsertParams(batch, now))
        elif kind == "round":
            dispatcher.run(now)
            check_lanes_sound(store, now)
        elif kind == "claim":
            running += store.task_claim(ClaimParams("w1", ["default"], n, now + 600, now))
        elif running:
            for claim in running[:n]:
                finish(store, claim, State.SUCCEEDED, now)
            running = running[n:]
        check(store, now)


# -- end to end -----------------------------------------------------------------------------------


def test_an_idle_pool_starts_a_submit_without_a_round(app: corral.App, services: Any) -> None:
    """With a scheduler and a worker running and nothing queued, a submit is admitted in its
    own write (its `admitted` event carries the submit's own time, where a round's would be
    later) and runs. A submit that lands while a round has the lanes closed goes the leader's
    way instead, so the test tries a few."""

    @app.task
    def noop(ctx: corral.Context, n: int) -> int:
        return n

    services(app)
    warm = noop.submit(-1)
    app.wait(warm, timeout=20, poll=0.01)
    laned = []
    for n in range(10):
        wait_until(lambda: app.store.lane_slots(time.time()), timeout=10)
        task_id = noop.submit(n)
        assert app.wait(task_id, timeout=20, poll=0.01).state == State.SUCCEEDED
        events = [e for e in app.store.event_fetch_after(0, 10_000) if e.task_id == task_id]
        assert [(e.kind, e.from_state, e.to_state) for e in events][:2] == [
            ("submitted", None, "ready"),
            ("admitted", "ready", "admitted"),
        ]
        laned.append(events[0].at == events[1].at)
        if laned[-1]:
            break
    assert any(laned), "no submit took the lane"
