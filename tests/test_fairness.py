"""Fair scheduling through the real stores, on both backends: per-group heads kept current by
hints, fair shares against a big pipeline submitted first, caps and defaults, rate limits across
rounds, exclusive tasks and ranks, pools without workers, ageing through the promoter, and
`corral why`."""

from __future__ import annotations

import contextlib
from collections import Counter

import pytest
from conftest import T0, Databases, finish, new_task, register_worker, submit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import corral
from corral import ConfigError, TransitionRefused
from corral.codec import dumps
from corral.lifecycle import State
from corral.model import GroupConfig, HeadsWanted, LevelChange, TaskQuery, WorkerInfo
from corral.ratelimit import parse
from corral.scheduler.dispatcher import dispatch, read_snapshot
from corral.scheduler.promoter import promote_due
from corral.scheduler.why import why
from corral.store import Store
from corral.store.contract import (
    CancelParams,
    ClaimParams,
    CompleteParams,
    InsertParams,
    LevelParams,
)


def submit_many(store: Store, count: int, now: float = T0, **overrides: object) -> list[int]:
    return [
        s.id for s in store.task_insert_many(InsertParams([new_task(**overrides)] * count, now))
    ]


def admitted_by_group(store: Store) -> Counter[str]:
    tasks = store.task_list(TaskQuery(states=(State.ADMITTED,), limit=100_000))
    return Counter(t.group for t in tasks)


def test_small_pipelines_get_their_share_next_to_a_big_one_submitted_first(store: Store) -> None:
    submit_many(store, 1500, group="big")
    for g in range(20):
        submit_many(store, 3, T0 + 1, group=f"small-{g}")
    register_worker(store, concurrency=24)
    assert dispatch(store, T0 + 2) == 24
    counts = admitted_by_group(store)
    # 24 slots for 21 groups: each gets one, three get two (the oldest heads first)
    assert all(counts[f"small-{g}"] >= 1 for g in range(20)), counts
    assert sorted(counts.values()) == [1] * 18 + [2] * 3
    assert counts["big"] == 2


def test_the_heads_follow_admissions_cancels_and_new_work(store: Store) -> None:
    register_worker(store, concurrency=2)
    a = submit_many(store, 2, group="a")
    assert dispatch(store, T0) == 2
    assert store.task_states(a) == dict.fromkeys(a, State.ADMITTED)
    b = submit(store, T0 + 1, group="b")
    store.task_cancel(CancelParams(b, T0 + 1))  # the only ready task of b: the group's head goes
    c = submit(store, T0 + 2, group="c")
    for claim in store.task_claim(ClaimParams("w1", ["default"], 2, T0 + 60, T0 + 2)):
        finish(store, claim, State.SUCCEEDED, T0 + 2)
    snapshot = read_snapshot(store, T0 + 3)
    assert [t.id for t in snapshot.ready] == [c]


def test_default_caps_and_configured_caps_hold(store: Store) -> None:
    store.group_configure(GroupConfig("*", max_parallel=2))
    store.group_configure(GroupConfig("wide", max_parallel=5))
    for group in ("x", "y", "wide"):
        submit_many(store, 10, group=group)
    register_worker(store, concurrency=50)
    dispatch(store, T0)
    assert admitted_by_group(store) == {"x": 2, "y": 2, "wide": 5}
    assert dispatch(store, T0 + 1) == 0


def test_a_group_rate_limit_holds_across_rounds(store: Store) -> None:
    store.group_configure(GroupConfig("api", rate_limit=parse("2/second", burst=2)))
    submit_many(store, 20, group="api")
    submit_many(store, 3, group="other")
    register_worker(store, concurrency=50)
    assert dispatch(store, T0) == 5  # two tokens, and the other group's three
    assert dispatch(store, T0 + 0.2) == 0
    assert dispatch(store, T0 + 0.6) == 1  # 1.2 tokens refilled
    assert dispatch(store, T0 + 10) == 2  # the bucket holds two at most
    assert admitted_by_group(store) == {"api": 5, "other": 3}


def test_a_named_rate_limit_is_shared_by_every_group(store: Store) -> None:
    store.rate_limit_configure("crm", parse("1/minute", burst=3))
    for g in range(5):
        submit_many(store, 2, group=f"g{g}", rate_key="crm")
    register_worker(store, concurrency=50)
    assert dispatch(store, T0) == 3
    assert dispatch(store, T0 + 30) == 0
    assert dispatch(store, T0 + 61) == 1
    assert store.rate_limit_list() == {"crm": parse("1/minute", burst=3)}


def test_an_exclusive_head_runs_alone_then_the_rest_by_rank(store: Store) -> None:
    register_worker(store, concurrency=10)
    head = submit(store, group="db", exclusive=True, rank=5)
    loads = [submit(store, group="db", rank=r) for r in (1, 3, 2)]
    assert dispatch(store, T0) == 1
    assert store.task_states([head]) == {head: State.ADMITTED}
    assert dispatch(store, T0 + 1) == 0  # it holds its group alone
    (claim,) = store.task_claim(ClaimParams("w1", ["default"], 1, T0 + 60, T0 + 1))
    store.task_complete_many(
        CompleteParams(
            [corral.model.AttemptReport(claim.id, claim.attempt, "succeeded", State.SUCCEEDED)],
            T0 + 2,
        )
    )
    assert dispatch(store, T0 + 3) == 3
    order = store.task_claim(ClaimParams("w1", ["default"], 3, T0 + 60, T0 + 3))
    assert [c.id for c in order] == [loads[1], loads[2], loads[0]]  # rank 3, 2, 1


def test_a_pool_without_workers_holds_its_own_tasks_and_blocks_nobody(store: Store) -> None:
    gpu = submit_many(store, 5, pool="gpu")
    cpu = submit_many(store, 5)
    register_worker(store, concurrency=10)  # serves "default" only
    assert dispatch(store, T0) == 5
    assert set(store.task_states(gpu).values()) == {State.READY}
    assert set(store.task_states(cpu).values()) == {State.ADMITTED}
    _, reasons = why(store, gpu[0], T0)
    assert [r.code for r in reasons] == ["no_worker"]


def test_ageing_lifts_a_waiting_task_through_the_promoter(store: Store) -> None:
    step = dumps({"kind": "step", "every": 60.0, "levels": 1, "cap": 5})
    low = submit(store, aging=step, promote_at=T0 + 60)
    high = submit_many(store, 3, priority=3, level=3)
    register_worker(store, concurrency=1)
    assert promote_due(store, T0 + 59) == 0
    assert promote_due(store, T0 + 185) == 1  # due at +60: recomputed for a wait of 185 s
    record = store.task_get(low)
    assert record is not None and record.level == 3
    assert promote_due(store, T0 + 250) == 1
    assert dispatch(store, T0 + 250) == 1
    assert store.task_states([low, *high])[low] == State.ADMITTED  # level 4 beats 3


def test_why_explains_caps_rate_limits_and_levels(store: Store) -> None:
    store.group_configure(GroupConfig("g", max_parallel=1))
    register_worker(store, concurrency=10)
    first, second = submit_many(store, 2, group="g")
    submit_many(store, 2, group="h", priority=4, level=4)
    dispatch(store, T0)
    _, reasons = why(store, second, T0)
    assert [r.code for r in reasons] == ["group_cap"]
    assert "max_parallel=1" in reasons[0].text
    _, reasons = why(store, first, T0)
    assert [r.code for r in reasons] == ["admitted"]
    waiting = submit(store, group="g", depends_on=(second,))
    _, reasons = why(store, waiting, T0)
    assert reasons[0].code == "dependencies" and f"{second} (ready)" in reasons[0].text


def test_app_validates_group_settings_and_ageing(app: corral.App) -> None:
    with pytest.raises(ConfigError, match="max_parallel"):
        app.groups.configure("g", max_parallel=-1)
    with pytest.raises(ConfigError, match="weight"):
        app.groups.configure("g", weight=-2)
    with pytest.raises(ConfigError, match="fortnight"):
        app.groups.configure("g", rate_limit="100/fortnight")
    with pytest.raises(ConfigError, match="holds the defaults"):
        app.groups.configure("*", max_parallel=3)

    class Sinking:
        def level(self, base: int, waited: float) -> int:
            return max(0, base + 3 - int(waited // 10))

        def next_change(self, base: int, waited: float) -> float | None:
            return waited + 10 if waited < 100 else None

    with pytest.raises(ConfigError, match="lowers the level"):
        app.task(aging=Sinking())(lambda ctx: None)

    class Endless:
        def level(self, base: int, waited: float) -> int:
            return base + int(waited)

        def next_change(self, base: int, waited: float) -> float | None:
            return waited + 1

    with pytest.raises(ConfigError, match="give it a cap"):
        app.task(name="endless", aging=Endless())(lambda ctx: None)
    with pytest.raises(ConfigError, match="aging must be"):
        app.task(name="bad", aging="fast")(lambda ctx: None)


def test_user_defined_ageing_travels_as_a_table(app: corral.App) -> None:
    class Doubling:
        """+1 level after 1 s, 2 s, 4 s, 8 s ... of waiting, up to +6."""

        def level(self, base: int, waited: float) -> int:
            steps = 0
            while steps < 6 and waited >= 2**steps:
                steps += 1
            return base + steps

        def next_change(self, base: int, waited: float) -> float | None:
            steps = self.level(base, waited) - base
            return None if steps >= 6 else float(2**steps)

    @app.task(priority=2, aging=Doubling())
    def job(ctx: corral.Context) -> None: ...

    task_id = job.submit()
    stored = app.store.task_get(task_id)
    assert stored is not None and stored.level == 2
    table = corral.aging.from_json(corral.codec.loads(job.prepare().task.aging))
    assert [table.level(2, w) for w in (0, 1, 3, 5, 40)] == [2, 3, 4, 5, 8]
    assert table.next_change(2, 5) == 8.0


def test_app_group_settings_round_trip(app: corral.App) -> None:
    app.groups.set_defaults(max_parallel=3, rate_limit="10/minute")
    app.groups.configure("p42", max_parallel=5, weight=2, rate_limit="100/minute", burst=10)
    assert app.groups.get("p42") == GroupConfig("p42", 5, 2.0, parse("100/minute", 10))
    assert app.groups.get("never") == GroupConfig("never", 3, 1.0, parse("10/minute"))
    app.rate_limits.configure("crm", "5/s")
    assert app.rate_limits.list() == {"crm": parse("5/s")}
    app.rate_limits.remove("crm")
    assert app.rate_limits.list() == {}


# -- the per-group heads stay true under any sequence of changes ---------------------------------

OPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("submit"),
            st.sampled_from("abcd"),
            st.sampled_from(["default", "gpu"]),
            st.integers(0, 3),
            st.integers(1, 3),
        ),
        st.tuples(st.just("cancel"), st.integers(0, 50)),
        st.tuples(st.just("level"), st.integers(0, 50), st.integers(0, 6)),
        st.tuples(st.just("dispatch"), st.integers(0, 4)),
        st.tuples(st.just("finish"), st.sampled_from([State.SUCCEEDED, State.READY])),
    ),
    max_size=25,
)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=OPS)
def test_per_group_heads_follow_every_change(databases: Databases, ops: list[tuple]) -> None:  # type: ignore[type-arg]
    """Whatever happened, once the hints are folded the dispatcher sees every group that has a
    ready task, with its true head, and no other group."""
    store = databases.new_store()
    info = WorkerInfo("w1", "h", 1, ("default", "gpu"), 4)
    store.worker_register(info, T0 + 1e6, T0)
    ids: list[int] = []
    now = T0
    for op in ops:
        now += 1
        if op[0] == "submit":
            _, group, pool, level, count = op
            ids += submit_many(store, count, now, group=group, pool=pool, priority=level,
                               level=level)  # fmt: skip
        elif op[0] == "cancel" and ids:
            with contextlib.suppress(TransitionRefused):
                store.task_cancel(CancelParams(ids[op[1] % len(ids)], now))
        elif op[0] == "level" and ids:
            store.task_set_levels(LevelParams([LevelChange(ids[op[1] % len(ids)], op[2], None)]))
        elif op[0] == "dispatch" and op[1]:
            dispatch(store, now)
        elif op[0] == "finish":
            for claim in store.task_claim(ClaimParams("w1", ["default", "gpu"], 2, now + 60, now)):
                finish(store, claim, op[1], now)
    store.ready_groups_refresh(10_000)
    heads = store.dispatch_heads(
        [HeadsWanted("default", 100, 10_000), HeadsWanted("gpu", 100, 10_000)], [], now
    )
    ready = store.task_list(TaskQuery(states=(State.READY,), limit=10_000))
    truth: dict[tuple[str, str], list[int]] = {}
    for task in sorted(ready, key=lambda t: (-t.level, -t.rank, t.ready_at or 0, t.id)):
        truth.setdefault((task.pool, task.group), []).append(task.id)
    seen: dict[tuple[str, str], list[int]] = {}
    for task in heads.ready:
        seen.setdefault((task.pool, task.group), []).append(task.id)
    assert seen == truth
